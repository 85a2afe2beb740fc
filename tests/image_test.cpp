// Tests of image decoding and ImageNet preprocessing: the five photos against the PIL-made
// reference tensors, the resampler against hand calculations and an independent floating-point
// version, crop placement, colour conversions of JPEGs and PNGs written here with libjpeg's and
// libpng's encoders, and one-line errors for bad files (truncated, corrupt, over-size, other
// formats).
#include "cli/image.h"

#include <gtest/gtest.h>
// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
// clang-format on
#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "importers/onnx/onnx_importer.h"
#include "tests/image_encode.h"
#include "tests/test_support.h"

namespace locus {
namespace {

namespace fs = std::filesystem;
using cli::Image;

Image make_image(int64_t w, int64_t h, const std::vector<uint8_t>& rgb) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb = rgb;
  return img;
}

// A grey image (R = G = B) from one value per pixel.
Image grey(int64_t w, int64_t h, const std::vector<int>& v) {
  std::vector<uint8_t> rgb;
  for (int x : v) rgb.insert(rgb.end(), 3, uint8_t(x));
  return make_image(w, h, rgb);
}

std::vector<int> red_channel(const Image& img) {
  std::vector<int> r;
  for (size_t i = 0; i < img.rgb.size(); i += 3) r.push_back(img.rgb[i]);
  return r;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  std::string path = (fs::path(test::temp_dir()) / name).string();
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The Error message thrown by f, or "" if none.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};

TEST(Image, MatchesPilReferenceOnPhotos) {
  const std::string models = test::shared_models_dir();
  if (models.empty() || !fs::is_directory(fs::path(models) / "images"))
    GTEST_SKIP() << "shared models folder not found";
  const char* photos[] = {"cat", "dog", "eagle", "finch", "grace_hopper"};
  for (int set = 0; set < 5; ++set) {
    SCOPED_TRACE(photos[set]);
    const fs::path dir = fs::path(models) / "mobilenetv2-12-fp32-from-int8" /
                         ("test_data_set_" + std::to_string(set));
    const Tensor ref = onnx_import::load_tensor_file((dir / "input_0.pb").string());
    const Image img = cli::decode_image(
        (fs::path(models) / "images" / (std::string(photos[set]) + ".jpg")).string());
    // The reference generator rounded the long side (finch: 256 * 500 / 416 = 307.7 -> 308) where
    // torchvision truncates (307); the other four photos resize to the same size either way.
    const Tensor got = cli::preprocess_imagenet(img, 256, 224, cli::LongSide::Round);
    const bool same_size = cli::resized_size(img, 256, cli::LongSide::Truncate) ==
                           cli::resized_size(img, 256, cli::LongSide::Round);
    EXPECT_EQ(same_size, std::string(photos[set]) != "finch");
    ASSERT_EQ(got.shape, (Shape{1, 3, 224, 224}));
    ASSERT_EQ(ref.shape, got.shape);
    ASSERT_EQ(ref.dtype, DType::F32);
    const float* a = got.data<float>();
    const float* b = ref.data<float>();
    const int64_t n = got.numel();
    double sum = 0, max = 0;
    int64_t exact = 0, max_levels = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = std::fabs(double(a[i]) - double(b[i]));
      sum += d;
      max = std::max(max, d);
      exact += d < 1e-6;
      // back to 8-bit levels: one level is 1 / (255 * std) ~ 0.017 after normalisation
      const int c = int(i / (224 * 224));
      auto level = [&](float v) { return std::lround((v * kStd[c] + kMean[c]) * 255.0f); };
      max_levels = std::max<int64_t>(max_levels, std::labs(level(a[i]) - level(b[i])));
    }
    const double mean = sum / double(n);
    std::printf(
        "[ image    ] %-13s %4lldx%-4lld mean |diff| %.5f  max |diff| %.4f (%lld levels)  "
        "differing %lld of %lld\n",
        photos[set], (long long)img.width, (long long)img.height, mean, max,
        (long long)max_levels, (long long)(n - exact), (long long)n);
    // Measured with stb_image: max 2 8-bit levels (0.035), 2161..20639 of the 150528 values
    // differing. With libjpeg (as PIL) every 8-bit level is the same: only float rounding may differ
    // (measured: max 0, none differing, with Debian 12's libjpeg-turbo 2.1.5).
    EXPECT_EQ(max_levels, 0);
    EXPECT_LT(max, 1e-5);
    EXPECT_LT(mean, 1e-7);
  }
}

TEST(Image, BilinearUpscaleByTwoMatchesHandCalculation) {
  // PIL: output centres at 0.25, 0.75, 1.25, 1.75 in input pixels; triangle filter, edges clamped:
  // [0, 100] -> [0, 0.75*0 + 0.25*100, 0.25*0 + 0.75*100, 100]
  EXPECT_EQ(red_channel(cli::resize_bilinear(grey(2, 1, {0, 100}), 4, 1)),
            (std::vector<int>{0, 25, 75, 100}));
  EXPECT_EQ(red_channel(cli::resize_bilinear(grey(1, 2, {0, 100}), 1, 4)),
            (std::vector<int>{0, 25, 75, 100}));
}

TEST(Image, BilinearDownscaleIsAntialiased) {
  // 4 -> 2: the triangle widens to radius 2; centres at 1 and 3, weights (0.75, 0.75, 0.25) / 1.75:
  // (3*0 + 3*100 + 1*200) / 7 = 71.4 and (1*100 + 3*200 + 3*40) / 7 = 117.1
  EXPECT_EQ(red_channel(cli::resize_bilinear(grey(4, 1, {0, 100, 200, 40}), 2, 1)),
            (std::vector<int>{71, 117}));
  EXPECT_EQ(red_channel(cli::resize_bilinear(grey(1, 4, {0, 100, 200, 40}), 1, 2)),
            (std::vector<int>{71, 117}));
}

TEST(Image, ConstantImageStaysConstant) {
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 300 * 200; ++i) rgb.insert(rgb.end(), {10, 128, 250});
  const Image img = make_image(300, 200, rgb);
  const Image resized = cli::resize_bilinear(img, 97, 411);
  for (size_t i = 0; i < resized.rgb.size(); i += 3) {
    ASSERT_EQ(resized.rgb[i], 10);
    ASSERT_EQ(resized.rgb[i + 1], 128);
    ASSERT_EQ(resized.rgb[i + 2], 250);
  }
  const Tensor t = cli::preprocess_imagenet(img);
  ASSERT_EQ(t.shape, (Shape{1, 3, 224, 224}));
  const float expected[3] = {(10 / 255.f - 0.485f) / 0.229f, (128 / 255.f - 0.456f) / 0.224f,
                             (250 / 255.f - 0.406f) / 0.225f};
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 224 * 224; ++i)
      ASSERT_FLOAT_EQ(t.data<float>()[c * 224 * 224 + i], expected[c]);
}

// An independent floating-point version of the antialiased bilinear resize (the same filter, no
// fixed point), rounding to 8 bits after each pass: the fixed-point result may differ by one level.
std::vector<double> float_pass(const std::vector<double>& in, int64_t in_size, int64_t out_size) {
  const double scale = double(in_size) / double(out_size);
  const double radius = std::max(scale, 1.0);
  std::vector<double> out(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const double centre = (i + 0.5) * scale;  // in input pixel units
    double sum = 0, weight = 0;
    for (int64_t k = 0; k < in_size; ++k) {
      const double w = std::max(0.0, 1.0 - std::fabs((k + 0.5 - centre) / radius));
      sum += w * in[size_t(k)];
      weight += w;
    }
    out[size_t(i)] = std::clamp(std::round(sum / weight), 0.0, 255.0);
  }
  return out;
}

TEST(Image, ResizeAgreesWithFloatingPointFilter) {
  const int64_t w = 97, h = 61, ow = 13, oh = 150;  // strong horizontal downscale, vertical upscale
  std::mt19937 rng(3);
  std::vector<uint8_t> rgb(size_t(w * h * 3));
  for (auto& v : rgb) v = uint8_t(rng() % 256);
  const Image img = make_image(w, h, rgb);
  const Image got = cli::resize_bilinear(img, ow, oh);
  ASSERT_EQ(got.width, ow);
  ASSERT_EQ(got.height, oh);
  int max_diff = 0;
  for (int c = 0; c < 3; ++c) {
    std::vector<std::vector<double>> rows;  // horizontal pass
    for (int64_t y = 0; y < h; ++y) {
      std::vector<double> row;
      for (int64_t x = 0; x < w; ++x) row.push_back(img.at(y, x, c));
      rows.push_back(float_pass(row, w, ow));
    }
    for (int64_t x = 0; x < ow; ++x) {  // vertical pass
      std::vector<double> col;
      for (int64_t y = 0; y < h; ++y) col.push_back(rows[size_t(y)][size_t(x)]);
      const std::vector<double> out = float_pass(col, h, oh);
      for (int64_t y = 0; y < oh; ++y)
        max_diff = std::max(max_diff, std::abs(int(got.at(y, x, c)) - int(out[size_t(y)])));
    }
  }
  EXPECT_LE(max_diff, 1);
}

TEST(Image, ResizeShortSideAndCenterCrop) {
  // 341 x 256 needs no resize (short side already 256, long = int(256 * 341 / 256) = 341); the crop
  // starts at left = round(117 / 2) = 58 (half to even), top = 16. Pixel (x, y) holds (x, y, 7).
  std::vector<uint8_t> rgb;
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 341; ++x) rgb.insert(rgb.end(), {uint8_t(x % 256), uint8_t(y), 7});
  const Tensor t = cli::preprocess_imagenet(make_image(341, 256, rgb));
  auto pixel = [&](int c, int y, int x) {
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    return std::lround((t.data<float>()[(c * 224 + y) * 224 + x] * sd[c] + mean[c]) * 255.f);
  };
  EXPECT_EQ(pixel(0, 0, 0), 58);
  EXPECT_EQ(pixel(1, 0, 0), 16);
  EXPECT_EQ(pixel(0, 223, 223), (58 + 223) % 256);
  EXPECT_EQ(pixel(1, 223, 223), 16 + 223);
  EXPECT_EQ(pixel(2, 100, 100), 7);

  using Size = std::pair<int64_t, int64_t>;
  auto size_of = [&](int64_t w, int64_t h, cli::LongSide mode) {
    Image img = make_image(w, h, std::vector<uint8_t>(size_t(w * h * 3), 0));
    return cli::resized_size(img, 256, mode);
  };
  EXPECT_EQ(size_of(500, 416, cli::LongSide::Truncate), (Size{307, 256}));  // 307.69
  EXPECT_EQ(size_of(500, 416, cli::LongSide::Round), (Size{308, 256}));
  EXPECT_EQ(size_of(773, 512, cli::LongSide::Truncate), (Size{386, 256}));  // 386.5
  EXPECT_EQ(size_of(773, 512, cli::LongSide::Round), (Size{386, 256}));     // half to even
  EXPECT_EQ(size_of(517, 606, cli::LongSide::Truncate), (Size{256, 300}));  // portrait
  EXPECT_EQ(size_of(256, 256, cli::LongSide::Truncate), (Size{256, 256}));

  // Portrait 200 x 300 -> 256 x 384 (int(256 * 300 / 200)), crop top 80, left 16.
  std::vector<uint8_t> flat(200 * 300 * 3, 90);
  const Tensor p = cli::preprocess_imagenet(make_image(200, 300, flat), 256, 224);
  EXPECT_EQ(p.shape, (Shape{1, 3, 224, 224}));
  EXPECT_THROW(cli::preprocess_imagenet(make_image(200, 300, flat), 100, 224), Error);
}

// ---- encoders for the tests (libjpeg's compressor, libpng's writer) -----------------------------

using test::encode_png;
using test::JpegOptions;
using test::PngSpec;

// A JPEG of `components` samples per pixel given as `in_space`, stored as `jpeg_space`, without
// chroma subsampling.
std::string make_jpeg(int w, int h, const std::vector<uint8_t>& pixels, int components,
                      J_COLOR_SPACE in_space, J_COLOR_SPACE jpeg_space, int quality = 100) {
  JpegOptions o;
  o.components = components;
  o.in_space = in_space;
  o.stored = jpeg_space;
  o.quality = quality;
  o.subsample = false;
  return test::encode_jpeg(w, h, pixels, o);
}

std::string make_rgb_jpeg(int w, int h, const std::vector<uint8_t>& rgb, int quality = 90) {
  return make_jpeg(w, h, rgb, 3, JCS_RGB, JCS_YCbCr, quality);
}

std::string make_png(const PngSpec& s) { return encode_png(s); }

Image decode(const std::string& bytes, const std::string& what = "test image") {
  return cli::decode_image_from_memory(bytes.data(), bytes.size(), what);
}

void expect_one_line_error(const std::string& bytes, const std::string& what,
                           const std::vector<std::string>& parts) {
  const std::string e = error_of([&] { decode(bytes, what); });
  ASSERT_FALSE(e.empty()) << what << " was accepted";
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_NE(e.find("'" + what + "'"), std::string::npos) << e;
  for (const auto& p : parts) EXPECT_NE(e.find(p), std::string::npos) << "message: " << e;
}

// ---- JPEG -----------------------------------------------------------------------------------------

TEST(Image, RgbJpegRoundTrip) {
  const int w = 64, h = 48;
  std::vector<uint8_t> rgb;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) rgb.insert(rgb.end(), {uint8_t(x * 4), uint8_t(y * 5), 100});
  const Image img = decode(make_rgb_jpeg(w, h, rgb, 95));
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  int max_diff = 0;
  for (size_t i = 0; i < rgb.size(); ++i) max_diff = std::max(max_diff, std::abs(rgb[i] - img.rgb[i]));
  EXPECT_LE(max_diff, 6);  // a smooth gradient at quality 95, no subsampling
  EXPECT_GT(img.at(20, 30, 0), 100);  // and not transposed or channel-swapped
  EXPECT_LT(img.at(20, 30, 2), 110);
}

TEST(Image, GreyJpegIsReplicated) {
  const int w = 40, h = 24;
  std::vector<uint8_t> grey;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) grey.push_back(uint8_t(30 + x * 4 + y));
  const Image img = decode(make_jpeg(w, h, grey, 1, JCS_GRAYSCALE, JCS_GRAYSCALE));
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      ASSERT_EQ(img.at(y, x, 0), img.at(y, x, 1));
      ASSERT_EQ(img.at(y, x, 0), img.at(y, x, 2));
      ASSERT_LE(std::abs(int(img.at(y, x, 0)) - int(grey[size_t(y * w + x)])), 2) << x << "," << y;
    }
}

// Four 16x16 blocks of flat ink, stored the way Adobe (and PIL's "CMYK;I") stores CMYK: inverted,
// 255 - ink. RGB expected from PIL's formula r = (255 - k) - c * (255 - k) / 255, worked by hand.
TEST(Image, CmykAndYcckJpegAsPil) {
  struct Block {
    int c, m, y, k, r, g, b;
  };
  const Block blocks[4] = {
      {255, 0, 0, 0, 0, 255, 255},        // cyan
      {0, 0, 0, 128, 127, 127, 127},      // half black: 255 - 128
      {128, 0, 255, 0, 127, 255, 0},      // 255 - 128 = 127, 255, 0
      {0, 255, 0, 51, 204, 0, 204},       // k 51: nk 204; magenta ink removes all green
  };
  const int w = 64, h = 16;
  std::vector<uint8_t> cmyk;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const Block& b = blocks[x / 16];
      cmyk.insert(cmyk.end(), {uint8_t(255 - b.c), uint8_t(255 - b.m), uint8_t(255 - b.y),
                               uint8_t(255 - b.k)});
    }
  for (J_COLOR_SPACE stored : {JCS_CMYK, JCS_YCCK}) {
    SCOPED_TRACE(stored == JCS_CMYK ? "CMYK" : "YCCK");
    const Image img = decode(make_jpeg(w, h, cmyk, 4, JCS_CMYK, stored));
    ASSERT_EQ(img.width, w);
    ASSERT_EQ(img.height, h);
    for (int i = 0; i < 4; ++i) {
      const int x = i * 16 + 8, y = 8;
      EXPECT_NEAR(img.at(y, x, 0), blocks[i].r, 3) << "block " << i;
      EXPECT_NEAR(img.at(y, x, 1), blocks[i].g, 3) << "block " << i;
      EXPECT_NEAR(img.at(y, x, 2), blocks[i].b, 3) << "block " << i;
    }
  }
}

TEST(Image, ProgressiveJpegDecodes) {
  const int w = 33, h = 17;  // not a multiple of the block size
  std::vector<uint8_t> rgb;
  for (int i = 0; i < w * h; ++i) rgb.insert(rgb.end(), {200, 40, 90});
  JpegOptions o;  // libjpeg's defaults (quality 75, 4:2:0), progressive scans
  o.quality = 75;
  o.progressive = true;
  const std::string jpeg = test::encode_jpeg(w, h, rgb, o);
  const Image img = decode(jpeg);
  ASSERT_EQ(img.width, w);
  EXPECT_NEAR(img.at(h - 1, w - 1, 0), 200, 3);
  EXPECT_NEAR(img.at(h - 1, w - 1, 1), 40, 3);
  EXPECT_NEAR(img.at(0, 0, 2), 90, 3);
  // cut inside the scans: refused
  expect_one_line_error(jpeg.substr(0, jpeg.size() * 3 / 4), "prog.jpg", {"truncated JPEG"});
}

TEST(Image, TruncatedJpegIsRejected) {
  const int w = 64, h = 48;
  std::vector<uint8_t> rgb;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) rgb.insert(rgb.end(), {uint8_t(x * 4), uint8_t(y * 5), 100});
  const std::string jpeg = make_rgb_jpeg(w, h, rgb);
  ASSERT_EQ(decode(jpeg).width, w);
  // without the end-of-image marker, in the scan, in the headers
  for (size_t keep : {jpeg.size() - 2, jpeg.size() * 2 / 3, size_t(300), size_t(10)}) {
    SCOPED_TRACE(keep);
    expect_one_line_error(jpeg.substr(0, keep), "cut.jpg", {"truncated JPEG"});
  }

  // and a real photo cut in half, from a file
  const std::string models = test::shared_models_dir();
  if (models.empty()) return;
  const std::string photo = read_bytes((fs::path(models) / "images" / "dog.jpg").string());
  if (photo.empty()) return;
  const std::string half = write_file("half_dog.jpg", photo.substr(0, photo.size() / 2));
  const std::string e = error_of([&] { cli::decode_image(half); });
  EXPECT_NE(e.find("'" + half + "' is a truncated JPEG"), std::string::npos) << e;
}

TEST(Image, CorruptJpegIsRejected) {
  const int w = 64, h = 48;
  std::vector<uint8_t> rgb;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) rgb.insert(rgb.end(), {uint8_t(x * 4), uint8_t(y * 5 ^ x), 100});
  const std::string jpeg = make_rgb_jpeg(w, h, rgb);
  const size_t sos = jpeg.find("\xFF\xDA");
  ASSERT_NE(sos, std::string::npos);
  // a restart marker in the middle of the entropy-coded data, which has no restart interval:
  // libjpeg's "Corrupt JPEG data" warning, an error here
  std::string bad = jpeg;
  const size_t mid = sos + (jpeg.size() - sos) / 2;
  bad[mid] = char(0xFF);
  bad[mid + 1] = char(0xD3);
  expect_one_line_error(bad, "corrupt.jpg", {"not a valid JPEG", "Corrupt JPEG data"});
  // the Huffman table segment overwritten
  std::string bad_table = jpeg;
  const size_t dht = jpeg.find("\xFF\xC4");
  ASSERT_NE(dht, std::string::npos);
  for (size_t i = dht + 5; i < dht + 21; ++i) bad_table[i] = char(0xFF);
  expect_one_line_error(bad_table, "bad_table.jpg", {"not a valid JPEG"});
  // a 2-component JPEG (no colour space libjpeg can convert to RGB)
  std::vector<uint8_t> two(size_t(16 * 16 * 2), 77);
  expect_one_line_error(make_jpeg(16, 16, two, 2, JCS_UNKNOWN, JCS_UNKNOWN), "two.jpg",
                        {"not a valid JPEG"});
}

// ---- PNG ------------------------------------------------------------------------------------------

TEST(Image, PngColourTypes) {
  {  // 8-bit RGB, interlaced
    PngSpec s;
    s.w = 9;
    s.h = 9;
    s.interlaced = true;
    for (int i = 0; i < 81; ++i) s.rows.insert(s.rows.end(), {uint8_t(i), uint8_t(255 - i), uint8_t(i * 3)});
    const Image img = decode(make_png(s));
    ASSERT_EQ(img.width, 9);
    EXPECT_EQ(img.rgb, s.rows);
  }
  {  // palette of 2 bits with transparency: colours looked up, alpha dropped
    PngSpec s;
    s.w = 4;
    s.h = 2;
    s.color_type = PNG_COLOR_TYPE_PALETTE;
    s.bit_depth = 2;
    s.palette = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}, {255, 255, 255}};
    s.trns = {0, 128};                  // entry 0 fully transparent, 1 half
    s.rows = {0b00011011, 0b11100100};  // row 0: 0 1 2 3, row 1: 3 2 1 0
    const Image img = decode(make_png(s));
    ASSERT_EQ(img.width, 4);
    ASSERT_EQ(img.height, 2);
    EXPECT_EQ(img.rgb, (std::vector<uint8_t>{10, 20, 30, 200, 100, 0, 1, 2, 3, 255, 255, 255,  //
                                             255, 255, 255, 1, 2, 3, 200, 100, 0, 10, 20, 30}));
  }
  {  // 16-bit RGB: the high byte of each big-endian sample
    PngSpec s;
    s.w = 2;
    s.bit_depth = 16;
    s.rows = {0x12, 0xAB, 0xFF, 0xFF, 0x00, 0xFF, 0x80, 0x7F, 0x01, 0x00, 0x7F, 0x80};
    EXPECT_EQ(decode(make_png(s)).rgb, (std::vector<uint8_t>{0x12, 0xFF, 0x00, 0x80, 0x01, 0x7F}));
  }
  {  // 16-bit RGBA: high byte, alpha dropped
    PngSpec s;
    s.color_type = PNG_COLOR_TYPE_RGBA;
    s.bit_depth = 16;
    s.rows = {0xC0, 0x01, 0x40, 0xFE, 0x05, 0x05, 0x00, 0x00};
    EXPECT_EQ(decode(make_png(s)).rgb, (std::vector<uint8_t>{0xC0, 0x40, 0x05}));
  }
  {  // 8-bit grey + alpha: grey replicated; alpha 0 does not make the pixel black or white
    PngSpec s;
    s.w = 3;
    s.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    s.rows = {200, 0, 17, 255, 90, 128};
    EXPECT_EQ(decode(make_png(s)).rgb,
              (std::vector<uint8_t>{200, 200, 200, 17, 17, 17, 90, 90, 90}));
  }
  {  // 1-bit grey: 0 and 1 are black and white
    PngSpec s;
    s.w = 3;
    s.color_type = PNG_COLOR_TYPE_GRAY;
    s.bit_depth = 1;
    s.rows = {0b10100000};
    EXPECT_EQ(decode(make_png(s)).rgb, (std::vector<uint8_t>{255, 255, 255, 0, 0, 0, 255, 255, 255}));
  }
  {  // 16-bit grey: the high byte, replicated
    PngSpec s;
    s.w = 2;
    s.color_type = PNG_COLOR_TYPE_GRAY;
    s.bit_depth = 16;
    s.rows = {0x34, 0x99, 0xFF, 0x00};
    EXPECT_EQ(decode(make_png(s)).rgb, (std::vector<uint8_t>{0x34, 0x34, 0x34, 0xFF, 0xFF, 0xFF}));
  }
}

// A PNG whose IHDR is rewritten to w x h (CRC fixed), keeping a 1x1 image's data.
std::string png_with_header_size(uint32_t w, uint32_t h) {
  PngSpec s;
  s.rows = {1, 2, 3};
  std::string png = make_png(s);
  // signature (8), length (4), "IHDR" (4) at 12, width at 16, height at 20, CRC at 29
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  for (int i = 0; i < 4; ++i) {
    png[size_t(16 + i)] = char((w >> (24 - 8 * i)) & 0xFF);
    png[size_t(20 + i)] = char((h >> (24 - 8 * i)) & 0xFF);
  }
  const uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17));
  for (int i = 0; i < 4; ++i) png[size_t(29 + i)] = char((crc >> (24 - 8 * i)) & 0xFF);
  return png;
}

TEST(Image, OverSizeHeadersAreRefusedBeforeDecoding) {
  const auto t0 = std::chrono::steady_clock::now();
  expect_one_line_error(png_with_header_size(100000, 100000), "huge.png",
                        {"is 100000x100000 pixels; each side must be between 1 and 16384"});
  // each side within the limit, but 16384 * 16384 = 268435456 pixels is over the total
  expect_one_line_error(png_with_header_size(16384, 16384), "big.png",
                        {"16384x16384 = 268435456 pixels, more than the limit of 67108864"});
  // the largest width PNG allows: refused before libpng sizes its row buffers from it (16 GiB)
  expect_one_line_error(png_with_header_size(0x7FFFFFFF, 1), "wide.png",
                        {"is 2147483647x1 pixels; each side must be between 1 and 16384"});
  // refused from the header: no 30 GB allocation, no decoding of 10^10 pixels
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  // the same 1x1 file with its own size decodes
  EXPECT_EQ(decode(png_with_header_size(1, 1)).rgb, (std::vector<uint8_t>{1, 2, 3}));

  // a JPEG whose frame header says 20000 x 10 (its SOF rewritten)
  std::vector<uint8_t> rgb(16 * 8 * 3, 50);
  std::string jpeg = make_rgb_jpeg(16, 8, rgb);
  const size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  // FF C0, length (2), precision (1), height (2), width (2)
  jpeg[sof + 5] = char(10 >> 8), jpeg[sof + 6] = char(10 & 0xFF);
  jpeg[sof + 7] = char(20000 >> 8), jpeg[sof + 8] = char(20000 & 0xFF);
  expect_one_line_error(jpeg, "huge.jpg", {"'huge.jpg' is 20000x10 pixels; each side must be"});
  jpeg[sof + 5] = char(10000 >> 8), jpeg[sof + 6] = char(10000 & 0xFF);
  jpeg[sof + 7] = char(10000 >> 8), jpeg[sof + 8] = char(10000 & 0xFF);
  expect_one_line_error(jpeg, "big.jpg", {"10000x10000 = 100000000 pixels, more than the limit"});
}

TEST(Image, TruncatedAndCorruptPngAreRejected) {
  PngSpec s;
  s.w = 32;
  s.h = 32;
  std::mt19937 rng(5);
  for (int i = 0; i < 32 * 32 * 3; ++i) s.rows.push_back(uint8_t(rng()));  // incompressible
  const std::string png = make_png(s);
  ASSERT_EQ(decode(png).rgb, s.rows);
  // IEND (12 bytes) missing, cut inside the image data, inside IHDR
  for (size_t keep : {png.size() - 12, png.size() - 1, png.size() / 2, size_t(20)}) {
    SCOPED_TRACE(keep);
    expect_one_line_error(png.substr(0, keep), "cut.png", {"truncated PNG"});
  }
  std::string bad = png;  // a flipped bit in the compressed image data
  bad[png.size() / 2] ^= 0x10;
  expect_one_line_error(bad, "flip.png", {"not a valid PNG"});
  std::string bad_crc = png;  // a flipped bit in the CRC of the header chunk
  bad_crc[32] ^= 0x01;
  expect_one_line_error(bad_crc, "crc.png", {"not a valid PNG", "CRC error"});
  std::string bad_depth = png_with_header_size(1, 1);
  bad_depth[24] = 7;  // bit depth 7
  expect_one_line_error(bad_depth, "depth.png", {"not a valid PNG"});
}

// ---- other inputs ---------------------------------------------------------------------------------

TEST(Image, OtherFormatsAndGarbageAreRefused) {
  const std::string ppm = "P6\n2 1\n255\n" + std::string(6, '\x7f');
  expect_one_line_error(ppm, "tiny.ppm", {"is a PNM image; only JPEG and PNG are supported"});
  expect_one_line_error("BM" + std::string(60, '\0'), "x.bmp", {"is a BMP image"});
  expect_one_line_error("GIF89a" + std::string(30, '\0'), "x.gif", {"is a GIF image"});
  std::string garbage;
  std::mt19937 rng(9);
  for (int i = 0; i < 1000; ++i) garbage.push_back(char(rng()));
  garbage[0] = 'Z';
  expect_one_line_error(garbage, "noise.bin", {"is not a JPEG or PNG image"});
  // the right signatures followed by noise
  expect_one_line_error("\xFF\xD8\xFF" + garbage, "noise.jpg", {"JPEG"});
  expect_one_line_error(std::string("\x89PNG\r\n\x1a\n", 8) + garbage, "noise.png",
                        {"not a valid PNG"});
  expect_one_line_error(std::string("\xFF\xD8\xFF", 3), "sig.jpg", {"truncated JPEG"});
}

TEST(Image, ErrorsAreOneLine) {
  auto expect_error = [&](auto f, const std::string& part) {
    const std::string e = error_of(f);
    EXPECT_NE(e.find(part), std::string::npos) << "message: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  const std::string txt = write_file("notes.txt", "hello, this is not an image\n");
  expect_error([&] { cli::decode_image(txt); }, "'" + txt + "' is not a JPEG or PNG image");
  expect_error([&] { cli::decode_image(txt + ".missing.jpg"); }, "no such file");
  expect_error([&] { cli::decode_image(write_file("empty.jpg", "")); }, "empty");
  expect_error([&] { cli::decode_image(test::temp_dir()); }, "directory");
}

}  // namespace
}  // namespace locus
