// Writing the CLI's JSON documents to files (cli/json.h).
#include "cli/json.h"

#include <fstream>

#include "graph/error.h"

namespace locus::cli {

void write_json_file(const std::string& path, const Json& j) {
  std::ofstream f(path);
  LOCUS_CHECK(f.good(), "cannot write '", path, "'");
  f << json_text(j) << "\n";
  LOCUS_CHECK(f.good(), "cannot write '", path, "'");
}

}  // namespace locus::cli
