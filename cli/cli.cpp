// Entry point of the `locus` program: dispatches to the subcommands and turns every error into
// one line on stderr and a non-zero exit status.
#include "cli/cli.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include <unistd.h>

#include "cli/commands.h"
#include "graph/error.h"
#include "importers/onnx/onnx_importer.h"
#include "models/builders.h"
#include "models/model_path.h"
#include "runtime/machine_info.h"

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
    "  info --ops                   every operator and each backend's implementation of it\n"
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

std::pair<std::string, Shape> parse_shape_spec(const std::string& spec) {
  const auto eq = spec.find('=');
  std::pair<std::string, Shape> r;
  r.first = eq == std::string::npos ? "" : spec.substr(0, eq);
  const std::string dims = eq == std::string::npos ? spec : spec.substr(eq + 1);
  for (const char* p = dims.c_str();; ++p) {
    char* end = nullptr;
    const long long v = std::strtoll(p, &end, 10);
    if (end == p || !(*end == 'x' || *end == '\0') || v < 1 || v > kMaxTensorElements)
      throw UsageError("--shape expects [NAME=]DIMS like x=1x3x640x640, got '" + spec + "'");
    r.second.push_back(v);
    p = end;
    if (*p == '\0') break;
  }
  if (eq != std::string::npos && r.first.empty())
    throw UsageError("--shape expects [NAME=]DIMS like x=1x3x640x640, got '" + spec + "'");
  return r;
}

void bind_input_shape(Graph& g, const std::string& spec) {
  const auto [name, shape] = parse_shape_spec(spec);
  if (name.empty() && g.inputs.size() != 1)
    throw UsageError("--shape without NAME= needs a model with one input; this one has " +
                     std::to_string(g.inputs.size()));
  const std::string input = name.empty() ? g.inputs[0] : name;
  if (std::find(g.inputs.begin(), g.inputs.end(), input) == g.inputs.end())
    throw UsageError("--shape names '" + input + "', which is not an input of the model");
  ValueInfo& vi = g.values[input];
  if (shape.size() != vi.shape.size())
    throw UsageError(cat("--shape ", spec, " has rank ", shape.size(), "; input '", input, "' has rank ",
                         vi.shape.size()));
  vi.shape = shape;
  g.symbolic_dims.erase(input);
}

Session open_session(const std::string& model, const std::string& model_dir, const SessionOptions& o) {
  return Session::from_graph(load_model_graph(resolve_model(model, model_dir), o.batch), o);
}

SessionOptions simple_session_options(const std::string& backend, int threads, int64_t l2_bytes, bool fuse,
                                      const std::string& decompose, int64_t batch, int64_t max_memory_bytes) {
  SessionOptions o;
  try {
    make_backend(backend);
  } catch (const Error& e) {
    fail("option backend: ", e.what());
  }
  o.backend_name = backend;
  LOCUS_CHECK(threads >= 0 && threads <= 1024, "option threads must be between 0 (all cores) and 1024, got ", threads);
  o.threads = threads;
  if (l2_bytes > 0) {
    const std::string p = l2_bytes_problem(l2_bytes);
    LOCUS_CHECK(p.empty(), "option l2 ", format_bytes(l2_bytes), p);
  }
  LOCUS_CHECK(l2_bytes >= -1, "option l2 expects a size in bytes, 0 (off) or None, got ", l2_bytes);
  o.backend.l2_bytes = l2_bytes;
  if (!fuse) o.pipeline.disabled_passes.push_back("fuse-inverted-residual");
  if (!decompose.empty()) {
    CpDecomposeOptions d;
    try {
      d.policy = RankPolicy::parse(decompose);
    } catch (const Error& e) {
      fail("option decompose: ", e.what());
    }
    o.pipeline.decompose = d;
  }
  LOCUS_CHECK(batch >= 1 && batch <= 4096, "option batch must be between 1 and 4096, got ", batch);
  o.batch = batch;
  LOCUS_CHECK(max_memory_bytes >= 0, "option max_memory must be a size in bytes (0: the default), got ",
              max_memory_bytes);
  o.max_memory_bytes = max_memory_bytes;
  return o;
}

std::string l2_setting_label(const PointwiseTilingSettings& t) {
  return (t.l2_bytes > 0 ? format_bytes(t.l2_bytes) : std::string("off")) + " (" + setting_source_name(t.l2_source) + ")";
}

std::string order_setting_label(const PointwiseTilingSettings& t) {
  return std::string(schedule::tile_order_name(t.order)) + " (" + setting_source_name(t.order_source) + ")";
}

void resolve_tiling_once(SessionOptions& o, const std::vector<std::string>& backends) {
  for (const std::string& b : backends) {
    std::unique_ptr<Backend> backend;
    try {
      backend = make_backend(b);
    } catch (const Error&) {
      continue;  // an unknown name fails where the command creates its session
    }
    if (backend->capabilities().pointwise_tiling) {
      o.backend.tiling = resolve_pointwise_tiling(o.backend);
      return;
    }
  }
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

// libgomp reads its wait policy from the environment once, when the program loads. Left alone
// (neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT set) a thread that reaches a barrier first spins
// about 300,000 iterations before it sleeps, and on a machine whose cores other processes share a
// 2-thread run can spend whole time slices spinning for a descheduled partner: measured here
// under other builds' load, MobileNetV2 at 2 threads took 14-378 ms per inference at times against
// 6-8 ms with a short spin, which on an idle machine costs nothing measurable (docs/threads.md,
// scripts/wait-policy.sh). So unless the user chose a policy,
// the program runs itself once more with GOMP_SPINCOUNT=kLocusSpinCount (LOCUS_OMP_SPIN marks
// the second run, and reports the policy to `locus bench`; set to anything beforehand, it keeps
// libgomp's default). Not under valgrind, whose tools follow no exec (scripts/cachegrind.sh runs
// the program under it directly; `--cachegrind` sets the variables before it starts valgrind).
// If the exec fails, it carries on with libgomp's default.
static void apply_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT") || std::getenv("LOCUS_OMP_SPIN")) return;
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload && std::strstr(preload, "vgpreload")) return;  // valgrind's preload: running under it
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  if (::setenv("GOMP_SPINCOUNT", kLocusSpinCount, 1) != 0 || ::setenv("LOCUS_OMP_SPIN", kLocusSpinCount, 1) != 0) return;
  ::execv(self, argv);
  ::unsetenv("GOMP_SPINCOUNT");  // exec failed: libgomp already runs with its default
  ::unsetenv("LOCUS_OMP_SPIN");
}

std::string wait_policy_summary() {
  const char* ours = std::getenv("LOCUS_OMP_SPIN");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (ours && spin && std::strcmp(ours, spin) == 0 && !policy) return std::string("GOMP_SPINCOUNT=") + spin + " (locus default)";
  std::string s;
  if (policy) s += std::string("OMP_WAIT_POLICY=") + policy;
  if (spin) s += std::string(s.empty() ? "" : " ") + "GOMP_SPINCOUNT=" + spin;
  return s.empty() ? "libgomp default (neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT set)" : s + " (environment)";
}

int main(int argc, char** argv) {
  apply_wait_policy(argv);
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
