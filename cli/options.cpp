// The commands' CLI11 parsers and the option groups they share (cli/options.h).
#include "cli/options.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "accel/accel_config.h"
#include "runtime/machine_info.h"
#include "runtime/memory_budget.h"

namespace locus::cli {
namespace {

const char* kTilingGroup = "tiling (native backend)";
const char* kMemoryGroup = "memory";
const char* kDecomposeGroup = "decomposition";
const char* kAccelGroup = "accel backend";
const char* kModelGroup = "model lookup";

// The usage block, the options (grouped, option names padded to one column), the footer; no
// CLI11-generated usage line (the usage block says it).
class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() { column_width(24); }
  std::string make_usage(const CLI::App*, std::string) const override { return {}; }
  std::string make_description(const CLI::App* app) const override { return app->get_description(); }
  std::string make_footer(const CLI::App* app) const override {
    return app->get_footer().empty() ? std::string() : "\n" + app->get_footer();
  }
};

// The one line of a CLI11 parse error. Our validators' messages start with "option NAME"; CLI11
// prefixes them with the option's name, which is dropped.
std::string usage_message(const CLI::ParseError& e) {
  std::string m = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    const std::string lead = m.find("arguments were") != std::string::npos
                                 ? "The following arguments were not expected: "
                                 : "The following argument was not expected: ";
    std::istringstream args(m.rfind(lead, 0) == 0 ? m.substr(lead.size()) : m);
    std::string first, word;
    for (args >> first, word = first; !word.empty(); word.clear(), args >> word)
      if (word.size() > 1 && word[0] == '-' && !std::isdigit((unsigned char)word[1]))
        return "unknown option '" + word + "'";  // named first: its value, if any, is an extra too
    return "unexpected argument '" + first + "'";
  }
  if (auto p = m.find(": option "); p != std::string::npos) m = m.substr(p + 2);
  for (char& c : m)
    if (c == '\n') c = ' ';
  return m;
}

bool parse_int(const std::string& v, int64_t& x) {
  errno = 0;
  char* end = nullptr;
  const long long r = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno) return false;
  x = r;
  return true;
}

CLI::Validator int_check(const std::string& name, int64_t lo, int64_t hi) {
  return CLI::Validator(
      [name, lo, hi](std::string& v) -> std::string {
        int64_t x = 0;
        if (!parse_int(v, x)) return "option " + name + " expects an integer, got '" + v + "'";
        if (x < lo || x > hi)
          return "option " + name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                 ", got " + v;
        return {};
      },
      "");
}

std::string choice_list(const std::vector<std::string>& c) {
  std::string s;
  for (size_t i = 0; i < c.size(); ++i) s += (i == 0 ? "" : i + 1 == c.size() ? " or " : ", ") + c[i];
  return s;
}

// "  --opt TEXT" lines of the shared groups refer to these.
std::string l2_help() {
  return "L2 bytes the 1x1 convs' cache tiles are planned for (native backend;\n"
         "the planner gets half): 512K, 1M, 1.5M (at least 1K); 0 = no tiling, one\n"
         "GEMM per 1x1 conv. Default: $LOCUS_L2, else this core's L2 as the OS\n"
         "reports it (no tiling if it does not)";
}

}  // namespace

std::unique_ptr<CLI::App> make_command(const std::string& name, const std::string& usage, const std::string& footer) {
  auto app = std::make_unique<CLI::App>(usage, "locus " + name);
  app->formatter(std::make_shared<HelpFormatter>());
  app->set_help_flag("-h,--help", "print this help");
  app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // the last one wins
  app->footer(footer);
  return app;
}

bool parse_command(CLI::App& app, int argc, char** argv) {
  try {
    // argv[1] (the command) stands in for the program name CLI11 skips
    app.parse(argc - 1, argv + 1);
  } catch (const CLI::CallForHelp&) {
    std::string h = app.help();
    for (size_t p; (p = h.find("\n\n\n")) != std::string::npos;) h.erase(p, 1);  // one blank line between groups
    std::fputs(h.c_str(), stdout);
    return false;
  } catch (const CLI::ParseError& e) {
    throw UsageError(usage_message(e));
  }
  return true;
}

CLI::Option* add_int_option(CLI::App& app, const std::string& name, int64_t& value, int64_t lo, int64_t hi,
                            const std::string& text, const std::string& type) {
  return app.add_option(name, value, text)->check(int_check(name, lo, hi))->type_name(type);
}

CLI::Option* add_int_option(CLI::App& app, const std::string& name, int& value, int64_t lo, int64_t hi,
                            const std::string& text, const std::string& type) {
  return app.add_option(name, value, text)->check(int_check(name, lo, hi))->type_name(type);
}

CLI::Option* add_nonneg_option(CLI::App& app, const std::string& name, double& value, const std::string& text) {
  return app
      .add_option(name, value, text)
      ->check(CLI::Validator(
          [name](std::string& v) -> std::string {
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            if (v.empty() || *end || !(x >= 0)) return "option " + name + " expects a non-negative number, got '" + v + "'";
            return {};
          },
          ""))
      ->type_name("X");
}

CLI::Option* add_choice_option(CLI::App& app, const std::string& name, std::string& value,
                               const std::vector<std::string>& choices, const std::string& text,
                               const std::string& type) {
  return app
      .add_option(name, value, text)
      ->check(CLI::Validator(
          [name, choices](std::string& v) -> std::string {
            for (auto& c : choices)
              if (v == c) return {};
            return "option " + name + " expects " + choice_list(choices) + ", got '" + v + "'";
          },
          ""))
      ->type_name(type);
}

CLI::Validator size_transformer(const std::string& option, const std::string& examples, bool allow_zero) {
  return CLI::Validator(
      [option, examples, allow_zero](std::string& v) -> std::string {
        const int64_t b = parse_bytes(v);
        if (b < 0 || (b == 0 && !allow_zero)) return "option " + option + " expects a size such as " + examples + ", got '" + v + "'";
        v = std::to_string(b);
        return {};
      },
      "");
}

void add_tiling_options(CLI::App& app, SessionOptions& o) {
  app.add_option("--l2", o.backend.l2_bytes, l2_help())
      ->transform(size_transformer("--l2", "512K, 1M or 0 (off)", true))
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {  // v is in bytes here
            const std::string p = l2_bytes_problem(std::stoll(v));
            return p.empty() ? p : "option --l2 " + format_bytes(std::stoll(v)) + p;
          },
          ""))
      ->type_name("SIZE")
      ->group(kTilingGroup);
  app.add_option_function<std::string>(
         "--tile-order",
         [&o](const std::string& v) {
           schedule::TileOrder t;
           schedule::parse_tile_order(v, &t);  // checked below
           o.backend.tile_order = t;
         },
         "scan, row or col: the tile orders the planner may choose from\n(default: $LOCUS_TILE_ORDER, else scan)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            schedule::TileOrder t;
            return schedule::parse_tile_order(v, &t) ? "" : "option --tile-order expects scan, row or col, got '" + v + "'";
          },
          ""))
      ->type_name("O")
      ->group(kTilingGroup);
  app.add_flag_callback(
         "--no-fuse", [&o] { o.pipeline.disabled_passes.push_back("fuse-inverted-residual"); },
         "do not fuse 1x1 -> depthwise -> 1x1 blocks into one kernel (native,\naccel and reference backends fuse them "
         "by default)")
      ->group(kTilingGroup);
  app.add_flag_callback(
         "--fuse-chains", [&o] { o.pipeline.fuse_chains = true; },
         "also fuse chains of 1x1 / depthwise convs ending in a residual Add\n(fuse-chain: e.g. a CP-decomposed "
         "ResNet-50 bottleneck, one FusedChain)")
      ->group(kTilingGroup);
  app.add_flag_callback(
         "--no-winograd", [&o] { o.backend.winograd = false; },
         "run 3x3 stride-1 convs without Winograd F(4x4,3x3) / F(2x2,3x3) (the\nnative backend uses them where its planner "
         "models them faster; info --plans says where)")
      ->group(kTilingGroup);
  app.add_flag_callback(
         "--no-image-major", [&o] { o.backend.image_major = false; },
         "at batch > 1, run every layer over the whole batch (the native backend\notherwise runs the first, "
         "high-resolution layers one image per thread)")
      ->group(kTilingGroup);
}

void add_memory_options(CLI::App& app, SessionOptions& o) {
  app.add_option("--max-memory", o.max_memory_bytes,
                 "memory budget: refuse a model whose planned memory (activations,\nweights, scratch) exceeds SIZE "
                 "(512M, 4G); default: " +
                     std::to_string(int(kDefaultBudgetFraction * 100)) + "% of this machine's\nusable memory")
      ->transform(size_transformer("--max-memory", "512M or 4G", false))
      ->type_name("SIZE")
      ->group(kMemoryGroup);
}

DecomposeGroup add_decompose_options(CLI::App& app, std::optional<CpDecomposeOptions>& d, bool aliases) {
  DecomposeGroup g;
  g.target = &d;
  g.aliases = aliases;
  const std::string pname = aliases ? "--decompose,--rank" : "--decompose";
  const std::string fname = aliases ? "--decompose-form,--form" : "--decompose-form";
  g.policy = app.add_option_function<std::string>(
                    pname,
                    [&d](const std::string& v) {
                      if (!d) d.emplace();
                      d->policy = RankPolicy::parse(v);  // checked below
                    },
                    std::string(aliases ? "each layer's rank R (default error=0.05):\n"
                                        : "CP-decompose every standard KxK convolution (group 1, not 1x1) into\n"
                                          "1x1 -> depthwise -> 1x1 before optimising, so the chains can be fused.\n"
                                          "POLICY picks each layer's rank R:\n") +
                        "  rank=R   a fixed rank (capped by the layer's own maximum)\n"
                        "  ratio=F  R = ceil(F x min(Cin, Cout))\n"
                        "  error=E  the smallest R with relative reconstruction error <= E,\n"
                        "           searched up to the MAC break-even and max(Cin, Cout)\n"
                        "           (a layer no such R fits is left alone)\n"
                        "  macs=F   the largest R with MACs <= F x the original's" +
                        (aliases ? "" : "\nLossy: outputs change ('locus decompose' reports the error per layer)"))
                ->check(CLI::Validator(
                    [aliases](std::string& v) -> std::string {
                      try {
                        RankPolicy::parse(v);
                      } catch (const Error& e) {
                        return std::string("option ") + (aliases ? "--decompose (--rank): " : "--decompose: ") + e.what();
                      }
                      return {};
                    },
                    ""))
                ->type_name("POLICY")
                ->group(kDecomposeGroup);
  g.form = app.add_option_function<std::string>(
                  fname,
                  [&d](const std::string& v) {
                    if (!d) d.emplace();
                    d->form = v == "4" ? CpForm::FourWay : CpForm::ThreeWay;
                  },
                  "3: 1x1 -> dw KhxKw -> 1x1 (default); 4: 1x1 -> dw Khx1 ->\ndw 1xKw -> 1x1 (Lebedev)")
              ->check(CLI::Validator(
                  [aliases](std::string& v) -> std::string {
                    if (v == "3" || v == "4") return {};
                    return std::string("option ") + (aliases ? "--decompose-form (--form)" : "--decompose-form") +
                           " expects 3 or 4, got '" + v + "'";
                  },
                  ""))
              ->type_name("F")
              ->group(kDecomposeGroup);
  return g;
}

void check_decompose_options(const DecomposeGroup& g) {
  if (!g.aliases && g.form->count() > 0 && g.policy->count() == 0)
    throw UsageError("option --decompose-form needs --decompose POLICY");
}

void add_accel_options(CLI::App& app, BackendOptions& o, bool with_schedule) {
  if (with_schedule)
    add_choice_option(app, "--accel-schedule", o.accel_schedule, {"baseline", "scan", "fused-scan"},
                      "accel backend: the schedule whose DRAM energy it projects: baseline,\nscan or fused-scan "
                      "(default fused-scan; 'locus energy' compares them)",
                      "S")
        ->group(kAccelGroup);
  app.add_option("--accel", o.accel_config, "accelerator preset or JSON file (default: default)")
      ->type_name("CONFIG")
      ->group(kAccelGroup);
  app.add_option("--buffer", o.accel_buffer_entries,
                 "on-chip buffer in entries: 65536, 64K (default: the\nconfig's)")
      ->transform(CLI::Validator(
          [](std::string& v) -> std::string {
            try {
              v = std::to_string(accel::parse_entries(v));
            } catch (const Error& e) {
              return std::string("option --buffer: ") + e.what();  // a bad value is wrong usage: exit 2
            }
            return {};
          },
          ""))
      ->type_name("SIZE")
      ->group(kAccelGroup);
}

void add_model_options(CLI::App& app, ModelLookup& m, const std::string& batch_note) {
  app.add_option("--model-dir", m.model_dir, "folder searched for MODEL")->type_name("DIR")->group(kModelGroup);
  add_int_option(app, "--batch", m.batch, 1, 4096,
                 "value for a symbolic batch dimension (default 1" + batch_note + ")")
      ->group(kModelGroup);
}

}  // namespace locus::cli
