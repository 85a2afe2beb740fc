// Entry point of the `locus` program: dispatches to the subcommands and turns every error into
// one line on stderr and a non-zero exit status.
#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "graph/error.h"
#include "importers/onnx/onnx_importer.h"
#include "models/builders.h"
#include "models/model_path.h"
#include "accel/accel_config.h"
#include "runtime/machine_info.h"
#include "runtime/memory_budget.h"

namespace fs = std::filesystem;

namespace locus::cli {

static const char* kUsage =
    "usage: locus <command> [options]\n"
    "\n"
    "A CNN inference runtime for CPUs built around data locality.\n"
    "\n"
    "commands:\n"
    "  run MODEL --image PHOTO...   classify photos (or --input NAME=FILE.pb), print top-K and latency\n"
    "  info MODEL                   operators, parameters, per-layer shapes and MACs; --plans: the\n"
    "                               cache plan of every 1x1 conv\n"
    "  check DIR...                 run ONNX test-layout folders and compare with their outputs\n"
    "  bench MODEL                  latency, memory and cache misses per backend, side by side\n"
    "  energy MODEL                 projected DRAM energy on the accelerator model, per schedule\n"
    "  decompose MODEL -o OUT.onnx  CP-decompose standard convolutions, write a standard ONNX model\n"
    "\n"
    "MODEL is a .onnx file or a folder holding one, looked up as given, then in --model-dir,\n"
    "$LOCUS_MODEL_DIR and ../shared/models beside the source checkout; builtin:mobilenetv2 and\n"
    "builtin:resnet50 are the in-code architectures with seeded random weights.\n"
    "Run 'locus <command> --help' for the options of a command.\n";

bool& stop_after_options() {
  static bool stop = false;
  return stop;
}

static const char* kBuiltinPrefix = "builtin:";

std::string resolve_model(const std::string& model, const std::string& model_dir) {
  if (model.rfind(kBuiltinPrefix, 0) == 0) {
    const std::string name = model.substr(std::strlen(kBuiltinPrefix));
    LOCUS_CHECK(name == "mobilenetv2" || name == "resnet50", "unknown builtin model '", name,
                "' (known: builtin:mobilenetv2, builtin:resnet50)");
    return model;
  }
  std::string p = models::find_model(model, model_dir);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    std::vector<std::string> found;
    for (auto& e : fs::directory_iterator(p, ec))
      if (e.path().extension() == ".onnx") found.push_back(e.path().string());
    LOCUS_CHECK(!found.empty(), "folder '", p, "' holds no .onnx file");
    LOCUS_CHECK(found.size() == 1, "folder '", p, "' holds ", found.size(), " .onnx files; name one");
    return found[0];
  }
  return p;
}

Graph load_model_graph(const std::string& model, int64_t batch) {
  if (model.rfind(kBuiltinPrefix, 0) == 0) {
    models::BuildOptions bo;
    bo.batch = batch;
    return model == "builtin:resnet50" ? models::build_resnet50(bo) : models::build_mobilenet_v2(bo);
  }
  onnx_import::ImportOptions io;
  io.default_dim = batch;
  return onnx_import::load_model(model, io);
}

// "  OPT" padded to `width` columns, then TEXT and a newline (one --help line).
static std::string help_line(const std::string& opt, const std::string& text, int width) {
  std::string l = "  " + opt;
  l += std::string(size_t(std::max<int>(1, width - int(l.size()))), ' ');
  return l + text + "\n";
}

std::string tiling_options_help(int width) {
  auto line = [&](const std::string& opt, const std::string& text) { return help_line(opt, text, width); };
  const std::string pad(size_t(width), ' ');
  return line("--l2 SIZE", "L2 bytes the 1x1 convs' cache tiles are planned for (native backend;") +
         pad + "the planner gets half): 512K, 1M, 1.5M (at least 1K); 0 = no tiling, one\n" +
         pad + "GEMM per 1x1 conv. Default: $LOCUS_L2, else this core's L2 as the OS\n" +
         pad + "reports it (no tiling if it does not)\n" +
         line("--tile-order O", "scan, row or col: the tile orders the planner may choose from") + pad +
         "(default: $LOCUS_TILE_ORDER, else scan)\n" +
         line("--no-fuse", "do not fuse 1x1 -> depthwise -> 1x1 blocks into one kernel (native,") + pad +
         "accel and reference backends fuse them by default)\n";
}

void apply_tiling_options(const Args& a, SessionOptions& o) {
  if (a.flag("--no-fuse")) o.disabled_passes.push_back("fuse-inverted-residual");
  if (a.has("--l2")) {
    const std::string v = a.get("--l2");
    const int64_t b = parse_bytes(v);
    if (b < 0) throw UsageError("option --l2 expects a size such as 512K, 1M or 0 (off), got '" + v + "'");
    if (b > 0 && b < kMinL2Bytes)
      throw UsageError("option --l2 " + v + " is below the minimum of " + format_bytes(kMinL2Bytes) +
                       " (sizes are in bytes: 512K, 1M; 0 turns tiling off)");
    o.l2_bytes = b;
  }
  if (a.has("--tile-order")) {
    const std::string v = a.get("--tile-order");
    schedule::TileOrder t;
    if (!schedule::parse_tile_order(v, &t))
      throw UsageError("option --tile-order expects scan, row or col, got '" + v + "'");
    o.tile_order = t;
  }
}

std::string memory_options_help(int width) {
  const std::string pad(size_t(width), ' ');
  return help_line("--max-memory SIZE", "memory budget: refuse a model whose planned memory (activations,", width) +
         pad + "weights, scratch) exceeds SIZE (512M, 4G); default: " +
         std::to_string(int(kDefaultBudgetFraction * 100)) + "% of this machine's\n" + pad +
         "usable memory\n";
}

void apply_memory_options(const Args& a, SessionOptions& o) {
  if (!a.has("--max-memory")) return;
  const std::string v = a.get("--max-memory");
  const int64_t b = parse_bytes(v);
  if (b <= 0) throw UsageError("option --max-memory expects a size such as 512M or 4G, got '" + v + "'");
  o.max_memory_bytes = b;
}

std::string accel_options_help(int width) {
  const std::string pad(size_t(width), ' ');
  return help_line("--accel-schedule S", "accel backend: the schedule whose DRAM energy it projects: baseline,", width) +
         pad + "scan or fused-scan (default fused-scan; 'locus energy' compares them)\n" +
         help_line("--accel CONFIG", "accel backend: accelerator preset or JSON file (default: default)", width) +
         help_line("--buffer SIZE", "accel backend: on-chip buffer in entries: 65536, 64K (default: the", width) +
         pad + "config's)\n";
}

void apply_accel_options(const Args& a, SessionOptions& o) {
  if (a.has("--accel-schedule")) {
    const std::string v = a.get("--accel-schedule");
    if (v != "baseline" && v != "scan" && v != "fused-scan")
      throw UsageError("option --accel-schedule expects baseline, scan or fused-scan, got '" + v + "'");
    o.accel_schedule = v;
  }
  if (a.has("--accel")) o.accel_config = a.get("--accel");
  o.accel_buffer_entries = buffer_option(a);
}

int64_t buffer_option(const Args& a) {
  if (!a.has("--buffer")) return 0;
  try {
    return accel::parse_entries(a.get("--buffer"));
  } catch (const Error& e) {
    throw UsageError(std::string("option --buffer: ") + e.what());  // a bad value is wrong usage: exit 2
  }
}

std::string decompose_options_help(int width) {
  auto line = [&](const std::string& opt, const std::string& text) { return help_line(opt, text, width); };
  const std::string pad(size_t(width), ' ');
  return line("--decompose POLICY", "CP-decompose every standard KxK convolution (group 1, not 1x1) into") +
         pad + "1x1 -> depthwise -> 1x1 before optimising, so the chains can be fused.\n" +
         pad + "POLICY picks each layer's rank R: rank=R; ratio=F (R = ceil(F x\n" +
         pad + "min(Cin, Cout))); error=E (the smallest R with relative reconstruction\n" +
         pad + "error <= E, searched up to the MAC break-even and max(Cin, Cout));\n" +
         pad + "macs=F (the largest R with MACs <= F x the original's).\n" +
         pad + "Lossy: outputs change ('locus decompose' reports the error per layer)\n" +
         line("--decompose-form F", "3: 1x1 -> dw KhxKw -> 1x1 (default); 4: 1x1 -> dw Khx1 ->") +
         pad + "dw 1xKw -> 1x1 (Lebedev)\n";
}

void apply_decompose_options(const Args& a, SessionOptions& o) {
  if (!a.has("--decompose")) {
    if (a.has("--decompose-form")) throw UsageError("option --decompose-form needs --decompose POLICY");
    return;
  }
  CpDecomposeOptions d;
  const std::string v = a.get("--decompose");
  try {
    d.policy = RankPolicy::parse(v);
  } catch (const Error& e) {
    throw UsageError(std::string("option --decompose: ") + e.what());
  }
  if (a.has("--decompose-form")) {
    const std::string f = a.get("--decompose-form");
    if (f == "3")
      d.form = CpForm::ThreeWay;
    else if (f == "4")
      d.form = CpForm::FourWay;
    else
      throw UsageError("option --decompose-form expects 3 or 4, got '" + f + "'");
  }
  o.decompose = std::move(d);
}

std::string l2_setting_label(const PointwiseTilingSettings& t) {
  std::string v = t.l2_bytes > 0 ? format_bytes(t.l2_bytes) : "off";
  switch (t.l2_source) {
    case SettingSource::Option: return v + " (--l2)";
    case SettingSource::Env: return v + " (LOCUS_L2)";
    case SettingSource::OS: return v + " (os)";
    case SettingSource::Default: return v + " (L2 unknown)";
  }
  return v;
}

std::string order_setting_label(const PointwiseTilingSettings& t) {
  std::string v = schedule::tile_order_name(t.order);
  switch (t.order_source) {
    case SettingSource::Option: return v + " (--tile-order)";
    case SettingSource::Env: return v + " (LOCUS_TILE_ORDER)";
    default: return v + " (default)";
  }
}

std::string setting_source_label(SettingSource s, bool is_l2) {
  switch (s) {
    case SettingSource::Option: return "flag";
    case SettingSource::Env: return "env";
    case SettingSource::OS: return "os";
    case SettingSource::Default: return is_l2 ? "none" : "default";
  }
  return "?";
}

int run_command(int argc, char** argv) {
  const std::string cmd = argv[1];
  if (cmd == "run") return cmd_run(argc, argv);
  if (cmd == "info") return cmd_info(argc, argv);
  if (cmd == "check") return cmd_check(argc, argv);
  if (cmd == "bench") return cmd_bench(argc, argv);
  if (cmd == "energy") return cmd_energy(argc, argv);
  if (cmd == "decompose") return cmd_decompose(argc, argv);
  throw UsageError("unknown command '" + cmd + "'");
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd == "--version") {
      std::puts("locus 0.1.0");
      return 0;
    }
    return run_command(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "locus: " << e.what() << " (see 'locus " << (cmd.rfind("-", 0) == 0 ? "" : cmd + " ")
              << "--help')\n";
    return 2;
  } catch (const std::bad_alloc&) {
    std::cerr << "locus: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "locus: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace locus::cli
