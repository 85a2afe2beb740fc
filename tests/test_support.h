// Helpers shared by the tests: where the shared models live, deterministic random data, and
// comparison of tensors.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace locus::test {

// ../shared/models beside the checkout, or $LOCUS_MODEL_DIR. Empty if neither exists.
std::string shared_models_dir();
// The fp32 MobileNetV2 test folder (ONNX test layout), or empty if absent.
std::string mobilenet_fp32_dir();

// n values of type T drawn from `dist` with std::mt19937(seed): the same seed gives the same data.
template <class T, class Dist>
std::vector<T> random_values(size_t n, uint32_t seed, Dist dist) {
  std::mt19937 rng(seed);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}
// Integers of type T uniform in [lo, hi].
template <class T>
std::vector<T> random_ints(size_t n, uint32_t seed, int lo, int hi) {
  return random_values<T>(n, seed, std::uniform_int_distribution<int>(lo, hi));
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f);

// max |a - b| over the elements (sizes must match)
double max_abs_diff(const float* a, const float* b, size_t n);

// Scratch directory unique to this test process, created on first call.
std::string temp_dir();

}  // namespace locus::test
