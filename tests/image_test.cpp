// Tests of image decoding and ImageNet preprocessing: the five photos against the PIL-made
// reference tensors, the resampler against hand calculations and an independent floating-point
// version, crop placement, and one-line errors for bad files.
#include "cli/image.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "importers/onnx/onnx_importer.h"
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
    // Measured (stb_image vs PIL's libjpeg): mean 0.00025..0.0024, max 0.035 (two 8-bit levels),
    // 86..99% of the values identical.
    EXPECT_LT(mean, 0.005);
    EXPECT_LT(max, 0.06);
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

TEST(Image, DecodesPpmFromMemory) {
  std::string ppm = "P6\n2 1\n255\n";
  ppm += std::string{char(255), char(0), char(10), char(0), char(128), char(255)};
  const Image img = cli::decode_image_from_memory(ppm.data(), ppm.size(), "tiny.ppm");
  EXPECT_EQ(img.width, 2);
  EXPECT_EQ(img.height, 1);
  EXPECT_EQ(img.rgb, (std::vector<uint8_t>{255, 0, 10, 0, 128, 255}));
  // grey PGM: replicated into R, G, B
  std::string pgm = "P5\n1 1\n255\n";
  pgm += char(77);
  EXPECT_EQ(cli::decode_image_from_memory(pgm.data(), pgm.size()).rgb,
            (std::vector<uint8_t>{77, 77, 77}));
}

TEST(Image, ErrorsAreOneLine) {
  std::vector<std::string> messages;
  auto expect_error = [&](auto f, const std::string& part) {
    const std::string e = error_of(f);
    EXPECT_NE(e.find(part), std::string::npos) << "message: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  const std::string txt = write_file("notes.txt", "hello, this is not an image\n");
  expect_error([&] { cli::decode_image(txt); }, "'" + txt + "' is not a decodable image (stb: ");
  expect_error([&] { cli::decode_image(txt + ".missing.jpg"); }, "no such file");
  expect_error([&] { cli::decode_image(write_file("empty.jpg", "")); }, "empty");
  expect_error([&] { cli::decode_image(test::temp_dir()); }, "directory");
  // The header claims 20000 x 10: refused before any pixel is allocated.
  const std::string huge = "P6\n20000 10\n255\n" + std::string(30, '\0');
  expect_error([&] { cli::decode_image_from_memory(huge.data(), huge.size(), "huge.ppm"); },
               "'huge.ppm' is 20000x10 pixels; each side must be between 1 and 16384");
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::string*>(context);
  out->append(static_cast<const char*>(data), size_t(size));
}

TEST(Image, TruncatedJpegIsRejected) {
  // A JPEG made here (stb_image_write), then the same bytes cut short.
  const int w = 64, h = 48;
  std::vector<uint8_t> rgb;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) rgb.insert(rgb.end(), {uint8_t(x * 4), uint8_t(y * 5), 100});
  std::string jpeg;
  ASSERT_TRUE(stbi_write_jpg_to_func(append_bytes, &jpeg, w, h, 3, rgb.data(), 90));
  const Image ok = cli::decode_image_from_memory(jpeg.data(), jpeg.size(), "made.jpg");
  EXPECT_EQ(ok.width, w);
  EXPECT_EQ(ok.height, h);
  EXPECT_LE(std::abs(int(ok.at(20, 30, 0)) - 120), 6);  // a JPEG round trip is close

  for (size_t keep : {jpeg.size() - 2, jpeg.size() * 2 / 3, size_t(300), size_t(10)}) {
    const std::string cut = jpeg.substr(0, keep);
    const std::string e =
        error_of([&] { cli::decode_image_from_memory(cut.data(), cut.size(), "cut.jpg"); });
    EXPECT_NE(e.find("'cut.jpg'"), std::string::npos) << keep << " bytes: " << e;
  }

  // and a real photo cut in half, from a file
  const std::string models = test::shared_models_dir();
  if (models.empty()) return;
  const std::string photo = read_bytes((fs::path(models) / "images" / "dog.jpg").string());
  if (photo.empty()) return;
  const std::string half = write_file("half_dog.jpg", photo.substr(0, photo.size() / 2));
  const std::string e = error_of([&] { cli::decode_image(half); });
  EXPECT_NE(e.find("truncated JPEG"), std::string::npos) << e;
}

}  // namespace
}  // namespace locus
