// The subcommands of `locus` and what they share.
#pragma once

#include <stdexcept>
#include <string>

#include "runtime/session.h"

namespace locus::cli {

// Wrong command-line usage: printed with a hint to --help, exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int cmd_run(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_check(int argc, char** argv);
int cmd_bench(int argc, char** argv);

// MODEL may be a .onnx path, a folder holding exactly one .onnx file (the ONNX test layout), or
// either of those relative to the model search path (--model-dir, $LOCUS_MODEL_DIR, ../shared/models).
std::string resolve_model(const std::string& model, const std::string& model_dir);

}  // namespace locus::cli
