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
#include "tests/fuzz/fuzz_seeds.h"
#include "tests/image_encode.h"

namespace {

using locus::cli::Image;

void write_seed(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f << bytes;
  if (!f) {
    std::perror((dir + "/" + name).c_str());
    std::exit(1);
  }
}

using locus::test::encode_jpeg;
using locus::test::JpegOptions;

// A seed PNG: palette images get a 16-colour palette with a tRNS chunk, 8-bit RGB a gAMA chunk.
std::string encode_png(int w, int h, int color_type, int bit_depth, bool interlaced,
                       const std::vector<uint8_t>& rows) {
  locus::test::PngSpec s;
  s.w = w;
  s.h = h;
  s.color_type = color_type;
  s.bit_depth = bit_depth;
  s.interlaced = interlaced;
  s.rows = rows;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    for (int i = 0; i < (1 << std::min(bit_depth, 4)); ++i)
      s.palette.push_back({uint8_t(i * 16), uint8_t(255 - i * 16), uint8_t(i * 7)});
    s.trns = {0, 128};
  }
  if (color_type == PNG_COLOR_TYPE_RGB && bit_depth == 8) s.gamma = 1.0;
  return locus::test::encode_png(s);
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

LOCUS_FUZZ_INITIALIZE_WITH_SEEDS(write_seeds)

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
