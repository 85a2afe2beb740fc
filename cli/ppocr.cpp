// The PP-OCR pre-processing and the probability-map PNG of `locus run --ppocr` (cli/ppocr.h).
#include "cli/ppocr.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <memory>
#include <vector>

namespace locus::cli {

Tensor ppocr_det_input(const Image& image, int64_t limit_side) {
  const double scale = std::min(1.0, double(limit_side) / double(std::max(image.width, image.height)));
  auto side = [&](int64_t v) { return std::max<int64_t>(32, int64_t(std::llround(double(v) * scale / 32.0)) * 32); };
  const int64_t W = side(image.width), H = side(image.height);
  const Image r = resize_bilinear(image, W, H);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
  Tensor t(DType::F32, {1, 3, H, W});
  float* p = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) p[(c * H + y) * W + x] = (float(r.at(y, x, c)) / 255.f - mean[c]) / stdev[c];
  return t;
}

Tensor ppocr_cls_input(const Image& image) {
  const int64_t H = 48, W = 192;
  const int64_t w = std::clamp<int64_t>(int64_t(std::ceil(double(H) * double(image.width) / double(image.height))), 1, W);
  const Image r = resize_bilinear(image, w, H);
  Tensor t(DType::F32, {1, 3, H, W});  // zero beyond the resized width
  float* p = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < w; ++x) p[(c * H + y) * W + x] = (float(r.at(y, x, c)) / 255.f - 0.5f) / 0.5f;
  return t;
}

void write_grey_png(const std::string& path, const float* values, int64_t height, int64_t width) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  LOCUS_CHECK(f, "cannot write '", path, "'");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  LOCUS_CHECK(png, "cannot write '", path, "': libpng failed to start");
  png_infop info = png_create_info_struct(png);
  std::vector<uint8_t> row(static_cast<size_t>(width));
  volatile bool failed = false;  // set after a longjmp
  if (setjmp(png_jmpbuf(png))) {
    failed = true;
  } else {
    png_init_io(png, f.get());
    png_set_IHDR(png, info, png_uint_32(width), png_uint_32(height), 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t y = 0; y < height; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        const float v = values[y * width + x];
        row[size_t(x)] = uint8_t(std::lround(std::clamp(std::isnan(v) ? 0.f : v, 0.f, 1.f) * 255.f));
      }
      png_write_row(png, row.data());
    }
    png_write_end(png, nullptr);
  }
  png_destroy_write_struct(&png, &info);
  LOCUS_CHECK(!failed, "cannot write '", path, "': libpng failed");
}

}  // namespace locus::cli
