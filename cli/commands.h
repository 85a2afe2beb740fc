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
int cmd_energy(int argc, char** argv);     // cli/cmd_energy.cpp (accelerator model)
int cmd_decompose(int argc, char** argv);  // cli/cmd_decompose.cpp (CP decomposition)

class Args;

// Set by the CLI fuzzer (tests/fuzz/cli_fuzzer.cpp): every command then returns 0 as soon as its
// options are parsed and checked, before it resolves or loads a model or reads its inputs.
bool& stop_after_options();

// --l2 SIZE and --tile-order ORDER, taken by every command that builds a session (run, check,
// bench, info): their --help lines (option names padded to `width`
// columns), and applying them to SessionOptions. Bad values are a UsageError naming the option and
// the value; absent options leave o.l2_bytes = -1 and o.tile_order unset (environment, then OS).
std::string tiling_options_help(int width);
void apply_tiling_options(const Args& a, SessionOptions& o);
// --max-memory SIZE (run, check, bench)
std::string memory_options_help(int width);
void apply_memory_options(const Args& a, SessionOptions& o);
// "512K (--l2)", "off (LOCUS_L2)", "512K (os)", "off (L2 unknown)"; "scan (default)", "row (--tile-order)".
std::string l2_setting_label(const PointwiseTilingSettings& t);
std::string order_setting_label(const PointwiseTilingSettings& t);
// "flag", "env", "os" or "none" (L2 unknown), "default" (order): for JSON.
std::string setting_source_label(SettingSource s, bool is_l2);

// --decompose POLICY and --decompose-form 3|4, taken by run, check, bench and energy: their --help
// lines (option names padded to `width` columns), and applying them to SessionOptions::decompose
// (POLICY as RankPolicy::parse: rank=16, ratio=0.5, error=0.05, macs=0.3). A bad value is a
// UsageError naming the option and the value; --decompose-form without --decompose is one too.
// Absent --decompose leaves o.decompose unset.
std::string decompose_options_help(int width);
// --accel-schedule S, --accel PRESET|FILE and --buffer SIZE for the accel backend (run, check,
// bench): help lines, and applying them (bad values: UsageError naming the option; an unknown
// preset or a bad config file fails when the session is created, with the config's own error).
std::string accel_options_help(int width);
void apply_accel_options(const Args& a, SessionOptions& o);
// --buffer SIZE in entries (run, check, bench, energy); 0 when absent; UsageError when bad.
int64_t buffer_option(const Args& a);
void apply_decompose_options(const Args& a, SessionOptions& o);

// MODEL may be a .onnx path, a folder holding exactly one .onnx file (the ONNX test layout), or
// either of those relative to the model search path (--model-dir, $LOCUS_MODEL_DIR, ../shared/models).
// "builtin:mobilenetv2" and "builtin:resnet50" name the in-code builders (models/builders.h, seeded
// random weights, 224x224) and are returned unchanged.
std::string resolve_model(const std::string& model, const std::string& model_dir);

// The graph of a resolved MODEL (an .onnx path or a builtin: name), symbolic dims set to `batch`.
Graph load_model_graph(const std::string& model, int64_t batch);

}  // namespace locus::cli
