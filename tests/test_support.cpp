#include "tests/test_support.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

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

// A fresh directory (mkdtemp), removed when the process exits normally. It was "locus_test_<pid>",
// never removed: tens of thousands piled up in /tmp, and a test that found a recycled pid's old
// files failed (ImporterExternal.EscapesAreRefused: "cannot copy file: File exists").
std::string temp_dir() {
  static const std::string* dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "locus_test_XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("test::temp_dir: mkdtemp failed in " + tmpl);
    static const pid_t owner = ::getpid();
    auto* d = new std::string(buf.data());  // never destroyed: the exit handler below reads it
    std::atexit([] {
      if (::getpid() != owner) return;  // a forked child that exits normally leaves it alone
      std::error_code ec;
      fs::remove_all(*dir, ec);
    });
    return d;
  }();
  return *dir;
}

}  // namespace locus::test
