#include "tests/test_support.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace locus::test {

std::string shared_models_dir() {
  if (const char* e = std::getenv("LOCUS_MODEL_DIR"); e && *e && fs::is_directory(e)) return e;
  fs::path p = fs::path(LOCUS_SOURCE_DIR) / ".." / "shared" / "models";
  if (fs::is_directory(p)) return fs::canonical(p).string();
  return "";
}

std::string mobilenet_fp32_dir() {
  std::string d = shared_models_dir();
  if (d.empty()) return "";
  fs::path p = fs::path(d) / "mobilenetv2-12-fp32-from-int8";
  return fs::is_directory(p) ? p.string() : "";
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  return random_values<float>(n, seed, std::uniform_real_distribution<float>(lo, hi));
}

double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

std::string temp_dir() {
  static std::string dir = [] {
    fs::path p = fs::temp_directory_path() / ("locus_test_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p.string();
  }();
  return dir;
}

}  // namespace locus::test
