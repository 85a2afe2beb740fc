#include "models/model_path.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "graph/error.h"

namespace fs = std::filesystem;

namespace locus::models {
namespace {

// The folder of the running executable, "" if the OS does not say.
fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

std::vector<std::string> model_search_path(const std::string& explicit_dir) {
  std::vector<std::string> dirs;
  auto add = [&](const fs::path& p) {
    std::error_code ec;
    if (p.empty() || !fs::is_directory(p, ec)) return;
    const std::string d = fs::weakly_canonical(p, ec).string();
    if (std::find(dirs.begin(), dirs.end(), d) == dirs.end()) dirs.push_back(d);  // each folder once
  };
  if (!explicit_dir.empty()) add(explicit_dir);
  if (const char* e = std::getenv("LOCUS_MODEL_DIR"); e && *e) add(e);
  // shared/models in the nearest folder above the executable that has one: for build/locus in a
  // checkout that is ../shared/models beside the checkout, wherever the checkout is (no path from
  // the build machine is compiled in)
  std::error_code ec;
  for (fs::path d = executable_dir(); !d.empty(); d = d.parent_path()) {
    if (fs::is_directory(d / "shared" / "models", ec)) {
      add(d / "shared" / "models");
      break;
    }
    if (d == d.parent_path()) break;
  }
  return dirs;
}

std::string find_model(const std::string& name, const std::string& explicit_dir) {
  std::error_code ec;
  if (fs::exists(name, ec)) return name;
  auto dirs = model_search_path(explicit_dir);
  for (auto& d : dirs)
    if (fs::exists(fs::path(d) / name, ec)) return (fs::path(d) / name).string();
  std::string searched;
  for (auto& d : dirs) searched += (searched.empty() ? "" : ", ") + d;
  fail("model '", name, "' not found (searched: ", searched.empty() ? "no model folder exists" : searched,
       "; set --model-dir or LOCUS_MODEL_DIR)");
}

}  // namespace locus::models
