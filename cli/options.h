// The command-line parser of every `locus` command, on CLI11: one CLI::App per command with the
// project's help layout, its error conventions (one line naming the problem, UsageError: exit 2) and
// the option groups several commands share, each defined once here:
//   tiling         --l2 SIZE, --tile-order scan|row|col, --no-fuse,         (run, check, bench, info)
//                  --no-winograd, --fuse-chains
//   memory         --max-memory SIZE                                        (run, check, bench)
//   decomposition  --decompose POLICY, --decompose-form 3|4                 (run, check, bench, energy,
//                  decompose, which also takes them as --rank / --form)
//   accel backend  --accel-schedule S, --accel PRESET|FILE, --buffer SIZE   (run, check, bench; energy
//                  takes --accel and --buffer)
//   model lookup   --model-dir DIR, --batch N                               (run, info, bench, energy,
//                  decompose)
// Bad values are refused while parsing, by CLI11 validators and transformers that give the message
// ("option --l2 expects a size such as 512K, 1M or 0 (off), got 'banana'").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "graph/passes/cp_decompose.h"
#include "runtime/session.h"

namespace locus::cli {

// A command's parser: `usage` is the first lines of its --help (usage lines and what the command
// does), `footer` the explanatory paragraphs after the option list.
std::unique_ptr<CLI::App> make_command(const std::string& name, const std::string& usage,
                                       const std::string& footer = "");

// Parses the arguments after the command name (argv[2..]). Returns false when --help was asked for
// (the help is printed on stdout; the command then returns 0). Wrong usage throws UsageError with
// one line naming the problem.
bool parse_command(CLI::App& app, int argc, char** argv);

// ---- option helpers: the value is checked while parsing, with the message in quotes ----

// An integer option in [lo, hi]: "option --batch expects an integer, got 'x'", "option --batch must
// be between 1 and 4096, got 0".
CLI::Option* add_int_option(CLI::App& app, const std::string& name, int64_t& value, int64_t lo, int64_t hi,
                            const std::string& text, const std::string& type = "N");
CLI::Option* add_int_option(CLI::App& app, const std::string& name, int& value, int64_t lo, int64_t hi,
                            const std::string& text, const std::string& type = "N");
// A non-negative number: "option --rtol expects a non-negative number, got 'x'".
CLI::Option* add_nonneg_option(CLI::App& app, const std::string& name, double& value, const std::string& text);
// One of `choices`: "option --format expects table, csv or json, got 'xml'".
CLI::Option* add_choice_option(CLI::App& app, const std::string& name, std::string& value,
                               const std::vector<std::string>& choices, const std::string& text,
                               const std::string& type);
// A byte size (512K, 1M, 4G: parse_bytes) > 0: "option --max-memory expects a size such as 512M or 4G, got 'x'".
CLI::Validator size_transformer(const std::string& option, const std::string& examples, bool allow_zero);

// ---- the shared groups ----

// tiling: --l2 SIZE (at least 1K, 0 = off), --tile-order scan|row|col, --no-fuse, --no-winograd,
// --fuse-chains; into o.backend (l2_bytes, tile_order, winograd), o.pipeline.disabled_passes and
// o.pipeline.fuse_chains. Absent options leave l2_bytes -1 and
// tile_order unset (environment, then OS).
void add_tiling_options(CLI::App& app, SessionOptions& o);
// memory: --max-memory SIZE into o.max_memory_bytes.
void add_memory_options(CLI::App& app, SessionOptions& o);
// decomposition: --decompose POLICY (RankPolicy::parse: rank=16, ratio=0.5, error=0.05, macs=0.3)
// and --decompose-form 3|4 into d. With aliases (locus decompose) they are also --rank and --form,
// and the form may be given alone (it applies to the default policy). Otherwise --decompose-form
// without --decompose is wrong usage (check_decompose_options, after parsing) and an absent
// --decompose leaves d unset.
struct DecomposeGroup {
  std::optional<CpDecomposeOptions>* target = nullptr;
  bool aliases = false;
  CLI::Option* policy = nullptr;
  CLI::Option* form = nullptr;
};
DecomposeGroup add_decompose_options(CLI::App& app, std::optional<CpDecomposeOptions>& d, bool aliases = false);
void check_decompose_options(const DecomposeGroup& g);
// accel backend: --accel-schedule baseline|scan|fused-scan (with_schedule), --accel PRESET|FILE and
// --buffer SIZE (entries: 65536, 64K; accel::parse_entries) into o (an unknown preset or a bad file
// fails when the config is loaded, with the config's own error).
void add_accel_options(CLI::App& app, BackendOptions& o, bool with_schedule = true);
// model lookup: --model-dir DIR and --batch N (1..4096).
struct ModelLookup {
  std::string model_dir;
  int64_t batch = 1;
};
void add_model_options(CLI::App& app, ModelLookup& m, const std::string& batch_note = "");

}  // namespace locus::cli
