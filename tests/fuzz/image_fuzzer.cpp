// libFuzzer entry point for image decoding (cli/image.cpp: libjpeg-turbo, libpng): any input must
// either decode to a well-formed RGB image or throw locus::Error. Any other exception, a crash, a
// sanitizer report, a hang or a large allocation is a bug. A small decoded image (see below) is
// also preprocessed (resize 64, crop 56) and the tensor checked to lie in the normalised range.
//
// With LOCUS_FUZZ_WRITE_SEEDS=<dir> set, the binary instead writes small seed images into <dir> and
// exits: PNGs of every colour type and bit depth (palette with tRNS, grey 1..16 bits, grey+alpha,
// RGB, RGBA, 16-bit, interlaced) and JPEGs (grey, RGB 4:2:0 and 4:4:4, progressive, restart
// markers, optimised Huffman tables, arithmetic coding, CMYK, YCCK). With LOCUS_FUZZ_SEED_PHOTOS
// set as well (a ':'-separated list of JPEG or PNG files), each photo is also written decoded,
// shrunk to at most 48 pixels a side and re-encoded as a baseline and a progressive JPEG, so the
// corpus holds real photo content while staying small.
// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
// clang-format on
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/image.h"

namespace {

using locus::cli::Image;

void write_seed(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

struct JpegOptions {
  int components = 3;
  J_COLOR_SPACE in_space = JCS_RGB, stored = JCS_YCbCr;
  bool progressive = false, optimize = false, arithmetic = false, subsample = true;
  int restart_rows = 0, quality = 75;
};

// libjpeg's default error handler exits: fine for encoding known-good seeds.
std::string encode_jpeg(int w, int h, const std::vector<uint8_t>& pixels, const JpegOptions& o) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = JDIMENSION(w);
  cinfo.image_height = JDIMENSION(h);
  cinfo.input_components = o.components;
  cinfo.in_color_space = o.in_space;
  jpeg_set_defaults(&cinfo);
  jpeg_set_colorspace(&cinfo, o.stored);
  jpeg_set_quality(&cinfo, o.quality, TRUE);
  if (!o.subsample)
    for (int c = 0; c < cinfo.num_components; ++c)
      cinfo.comp_info[c].h_samp_factor = cinfo.comp_info[c].v_samp_factor = 1;
  if (o.progressive) jpeg_simple_progression(&cinfo);
  cinfo.optimize_coding = o.optimize ? TRUE : FALSE;
  cinfo.arith_code = o.arithmetic ? TRUE : FALSE;
  cinfo.restart_in_rows = o.restart_rows;
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&pixels[size_t(cinfo.next_scanline) * w * o.components]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

void png_append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}

std::string encode_png(int w, int h, int color_type, int bit_depth, bool interlaced,
                       const std::vector<uint8_t>& rows) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), bit_depth, color_type,
               interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    png_color palette[16];
    for (int i = 0; i < 16; ++i) palette[i] = {uint8_t(i * 16), uint8_t(255 - i * 16), uint8_t(i * 7)};
    png_set_PLTE(png, info, palette, 1 << std::min(bit_depth, 4));
    png_byte trns[2] = {0, 128};
    png_set_tRNS(png, info, trns, 2, nullptr);
  }
  if (color_type == PNG_COLOR_TYPE_RGB && bit_depth == 8) png_set_gAMA(png, info, 1.0);
  png_write_info(png, info);
  const size_t stride = rows.size() / size_t(h);
  std::vector<png_bytep> ptrs;
  for (int y = 0; y < h; ++y) ptrs.push_back(const_cast<uint8_t*>(&rows[size_t(y) * stride]));
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  uint32_t s = 12345;
  for (size_t i = 0; i < n; ++i) {
    s = s * 1103515245u + 12345u;
    v[i] = uint8_t((i * 7 + (s >> 24) / 8) & 0xFF);
  }
  return v;
}

void write_seeds(const std::string& dir) {
  const int w = 13, h = 11;  // odd sizes: partial blocks, partial bytes of packed rows
  struct PngCase {
    const char* name;
    int color_type, bit_depth, channels;
    bool interlaced;
  };
  const PngCase pngs[] = {
      {"grey1", PNG_COLOR_TYPE_GRAY, 1, 1, false},     {"grey2", PNG_COLOR_TYPE_GRAY, 2, 1, false},
      {"grey4", PNG_COLOR_TYPE_GRAY, 4, 1, true},      {"grey8", PNG_COLOR_TYPE_GRAY, 8, 1, false},
      {"grey16", PNG_COLOR_TYPE_GRAY, 16, 1, false},   {"palette1", PNG_COLOR_TYPE_PALETTE, 1, 1, false},
      {"palette4", PNG_COLOR_TYPE_PALETTE, 4, 1, true}, {"palette8", PNG_COLOR_TYPE_PALETTE, 8, 1, false},
      {"ga8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 2, false}, {"ga16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 2, false},
      {"rgb8", PNG_COLOR_TYPE_RGB, 8, 3, false},       {"rgb8_adam7", PNG_COLOR_TYPE_RGB, 8, 3, true},
      {"rgb16", PNG_COLOR_TYPE_RGB, 16, 3, false},     {"rgba8", PNG_COLOR_TYPE_RGBA, 8, 4, false},
      {"rgba16", PNG_COLOR_TYPE_RGBA, 16, 4, true},
  };
  for (const PngCase& c : pngs) {
    const size_t stride = (size_t(w) * c.channels * c.bit_depth + 7) / 8;
    std::vector<uint8_t> rows = pattern(stride * h);
    if (c.color_type == PNG_COLOR_TYPE_PALETTE && c.bit_depth == 8)
      for (auto& v : rows) v &= 15;  // indices inside the 16-entry palette
    write_seed(dir, std::string(c.name) + ".png",
               encode_png(w, h, c.color_type, c.bit_depth, c.interlaced, rows));
  }
  const std::vector<uint8_t> rgb = pattern(size_t(w * h * 3)), grey = pattern(size_t(w * h)),
                             cmyk = pattern(size_t(w * h * 4));
  struct JpegCase {
    const char* name;
    JpegOptions o;
    const std::vector<uint8_t>* pixels;
  };
  JpegOptions g;
  g.components = 1, g.in_space = g.stored = JCS_GRAYSCALE;
  JpegOptions c4;
  c4.components = 4, c4.in_space = c4.stored = JCS_CMYK;
  JpegOptions y4 = c4;
  y4.stored = JCS_YCCK;
  JpegOptions base, full, prog, opt, rst, arith;
  full.subsample = false;
  prog.progressive = true;
  opt.optimize = true;
  rst.restart_rows = 1;
  arith.arithmetic = true;
  JpegOptions grey_prog = g;
  grey_prog.progressive = true;
  const JpegCase jpegs[] = {
      {"grey", g, &grey},          {"grey_progressive", grey_prog, &grey},
      {"rgb420", base, &rgb},      {"rgb444", full, &rgb},
      {"progressive", prog, &rgb}, {"optimized", opt, &rgb},
      {"restarts", rst, &rgb},     {"arithmetic", arith, &rgb},
      {"cmyk", c4, &cmyk},         {"ycck", y4, &cmyk},
  };
  for (const JpegCase& c : jpegs)
    write_seed(dir, std::string(c.name) + ".jpg", encode_jpeg(w, h, *c.pixels, c.o));

  // real photos, shrunk
  const char* photos = std::getenv("LOCUS_FUZZ_SEED_PHOTOS");
  std::string list = photos ? photos : "";
  size_t start = 0;
  int n = 0;
  while (start < list.size()) {
    size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    const std::string path = list.substr(start, end - start);
    start = end + 1;
    if (path.empty()) continue;
    try {
      const Image img = locus::cli::decode_image(path);
      const double scale = 48.0 / double(std::max(img.width, img.height));
      const int64_t sw = std::max<int64_t>(1, std::lround(double(img.width) * scale));
      const int64_t sh = std::max<int64_t>(1, std::lround(double(img.height) * scale));
      const Image small = locus::cli::resize_bilinear(img, sw, sh);
      JpegOptions o, p;
      p.progressive = true;
      const std::string base_name = "photo" + std::to_string(n++);
      write_seed(dir, base_name + ".jpg", encode_jpeg(int(sw), int(sh), small.rgb, o));
      write_seed(dir, base_name + "_progressive.jpg", encode_jpeg(int(sw), int(sh), small.rgb, p));
    } catch (const locus::Error& e) {
      std::fprintf(stderr, "image_fuzzer: skipping seed photo: %s\n", e.what());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("LOCUS_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Image img;
  try {
    img = locus::cli::decode_image_from_memory(data, size, "fuzz input");
  } catch (const locus::Error&) {
    return 0;  // expected for malformed or unsupported images
  }
  // a decoded image is well formed and within the documented limits
  if (img.width < 1 || img.height < 1 || img.width > locus::cli::kMaxImageSide ||
      img.height > locus::cli::kMaxImageSide ||
      img.width * img.height > locus::cli::kMaxImagePixels ||
      img.rgb.size() != size_t(img.width * img.height * 3))
    std::abort();
  // Preprocess only what stays cheap under ASan: at most 1 Mi source pixels and 256 Ki resized
  // pixels (a 9053x42 decode resizes to 13795x64, ~0.4 s per run, which slows the fuzzer tenfold).
  if (img.width * img.height > (int64_t(1) << 20)) return 0;
  const auto [rw, rh] = locus::cli::resized_size(img, 64, locus::cli::LongSide::Round);
  if (rw * rh > (int64_t(1) << 18)) return 0;
  try {
    const locus::Tensor t = locus::cli::preprocess_imagenet(img, 64, 56, locus::cli::LongSide::Round);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    if (t.numel() != 3 * 56 * 56) std::abort();
    const float* v = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int c = int(i / (56 * 56));
      if (!(v[i] >= -mean[c] / sd[c] - 1e-4f && v[i] <= (1 - mean[c]) / sd[c] + 1e-4f)) std::abort();
    }
  } catch (const locus::Error&) {
    // a very elongated image: the resized long side is over the limit
  }
  return 0;
}
