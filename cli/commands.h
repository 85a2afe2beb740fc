// The subcommands of `locus` and what they share.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

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
int cmd_energy(int argc, char** argv);     // cli/cmd_energy.cpp (accelerator model)
int cmd_decompose(int argc, char** argv);  // cli/cmd_decompose.cpp (CP decomposition)

// Set by the CLI fuzzer (tests/fuzz/cli_fuzzer.cpp): every command then returns 0 as soon as its
// options are parsed and checked, before it resolves or loads a model or reads its inputs.
bool& stop_after_options();

// "512K (option)", "off (env)", "512K (os)", "off (default)" (L2 unknown); "scan (default)",
// "row (option)": the value and setting_source_name of its source, as in the JSON.
std::string l2_setting_label(const PointwiseTilingSettings& t);
std::string order_setting_label(const PointwiseTilingSettings& t);
// Resolves o.backend's tiling settings once into o.backend.tiling when one of `backends` plans 1x1
// convs (BackendCapabilities::pointwise_tiling): a bad $LOCUS_L2 / $LOCUS_TILE_ORDER fails before
// any work, and every session, table and JSON of the command then uses that one object.
void resolve_tiling_once(SessionOptions& o, const std::vector<std::string>& backends);

// MODEL may be a .onnx path, a folder holding exactly one .onnx file (the ONNX test layout), or
// either of those relative to the model search path (--model-dir, $LOCUS_MODEL_DIR, ../shared/models).
// "builtin:mobilenetv2" and "builtin:resnet50" name the in-code builders (models/builders.h, seeded
// random weights, 224x224) and are returned unchanged.
std::string resolve_model(const std::string& model, const std::string& model_dir);

// The graph of a resolved MODEL (an .onnx path or a builtin: name), symbolic dims set to `batch`.
Graph load_model_graph(const std::string& model, int64_t batch);
// --shape [NAME=]DIMS (DIMS like 1x3x640x640) as NAME ("" when omitted) and the shape; bad text is
// a UsageError naming the option. bench, info and energy take the same form.
std::pair<std::string, Shape> parse_shape_spec(const std::string& spec);
// Binds the shape of input NAME (or of g's one input) to DIMS (--shape of info and energy), e.g. the
// symbolic H and W of PP-OCR's [N,3,H,W]. Bad text, no such input, a model with several inputs and
// no NAME, or another rank is a UsageError naming the option.
void bind_input_shape(Graph& g, const std::string& spec);

// A session of MODEL found as the CLI finds it (resolve_model with model_dir, then
// load_model_graph with o.batch): what the public C++ API (api/) and the Python module open.
Session open_session(const std::string& model, const std::string& model_dir, const SessionOptions& o);

// The options of the public API and the Python module (locus.Session(...)), as SessionOptions,
// each checked as the CLI checks its flag (one-line Error naming it): threads 0 (all cores) to
// 1024, l2_bytes -1 (environment, then the OS), 0 (off) or an L2 size, decompose a policy such as
// "rank=16" ("" for none), batch 1 to 4096, max_memory_bytes 0 (the default budget) or more.
// An unknown backend is refused when the session is made.
SessionOptions simple_session_options(const std::string& backend, int threads, int64_t l2_bytes, bool fuse,
                                      const std::string& decompose, int64_t batch, int64_t max_memory_bytes);

}  // namespace locus::cli
