// `locus info`: what a model is made of — operators, parameters, per-layer shapes and MACs.
#include <algorithm>
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/order_report.h"
#include "graph/cost.h"
#include "graph/ops.h"
#include "graph/passes/pipeline.h"
#include "importers/onnx/onnx_importer.h"
#include "kernels/native/pointwise_scan.h"
#include "runtime/backend.h"

namespace locus::cli {

static const char* kInfoHelp =
    "usage: locus info MODEL [options]\n"
    "       locus info --ops\n"
    "\n"
    "Prints the operators, the parameter count, one line per layer (node, op, output shape, MACs)\n"
    "and the total MACs. By default the graph is shown after the optimisation passes (BatchNorm\n"
    "folded, activations fused); --no-optimize shows it as imported. --ops prints, for every\n"
    "operator locus knows, the implementation each backend's registry holds for it ('-': none),\n"
    "tab-separated (pipe it through column -t -s \"$(printf '\\t')\" to align it).\n";

// --ops: one row per op key of the catalogue (graph/ops.h), one column per backend, from the
// backends' registries (Backend::op_implementations).
static void print_ops() {
  std::vector<std::string> keys = supported_ops();
  for (const std::string& op : locus_ops()) keys.push_back(std::string(kLocusDomain) + "." + op);
  for (const std::string& op : microsoft_ops()) keys.push_back(std::string(kMicrosoftDomain) + "." + op);
  const std::vector<std::string> backends = {"native", "onednn", "reference"};
  std::vector<std::map<std::string, std::string>> impl;
  for (const std::string& b : backends) {
    std::map<std::string, std::string> m;
    for (auto& [key, name] : make_backend(b)->op_implementations()) m[key] = name;
    impl.push_back(std::move(m));
  }
  std::printf("op");
  for (const std::string& b : backends) std::printf("\t%s", b.c_str());
  std::printf("\n");
  for (const std::string& k : keys) {
    std::printf("%s", k.c_str());
    for (auto& m : impl) {
      auto it = m.find(k);
      std::printf("\t%s", it == m.end() ? "-" : it->second.c_str());
    }
    std::printf("\n");
  }
}

static const char* kPlansHelp =
    "--plans prints a line 'plans  <settings>' and a table, one row per 1x1 conv, columns separated\n"
    "by spaces (awk-friendly; '-' where a value does not apply):\n"
    "  node        the Conv node\n"
    "  M K N       its GEMM: pixels (batch x OH x OW), input channels, output channels\n"
    "  stride      SHxSW; a strided 1x1 has its pixels gathered into rows before the planned kernel\n"
    "  m n k       the cache tile; k = K: the whole reduction stays on chip\n"
    "  order       the visiting order chosen (ScanRows, ScanCols, RowMajor, ColMajor), or gemm\n"
    "  resident    strips of the streaming operand kept on chip beyond the working set\n"
    "  A B C total modelled DRAM (L2-miss) traffic in entries (floats): A and B read, C written\n"
    "  *_MiB       the same in MiB (entries x 4 bytes)\n"
    "  compulsory  M*K + K*N + M*N entries: each operand moved once, the least any order can do\n"
    "  ratio       total / compulsory\n"
    "  note        gathered (strided), or why there is no plan: off, grouped, padded,\n"
    "              no-fit (the planner found no tile for the buffer)\n"
    "Then, when the model has 3x3 convs, a line 'winograd  <k> of <n> 3x3 convs ...' and one row per\n"
    "3x3 conv: node, C, OC, OH, OW, path (F(4x4) or F(2x2): Winograd with that output tile, or\n"
    "other) and why: the planner's modelled costs (the chosen path, im2col and the other tile, in\n"
    "Mflop-equivalents) and tile blocks, or why it does not apply (strided,\n"
    "grouped, dilated, small input depth, off with --no-winograd).\n"
    "The plans are the ones a native session makes once at creation, with the same --l2 and\n"
    "--tile-order (or LOCUS_L2, LOCUS_TILE_ORDER, the OS) as run and bench would use.\n";

// --plans --tiles fixed: the order comparison (cli/order_report.h) of the distinct planned 1x1 convs
// at the session's S (fp32 entries); free tiles with the native kernel's planner options.
static void print_plan_order_comparison(const Executable* exe) {
  const PointwiseTilingSettings t = *exe->pointwise_tiling();
  std::vector<DistinctGemm> layers;
  int threads = 1;
  for (const PointwisePlanRow& r : exe->pointwise_plans()) {
    if (!r.plan) continue;
    threads = r.plan->threads;
    auto same = std::find_if(layers.begin(), layers.end(), [&](const DistinctGemm& d) {
      return d.shape.M == r.M && d.shape.K == r.K && d.shape.N == r.N;
    });
    if (same != layers.end())
      ++same->count;
    else
      layers.push_back({r.node, {r.M, r.K, r.N, 4}, 1, std::nullopt});
  }
  if (!t.enabled() || layers.empty()) {
    std::printf("\norder comparison: no planned 1x1 conv (tiling off or none fits)\n");
    return;
  }
  OrderTableOptions o;
  o.sizes = {t.buffer_entries};
  o.free_opts = kernels::pointwise_planner_options(kernels::pointwise_register_tile(), threads);
  std::printf("\norder comparison (--tiles fixed): %zu distinct planned 1x1 convs, S = %lld floats; modelled L2-miss "
              "traffic in entries, saving = 1 - scan / best conventional (row or col); the 1x1s inside fused blocks run in "
              "the fused kernel (--no-fuse plans them too)\n",
              layers.size(), (long long)t.buffer_entries);
  print_order_table(layers, order_table(layers, o), false, false);
}

// The native backend's plan for every 1x1 conv, as compiled by a session (`exe`).
static void print_plans(const Executable* exe) {
  const PointwiseTilingSettings t = *exe->pointwise_tiling();
  const auto rows = exe->pointwise_plans();
  const auto planned = std::count_if(rows.begin(), rows.end(), [](auto& r) { return r.plan.has_value(); });
  if (t.enabled())
    std::printf("\nplans      L2 %s, S = %lld floats (L2/4 x %g), order %s; %lld of %zu 1x1 convs planned\n",
                l2_setting_label(t).c_str(), (long long)t.buffer_entries, kL2SafetyFraction,
                order_setting_label(t).c_str(), (long long)planned, rows.size());
  else
    std::printf("\nplans      L2 %s: no tiling, every 1x1 conv runs as one GEMM%s\n", l2_setting_label(t).c_str(),
                t.l2_source == SettingSource::Default ? " (the OS reports no L2 size; give --l2 or LOCUS_L2)" : "");
  std::printf("%-32s %7s %5s %5s %6s %6s %5s %5s %-8s %8s %10s %10s %10s %10s %8s %8s %8s %9s %10s %14s %6s %s\n",
              "node", "M", "K", "N", "stride", "m", "n", "k", "order", "resident", "A", "B", "C", "total", "A_MiB",
              "B_MiB", "C_MiB", "total_MiB", "compulsory", "compulsory_MiB", "ratio", "note");
  const double mib = 4.0 / (1 << 20);
  for (const PointwisePlanRow& r : rows) {
    char stride[48];
    std::snprintf(stride, sizeof stride, "%lldx%lld", (long long)r.stride_h, (long long)r.stride_w);
    const int64_t comp = r.M * r.K + r.K * r.N + r.M * r.N;
    std::printf("%-32s %7lld %5lld %5lld %6s ", r.node.empty() ? "-" : r.node.c_str(), (long long)r.M, (long long)r.K, (long long)r.N,
                stride);
    if (r.plan) {
      const schedule::Plan& p = *r.plan;
      const schedule::Traffic& t = p.traffic;
      const bool strided = r.stride_h != 1 || r.stride_w != 1;
      std::printf("%6lld %5lld %5lld %-8s %8lld %10lld %10lld %10lld %10lld %8.3f %8.3f %8.3f %9.3f %10lld %14.3f %6.3f %s\n",
                  (long long)p.m, (long long)p.n, (long long)p.k, schedule::order_name(p.order),
                  (long long)p.resident_strips, (long long)t.reads_a, (long long)t.reads_b, (long long)t.writes_c,
                  (long long)t.total, double(t.reads_a) * mib, double(t.reads_b) * mib, double(t.writes_c) * mib,
                  double(t.total) * mib, (long long)comp, double(comp) * mib, double(t.total) / double(comp),
                  strided ? "gathered" : "-");
    } else {
      std::printf("%6s %5s %5s %-8s %8s %10s %10s %10s %10s %8s %8s %8s %9s %10lld %14.3f %6s %s\n", "-", "-", "-",
                  "gemm", "-", "-", "-", "-", "-", "-", "-", "-", "-", (long long)comp, double(comp) * mib, "-",
                  r.why_not.c_str());
    }
  }
  const auto wino = exe->winograd_plans();
  if (!wino.empty()) {
    // 3x3 convs: Winograd F(4x4, 3x3), F(2x2, 3x3) or neither, and why (schedule/winograd_planner.h).
    const auto f4 = std::count_if(wino.begin(), wino.end(), [](auto& r) { return r.winograd && r.m == 4; });
    const auto f2 = std::count_if(wino.begin(), wino.end(), [](auto& r) { return r.winograd && r.m == 2; });
    std::printf("\nwinograd   %lld of %zu 3x3 convs run as Winograd: %lld F(4x4,3x3), %lld F(2x2,3x3)\n",
                (long long)(f4 + f2), wino.size(), (long long)f4, (long long)f2);
    std::printf("%-32s %5s %5s %4s %4s %-8s %s\n", "node", "C", "OC", "OH", "OW", "path", "why");
    for (const WinogradPlanRow& r : wino)
      std::printf("%-32s %5lld %5lld %4lld %4lld %-8s %s\n", r.node.c_str(), (long long)r.C, (long long)r.OC,
                  (long long)r.OH, (long long)r.OW, !r.winograd ? "other" : r.m == 2 ? "F(2x2)" : "F(4x4)",
                  r.why.c_str());
  }
  const auto fused = exe->fused_block_plans();
  if (fused.empty()) return;
  // Fused inverted-residual blocks: bands of output rows x chunks of expanded channels (per image).
  // fp32 plans count float entries, int8 ones (the filtered-band schedule) bytes: the same L2 as S.
  std::printf("\nfused      %zu inverted-residual blocks, planned with the same S (int8 blocks in bytes: 4 x S)\n",
              fused.size());
  std::printf("%-32s %4s %4s %5s %5s %5s %3s %6s %6s %6s %6s %10s %10s %10s %10s %9s %12s %s\n", "node", "H", "W", "C",
              "E", "OC", "s", "rows", "chunk", "bands", "chunks", "input", "weights", "output", "total", "total_MiB",
              "expand_MACs", "unit");
  for (const FusedBlockPlanRow& r : fused) {
    const schedule::FusedBlockPlan& p = r.plan;
    const schedule::FusedBlockShape& b = p.shape;
    const bool bytes = b.elem.bytes;
    std::printf("%-32s %4lld %4lld %5lld %5lld %5lld %3lld %6lld %6lld %6lld %6lld %10lld %10lld %10lld %10lld %9.3f %12lld %s\n",
                r.node.c_str(), (long long)b.H, (long long)b.W, (long long)b.C, (long long)b.E, (long long)b.OC,
                (long long)b.SH, (long long)p.rows, (long long)p.chunk, (long long)p.bands, (long long)p.chunks,
                (long long)p.reads_input, (long long)p.reads_weights, (long long)p.writes_output, (long long)p.total,
                double(p.total) * (bytes ? mib / 4 : mib), (long long)p.expand_macs,
                b.filtered_band ? (b.stream_project ? "bytes, filtered band, project streamed" : "bytes, filtered band")
                                : b.elem.unit());
    if (!p.note.empty()) std::printf("%-32s   note: %s\n", "", p.note.c_str());
    if (r.se)  // a squeeze-excite block: which strategy, and the figures it was chosen by
      std::printf("%-32s   squeeze-excite %s: D %lld entries, kept %lld, spilled %lld; extra traffic two-pass %lld, "
                  "recompute %lld\n",
                  "", schedule::se_strategy_name(r.se->strategy), (long long)r.se->stored, (long long)r.se->kept,
                  (long long)r.se->spilled, (long long)r.se->extra_two_pass, (long long)r.se->extra_recompute);
  }
}

int cmd_info(int argc, char** argv) {
  auto app = make_command("info", kInfoHelp, kPlansHelp);
  std::string model_arg;
  bool no_optimize = false, passes = false, want_plans = false, want_ops = false;
  std::string tiles_arg = "free";  // --tiles
  SessionOptions so;
  ModelLookup ml;
  app->add_option("MODEL", model_arg, "a .onnx file, a folder holding one, or builtin:NAME")->type_name("");
  app->add_flag("--ops", want_ops, "list every operator and each backend's implementation of it (no MODEL)");
  add_model_options(*app, ml);
  app->add_flag("--no-optimize", no_optimize, "show the imported graph");
  app->add_flag("--passes", passes, "also list what each pass did and why it did not fire");
  app->add_flag("--plans", want_plans,
                "also compile for the native backend and list the cache plan of every\n1x1 conv (see below)");
  std::string shape_arg;
  app->add_option("--shape", shape_arg,
                  "[NAME=]DIMS like x=1x3x48x192: the shape of input NAME (default: the model's one\n"
                  "input; binds symbolic H and W, as PP-OCR's [N,3,H,W]; without it a symbolic dim is\n"
                  "the --batch value)")
      ->type_name("[NAME=]DIMS");
  add_tiling_options(*app, so);  // bad values fail before any work
  add_choice_option(*app, "--tiles", tiles_arg, {"fixed", "free"}, kTilesHelp, "T");
  if (!parse_command(*app, argc, argv)) return 0;
  const bool fixed_tiles = parse_tiles_fixed(tiles_arg);
  if (fixed_tiles && !want_plans) throw UsageError("option --tiles fixed needs --plans");
  if (want_ops && !model_arg.empty()) throw UsageError("option --ops lists the operators: it takes no MODEL");
  if (!want_ops && model_arg.empty()) throw UsageError("MODEL is required");
  if (stop_after_options()) return 0;
  if (want_ops) {
    print_ops();
    return 0;
  }
  std::string path = resolve_model(model_arg, ml.model_dir);
  Graph g = load_model_graph(path, ml.batch);
  if (!shape_arg.empty()) bind_input_shape(g, shape_arg);
  so.pipeline.optimize = !no_optimize;
  if (want_plans) resolve_tiling_once(so, {"native"});  // a bad LOCUS_L2 fails before any output
  PipelineOptions po = so.pipeline;  // as a session of the native backend prepares it
  po.fuse_blocks = make_backend("native")->capabilities().fused_inverted_residual;
  po.fuse_qblocks = make_backend("native")->capabilities().fused_qlinear_inverted_residual;
  po.fuse_residual = make_backend("native")->capabilities().conv_residual;
  const PassReport report = prepare_graph(g, po).report;

  // --plans: compiled for the native backend as a session would (plans made once, read back) before
  // anything is printed, so that a bad LOCUS_L2 / LOCUS_TILE_ORDER fails without partial output.
  std::unique_ptr<Executable> plans;
  if (want_plans) plans = make_backend("native")->compile(g, so.backend);  // with so.backend.tiling

  std::printf("model      %s\n", path.c_str());
  std::printf("opset      %lld\n", (long long)g.opset);
  for (auto& in : g.inputs)
    std::printf("input      %s %s %s\n", in.c_str(), dtype_name(g.info(in).dtype), shape_str(g.info(in).shape).c_str());
  for (auto& out : g.outputs)
    std::printf("output     %s %s %s\n", out.c_str(), dtype_name(g.info(out).dtype), shape_str(g.info(out).shape).c_str());
  std::map<std::string, int> ops;
  for (auto& n : g.nodes) ops[n.op]++;
  std::string opstr;
  for (auto& [op, c] : ops) opstr += (opstr.empty() ? "" : ", ") + op + " x" + std::to_string(c);
  std::printf("operators  %s\n", opstr.c_str());
  std::printf("parameters %lld\n", (long long)count_parameters(g));
  std::printf("\n%-4s %-40s %-18s %-20s %14s\n", "#", "node", "op", "output shape", "MACs");
  int64_t total = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    int64_t macs = node_macs(g, n);
    total += macs;
    std::string op = n.op;
    if (const std::string act = n.s("locus.activation", ""); n.op == "Conv" && !act.empty()) {
      op += '+';
      op += act;
    }
    std::printf("%-4zu %-40s %-18s %-20s %14lld\n", i, n.name.c_str(), op.c_str(),
                shape_str(g.info(n.outputs[0]).shape).c_str(), (long long)macs);
  }
  std::printf("\ntotal MACs %lld (%.3f G)\n", (long long)total, double(total) / 1e9);
  if (passes) {
    std::printf("\npasses\n");
    for (auto& r : report.results) std::printf("  %-42s %d changes\n", r.pass.c_str(), r.changes);
    for (auto& r : report.remarks)
      std::printf("  %-24s %s: %s\n", r.pass.c_str(), r.node.c_str(), r.message.c_str());
  }
  if (plans) print_plans(plans.get());
  if (plans && fixed_tiles) print_plan_order_comparison(plans.get());
  return 0;
}

}  // namespace locus::cli
