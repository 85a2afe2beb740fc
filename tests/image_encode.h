// Encoding test images with the same libraries locus decodes with (libjpeg's compressor, libpng's
// writer): the image tests and the image fuzzer's seeds.
#pragma once

#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <png.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace locus::test {

struct JpegOptions {
  int components = 3;
  J_COLOR_SPACE in_space = JCS_RGB, stored = JCS_YCbCr;
  bool progressive = false, optimize = false, arithmetic = false, subsample = true;
  int restart_rows = 0, quality = 75;
};

// libjpeg's default error handler exits: fine for encoding known-good test images.
inline std::string encode_jpeg(int w, int h, const std::vector<uint8_t>& pixels, const JpegOptions& o) {
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
    JSAMPROW row = const_cast<uint8_t*>(&pixels[size_t(cinfo.next_scanline) * size_t(w) * size_t(o.components)]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

inline void png_append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}

struct PngSpec {
  int w = 1, h = 1, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette;
  std::vector<uint8_t> trns;  // palette alpha
  double gamma = 0;           // > 0: a gAMA chunk
  std::vector<uint8_t> rows;  // packed rows as PNG stores them (16-bit samples big-endian)
};

inline std::string encode_png(const PngSpec& s) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, png_uint_32(s.w), png_uint_32(s.h), s.bit_depth, s.color_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), int(s.palette.size()));
  if (!s.trns.empty()) png_set_tRNS(png, info, s.trns.data(), int(s.trns.size()), nullptr);
  if (s.gamma > 0) png_set_gAMA(png, info, s.gamma);
  png_write_info(png, info);
  const size_t stride = s.rows.size() / size_t(s.h);
  std::vector<png_bytep> rows;
  for (int y = 0; y < s.h; ++y) rows.push_back(const_cast<uint8_t*>(&s.rows[size_t(y) * stride]));
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

}  // namespace locus::test
