// Where model files are found: an explicit --model-dir, then $LOCUS_MODEL_DIR, then shared/models
// in the nearest folder above the executable that has one (for build/locus in a checkout:
// ../shared/models beside the checkout).
#pragma once

#include <string>
#include <vector>

namespace locus::models {

// Folders searched, in order, that exist.
std::vector<std::string> model_search_path(const std::string& explicit_dir = "");

// Resolves `name`: an existing path is returned as is; otherwise the first search-path folder that
// holds `name` (a file or a folder). Throws Error listing the folders searched if none does.
std::string find_model(const std::string& name, const std::string& explicit_dir = "");

}  // namespace locus::models
