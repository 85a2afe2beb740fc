#include "models/model_path.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "graph/error.h"

#ifndef LOCUS_SOURCE_DIR
#define LOCUS_SOURCE_DIR "."
#endif

namespace fs = std::filesystem;

namespace locus::models {

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
  add(fs::path(LOCUS_SOURCE_DIR) / ".." / "shared" / "models");
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
