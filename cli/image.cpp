// Image decoding with stb_image and torchvision/PIL-compatible ImageNet preprocessing (see
// image.h).
#include "cli/image.h"

#include <stb/stb_image.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

namespace locus::cli {

namespace {

constexpr int64_t kMaxFileBytes = int64_t(1) << 30;  // 1 GiB

std::vector<unsigned char> read_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  LOCUS_CHECK(fs::exists(path, ec), "cannot open image '", path, "': no such file");
  LOCUS_CHECK(!fs::is_directory(path, ec), "'", path, "' is a directory, not an image");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  LOCUS_CHECK(f, "cannot open image '", path, "': permission denied or unreadable");
  const std::streamoff size = f.tellg();
  LOCUS_CHECK(size >= 0, "cannot read image '", path, "'");
  LOCUS_CHECK(size <= kMaxFileBytes, "'", path, "' is ", size, " bytes, larger than the limit of ",
              kMaxFileBytes, " for an image file");
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), size);
  LOCUS_CHECK(f.gcount() == size, "cannot read image '", path, "'");
  return bytes;
}

// A truncated JPEG: stb_image says only "expected marker" (and some versions decode it, the missing
// part grey), so we check first. A complete JPEG has an end-of-image marker (FF D9) after its first
// scan header: walk the marker segments up to that header (skipping embedded thumbnails) and look
// for one after it.
bool is_truncated_jpeg(const unsigned char* p, size_t n) {
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return false;  // not a JPEG
  size_t pos = 2;
  while (true) {
    if (pos + 1 >= n) return true;     // ran out of data in the headers
    if (p[pos] != 0xFF) return false;  // malformed: leave it to the decoder
    const unsigned char marker = p[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9) return false;  // EOI before any scan: the decoder will complain
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;  // markers without a length
      continue;
    }
    if (pos + 3 >= n) return true;
    const size_t length = (size_t(p[pos + 2]) << 8) | p[pos + 3];
    if (marker == 0xDA) {  // start of scan: entropy-coded data follows
      pos += 2 + length;
      break;
    }
    pos += 2 + length;
  }
  for (size_t i = pos; i + 1 < n; ++i)
    if (p[i] == 0xFF && p[i + 1] == 0xD9) return false;
  return true;
}

const char* stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown error";
}

// Filter coefficients of one resampling pass, as PIL computes them for its BILINEAR filter (a
// triangle of radius 1, widened by the downscale factor), in 8-bit fixed point with 22 fraction
// bits.
struct PassCoefficients {
  int64_t taps = 0;                   // coefficients stored per output position
  std::vector<int64_t> first, count;  // input range [first, first + count) of each output
  std::vector<int32_t> weights;       // [out][taps]
};

constexpr int kPrecisionBits = 22;  // 32 - 8 (pixel) - 2 (headroom), as PIL

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

PassCoefficients bilinear_coefficients(int64_t in_size, int64_t out_size) {
  const double scale = double(in_size) / double(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;
  const double inv_filter_scale = 1.0 / filter_scale;
  PassCoefficients pc;
  pc.taps = int64_t(std::ceil(support)) * 2 + 1;
  pc.first.resize(size_t(out_size));
  pc.count.resize(size_t(out_size));
  pc.weights.assign(size_t(out_size * pc.taps), 0);
  std::vector<double> w(size_t(pc.taps));
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = (double(i) + 0.5) * scale;
    // PIL rounds with a C cast (truncation toward zero) before clamping
    const int64_t lo = std::max<int64_t>(0, int64_t(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in_size, int64_t(center + support + 0.5));
    const int64_t n = hi - lo;
    double total = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      w[size_t(k)] = triangle((double(k + lo) - center + 0.5) * inv_filter_scale);
      total += w[size_t(k)];
    }
    int32_t* fixed = &pc.weights[size_t(i * pc.taps)];
    for (int64_t k = 0; k < n; ++k) {
      const double normalised = total != 0.0 ? w[size_t(k)] / total : w[size_t(k)];
      const double scaled = normalised * double(1 << kPrecisionBits);
      fixed[k] = int32_t(scaled < 0 ? scaled - 0.5 : scaled + 0.5);  // round half away from zero
    }
    pc.first[size_t(i)] = lo;
    pc.count[size_t(i)] = n;
  }
  return pc;
}

// Fixed-point accumulator to a pixel: round (the accumulator starts at one half), shift, clamp.
uint8_t to_pixel(int32_t acc) {
  if (acc <= 0) return 0;
  if (acc >= (int32_t(1) << (kPrecisionBits + 8))) return 255;
  return uint8_t(acc >> kPrecisionBits);
}

// Resamples rows [row_begin, row_end) of `in` horizontally to `out_width`.
Image horizontal_pass(const Image& in, int64_t out_width, int64_t row_begin, int64_t row_end) {
  const PassCoefficients pc = bilinear_coefficients(in.width, out_width);
  Image out;
  out.width = out_width;
  out.height = row_end - row_begin;
  out.rgb.resize(size_t(out.width * out.height * 3));
  for (int64_t y = 0; y < out.height; ++y) {
    const uint8_t* src = &in.rgb[size_t((y + row_begin) * in.width * 3)];
    uint8_t* dst = &out.rgb[size_t(y * out_width * 3)];
    for (int64_t x = 0; x < out_width; ++x) {
      const int32_t* w = &pc.weights[size_t(x * pc.taps)];
      const uint8_t* s = src + pc.first[size_t(x)] * 3;
      for (int c = 0; c < 3; ++c) {
        int32_t acc = int32_t(1) << (kPrecisionBits - 1);
        for (int64_t k = 0; k < pc.count[size_t(x)]; ++k) acc += int32_t(s[k * 3 + c]) * w[k];
        dst[x * 3 + c] = to_pixel(acc);
      }
    }
  }
  return out;
}

// Resamples `in` vertically to `out_height`; its row 0 is row `row_offset` of the full-size source.
Image vertical_pass(const Image& in, int64_t out_height, const PassCoefficients& pc,
                    int64_t row_offset) {
  Image out;
  out.width = in.width;
  out.height = out_height;
  out.rgb.resize(size_t(out.width * out.height * 3));
  const int64_t row = in.width * 3;
  for (int64_t y = 0; y < out_height; ++y) {
    const int32_t* w = &pc.weights[size_t(y * pc.taps)];
    const uint8_t* src = &in.rgb[size_t((pc.first[size_t(y)] - row_offset) * row)];
    uint8_t* dst = &out.rgb[size_t(y * row)];
    for (int64_t i = 0; i < row; ++i) {
      int32_t acc = int32_t(1) << (kPrecisionBits - 1);
      for (int64_t k = 0; k < pc.count[size_t(y)]; ++k) acc += int32_t(src[k * row + i]) * w[k];
      dst[i] = to_pixel(acc);
    }
  }
  return out;
}

// torchvision CenterCrop: int(round(excess / 2.0)), Python rounding half to even.
int64_t crop_offset(int64_t excess) {
  const int64_t q = excess / 2;
  if (excess % 2 == 0) return q;
  return q % 2 == 0 ? q : q + 1;
}

}  // namespace

Image decode_image_from_memory(const void* data, size_t size, const std::string& what) {
  LOCUS_CHECK(size > 0, "'", what, "' is empty, not an image");
  LOCUS_CHECK(size <= size_t(INT_MAX), "'", what, "' is too large to decode");
  const auto* bytes = static_cast<const stbi_uc*>(data);
  int w = 0, h = 0, channels = 0;
  LOCUS_CHECK(stbi_info_from_memory(bytes, int(size), &w, &h, &channels), "'", what,
              "' is not a decodable image (stb: ", stb_reason(), ")");
  LOCUS_CHECK(w >= 1 && h >= 1 && w <= kMaxImageSide && h <= kMaxImageSide, "'", what, "' is ", w,
              "x", h, " pixels; each side must be between 1 and ", kMaxImageSide);
  LOCUS_CHECK(!is_truncated_jpeg(bytes, size), "'", what,
              "' is a truncated JPEG (no end-of-image marker after the image data)");
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes, int(size), &w, &h, &channels, 3), stbi_image_free);
  LOCUS_CHECK(pixels, "'", what, "' is not a decodable image (stb: ", stb_reason(), ")");
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(pixels.get(), pixels.get() + size_t(w) * size_t(h) * 3);
  return img;
}

Image decode_image(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file(path);
  return decode_image_from_memory(bytes.data(), bytes.size(), path);
}

Image resize_bilinear(const Image& in, int64_t width, int64_t height) {
  LOCUS_CHECK(width >= 1 && height >= 1 && width <= kMaxImageSide && height <= kMaxImageSide,
              "resize to ", width, "x", height, ": each side must be between 1 and ",
              kMaxImageSide);
  LOCUS_CHECK(in.width >= 1 && in.height >= 1 && in.rgb.size() == size_t(in.width * in.height * 3),
              "resize of an empty or inconsistent image");
  const bool horizontal = width != in.width, vertical = height != in.height;
  if (!vertical) return horizontal ? horizontal_pass(in, width, 0, in.height) : in;
  // As PIL: the horizontal pass only covers the source rows the vertical pass reads.
  const PassCoefficients pc = bilinear_coefficients(in.height, height);
  const int64_t first_row = pc.first.front();
  const int64_t end_row = pc.first.back() + pc.count.back();
  if (!horizontal) return vertical_pass(in, height, pc, 0);
  return vertical_pass(horizontal_pass(in, width, first_row, end_row), height, pc, first_row);
}

std::pair<int64_t, int64_t> resized_size(const Image& image, int64_t resize_short,
                                         LongSide long_side) {
  LOCUS_CHECK(image.width >= 1 && image.height >= 1, "preprocessing: empty image");
  LOCUS_CHECK(resize_short >= 1 && resize_short <= kMaxImageSide, "preprocessing: resize to ",
              resize_short, " is outside [1, ", kMaxImageSide, "]");
  // torchvision Resize(int): short side to resize_short, long side int(resize_short * long / short)
  const bool portrait = image.width <= image.height;
  const int64_t short_side = portrait ? image.width : image.height;
  const int64_t long_side_in = portrait ? image.height : image.width;
  const double exact = double(resize_short * long_side_in) / double(short_side);  // as Python's /
  int64_t new_long = int64_t(exact);
  if (long_side == LongSide::Round) {
    const double fraction = exact - double(new_long);
    if (fraction > 0.5 || (fraction == 0.5 && new_long % 2 != 0)) ++new_long;
  }
  return portrait ? std::pair{resize_short, new_long} : std::pair{new_long, resize_short};
}

Tensor preprocess_imagenet(const Image& image, int64_t resize_short, int64_t crop,
                           LongSide long_side) {
  LOCUS_CHECK(crop >= 1 && crop <= resize_short, "preprocessing: need 1 <= crop (", crop,
              ") <= resize (", resize_short, ")");
  const auto [width, height] = resized_size(image, resize_short, long_side);
  const Image resized = resize_bilinear(image, width, height);

  const int64_t top = crop_offset(height - crop);
  const int64_t left = crop_offset(width - crop);
  const float mean[3] = {0.485f, 0.456f, 0.406f};
  const float stddev[3] = {0.229f, 0.224f, 0.225f};
  Tensor t(DType::F32, {1, 3, crop, crop});
  float* out = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int64_t y = 0; y < crop; ++y)
      for (int64_t x = 0; x < crop; ++x) {
        const float v = float(resized.at(top + y, left + x, c)) / 255.0f;
        *out++ = (v - mean[c]) / stddev[c];
      }
  return t;
}

}  // namespace locus::cli
