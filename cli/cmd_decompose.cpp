// `locus decompose`: CP-decomposes the standard convolutions of a model (graph/passes/cp_decompose.h),
// writes the result as a standard ONNX model (exporters/onnx/onnx_exporter.h), reloads the written
// file to check it, and prints the per-layer report (rank, reconstruction error, parameters and MACs).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/json.h"
#include "cli/decompose_report.h"
#include "exporters/onnx/onnx_exporter.h"
#include "graph/cost.h"
#include "graph/ops.h"
#include "graph/passes/cp_decompose.h"
#include "graph/passes/pipeline.h"
#include "importers/onnx/onnx_importer.h"

namespace fs = std::filesystem;

namespace locus::cli {

static const char* kDecomposeHelp =
    "usage: locus decompose MODEL -o OUT.onnx [options]\n"
    "\n"
    "CP-decomposes every standard convolution (KxK with K > 1 in either axis, group 1) by alternating\n"
    "least squares and writes the network as a standard ONNX model that any runtime can load:\n"
    "  3-way (default): 1x1 (Cin -> R) -> depthwise KhxKw over R channels -> 1x1 (R -> Cout, + bias)\n"
    "  4-way (Lebedev): 1x1 (Cin -> R) -> depthwise Khx1 -> depthwise 1xKw -> 1x1 (R -> Cout, + bias)\n"
    "Stride, padding and dilation go to the depthwise stage(s). 1x1, depthwise and grouped convs are\n"
    "left alone. No other optimisation is applied, so the written model has the original's other\n"
    "nodes (BatchNorm, Relu, ...) unchanged. The written file is reloaded and its shapes inferred\n"
    "as a check. The decomposition is lossy and nothing is retrained: read the error column.\n"
    "ALS runs on OMP_NUM_THREADS threads (default: every core); the factors do not depend on it.\n"
;

static const char* kDecomposeReport =
    "The report has one row per convolution: node, Cout x Cin x Kh x Kw, rank (- if left alone),\n"
    "rel_error = ||W - W_R||_F / ||W||_F, ALS iterations, the layer's parameters (weights + bias) and\n"
    "MACs per image before and after, and a note (why a conv was left alone); then the totals over the\n"
    "convolutions and over the whole model. Progress goes to stderr.\n";

namespace {

std::vector<std::string> split_list(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& v : values) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      std::string item = v.substr(start, comma - start);
      if (!item.empty()) out.push_back(item);
      start = comma + 1;
    }
  }
  return out;
}

std::string dims(const CpLayerReport& r) {
  return cat(r.cout, "x", r.cin, "x", r.kh, "x", r.kw);
}

// The report row of a conv that --layers did not select.
CpLayerReport filtered_row(const Graph& g, const Node& n) {
  CpLayerReport r;
  r.node = n.name;
  r.why_not = "filtered (--layers)";
  const Shape w = g.info(n.input(1)).shape;
  if (w.size() == 4) {
    r.cout = w[0];
    r.cin = w[1] * n.i("group", 1);
    r.kh = w[2];
    r.kw = w[3];
  }
  r.params_before = r.params_after =
      checked_numel(w, "weight") + (n.input(2).empty() ? 0 : checked_numel(g.info(n.input(2)).shape, "bias"));
  r.macs_before = r.macs_after = node_macs(g, n);
  return r;
}

// Totals over the report rows: convolutions decomposed, the worst error, conv parameters and MACs.
struct Totals {
  int decomposed = 0;
  int64_t lp_before = 0, lp_after = 0, lm_before = 0, lm_after = 0;
  double worst = 0;
};

Totals totals_of(const std::vector<CpLayerReport>& rows) {
  Totals t;
  for (const CpLayerReport& r : rows) {
    t.lp_before += r.params_before;
    t.lp_after += r.decomposed ? r.params_after : r.params_before;
    t.lm_before += r.macs_before;
    t.lm_after += r.decomposed ? r.macs_after : r.macs_before;
    if (r.decomposed) {
      ++t.decomposed;
      t.worst = std::max(t.worst, r.rel_error);
    }
  }
  return t;
}

}  // namespace

DecomposeOutcome decompose_model(const DecomposeRequest& r) {
  const std::string& model = r.model;
  const std::string& out = r.output;
  const CpDecomposeOptions& opts = r.options;
  const std::vector<std::string>& layers = r.layers;
  const int64_t batch = r.batch;
  {
    std::error_code ec;
    const fs::path p(out);
    const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    LOCUS_CHECK(fs::is_directory(dir, ec), "cannot write '", out, "': folder '", dir.string(), "' does not exist");
    LOCUS_CHECK(!fs::is_directory(p, ec), "cannot write '", out, "': it is a folder");
  }

  Graph g = load_model_graph(model, batch);
  // Shapes (and constant subgraphs folded), but none of the optimising passes: the written model
  // keeps only standard ONNX ops. The decomposition runs below, one conv at a time.
  PipelineOptions po;
  po.optimize = false;
  prepare_graph(g, po);

  std::vector<std::string> convs;
  for (const Node& n : g.nodes)
    if (n.op == "Conv" && n.domain.empty()) convs.push_back(n.name);
  const std::set<std::string> conv_set(convs.begin(), convs.end());
  for (const std::string& l : layers)
    LOCUS_CHECK(conv_set.count(l), "option --layers: the model has no Conv node named '", l, "'");
  const std::set<std::string> wanted(layers.begin(), layers.end());

  const int64_t params_before = count_parameters(g), macs_before = graph_macs(g);
  // One conv at a time, so long fits show progress.
  std::vector<CpLayerReport> rows;
  const auto t_start = std::chrono::steady_clock::now();
  int index = 0;
  for (const std::string& name : convs) {
    ++index;
    if (!wanted.empty() && !wanted.count(name)) {  // not selected by --layers: reported as it is
      for (const Node& n : g.nodes)
        if (n.name == name) rows.push_back(filtered_row(g, n));
      continue;
    }
    CpDecomposeOptions one = opts;
    one.only_nodes = {name};
    // The conv as it is, before the pass replaces it (for the rows of convs left alone).
    CpLayerReport as_is;
    bool candidate = false;  // a fit will run: show progress
    for (const Node& n : g.nodes)
      if (n.name == name) {
        as_is = filtered_row(g, n);
        candidate = n.i("group", 1) == 1 && as_is.kh * as_is.kw > 1;
      }
    if (candidate && r.progress) {
      std::fprintf(stderr, "decompose: [%d/%zu] %s %lldx%lldx%lldx%lld ...", index, convs.size(), name.c_str(),
                   (long long)as_is.cout, (long long)as_is.cin, (long long)as_is.kh, (long long)as_is.kw);
      std::fflush(stderr);
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<CpLayerReport> rep = cp_decompose(g, one);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const CpLayerReport* row = nullptr;
    for (const CpLayerReport& r : rep)
      if (r.node == name) row = &r;
    LOCUS_CHECK(row, "internal: the cp-decompose pass did not report conv '", name, "'");
    if (row->decomposed) {
      rows.push_back(*row);
    } else {
      as_is.why_not = row->why_not;
      rows.push_back(as_is);
    }
    if (!candidate || !r.progress) continue;
    if (row->decomposed)
      std::fprintf(stderr, " rank %lld, error %.4g, %d iterations, %.2f s\n", (long long)row->rank, row->rel_error,
                   row->iterations, s);
    else
      std::fprintf(stderr, " left alone (%s)\n", row->why_not.c_str());
  }
  const double fit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  const int64_t params_after = count_parameters(g), macs_after = graph_macs(g);

  if (r.progress) std::fprintf(stderr, "decompose: writing %s ...\n", out.c_str());
  onnx_export::ExportOptions eo;
  eo.doc_string = cat("CP-decomposed by locus decompose (", opts.policy.describe(), ", ",
                      opts.form == CpForm::FourWay ? "4-way" : "3-way", " form) from ", fs::path(model).filename().string());
  onnx_export::save_model(g, out, eo);

  // The check: ONNX's checker accepts the file, and it imports and its shapes infer, with the same
  // outputs as the graph.
  onnx_export::check_model_file(out);
  Graph back = onnx_import::load_model(out, {batch});
  if (auto bad = unsupported_nodes(back); !bad.empty())
    fail("the written model '", out, "' does not reload: unsupported operators ", bad[0]);
  infer_shapes_and_fold(back);
  LOCUS_CHECK(back.outputs == g.outputs, "the written model '", out, "' reloads with different outputs");
  std::string out_shapes;
  for (const std::string& o : back.outputs) {
    LOCUS_CHECK(back.info(o).shape == g.info(o).shape, "the written model '", out, "' reloads with output '", o,
                "' of shape ", shape_str(back.info(o).shape), ", not ", shape_str(g.info(o).shape));
    out_shapes += (out_shapes.empty() ? "" : ", ") + o + " " + shape_str(back.info(o).shape);
  }
  std::error_code ec;
  const auto file_bytes = fs::file_size(out, ec);

  DecomposeOutcome o;
  o.request = r;
  o.rows = std::move(rows);
  o.fit_seconds = fit_s;
  o.params_before = params_before;
  o.params_after = params_after;
  o.macs_before = macs_before;
  o.macs_after = macs_after;
  o.out_shapes = out_shapes;
  o.file_bytes = int64_t(ec ? 0 : file_bytes);
  o.opset = int64_t(onnx_export::export_opset(g, eo));
  return o;
}

Json decompose_json(const DecomposeOutcome& res) {
  const DecomposeRequest& r = res.request;
  const CpDecomposeOptions& opts = r.options;
  const Totals t = totals_of(res.rows);
  Json j = json_document("locus-decompose/1");
  j["model"] = r.model;
  j["output"] = r.output;
  j["policy"] = opts.policy.describe();
  j["form"] = opts.form == CpForm::FourWay ? 4 : 3;
  j["max_iterations"] = opts.max_iterations;
  j["fit_seconds"] = finite_or_null(res.fit_seconds);
  Json& layers = j["layers"] = Json::array();
  for (const CpLayerReport& row : res.rows) {
    Json l = {{"node", row.node}, {"cout", row.cout}, {"cin", row.cin}, {"kh", row.kh}, {"kw", row.kw}, {"decomposed", row.decomposed}};
    if (row.decomposed) {
      l["rank"] = row.rank;
      l["rel_error"] = finite_or_null(row.rel_error);
      l["iterations"] = row.iterations;
    } else {
      l["why_not"] = row.why_not;
    }
    l["params_before"] = row.params_before;
    l["params_after"] = row.decomposed ? row.params_after : row.params_before;
    l["macs_before"] = row.macs_before;
    l["macs_after"] = row.decomposed ? row.macs_after : row.macs_before;
    layers.push_back(std::move(l));
  }
  j["totals"] = {{"decomposed", t.decomposed},
                 {"convs", res.rows.size()},
                 {"max_rel_error", finite_or_null(t.worst)},
                 {"conv_params_before", t.lp_before},
                 {"conv_params_after", t.lp_after},
                 {"conv_macs_before", t.lm_before},
                 {"conv_macs_after", t.lm_after},
                 {"model_params_before", res.params_before},
                 {"model_params_after", res.params_after},
                 {"model_macs_before", res.macs_before},
                 {"model_macs_after", res.macs_after}};
  j["check"] = {{"reloaded", true}, {"shapes_inferred", true}, {"outputs", res.out_shapes},
                {"bytes", res.file_bytes}};
  return j;
}

int cmd_decompose(int argc, char** argv) {
  auto app = make_command("decompose", kDecomposeHelp, kDecomposeReport);
  std::string model_arg, out, format = "table";
  std::vector<std::string> layer_args;
  std::optional<CpDecomposeOptions> chosen;  // --decompose / --rank, --decompose-form / --form
  CpDecomposeOptions defaults;
  int iterations = defaults.max_iterations;
  ModelLookup ml;
  app->add_option("MODEL", model_arg, "a .onnx file, a folder holding one, or builtin:NAME")->required()->type_name("");
  app->add_option("-o,--output", out, "the ONNX file to write (required; written via a temporary file)")
      ->required()
      ->type_name("FILE");
  const DecomposeGroup dg = add_decompose_options(*app, chosen, /*aliases=*/true);
  app->add_option("--layers", layer_args, "decompose only these Conv nodes (by node name; repeatable)")
      ->type_name("A,B,...");
  add_int_option(*app, "--iterations", iterations, 1, 1000000, "ALS iteration cap per fit (default 200)");
  add_model_options(*app, ml, "; it is written as is");
  add_choice_option(*app, "--format", format, {"table", "json"}, "the report's format on stdout (default table)",
                    "table|json");
  // Every option is checked before any work.
  if (!parse_command(*app, argc, argv)) return 0;
  check_decompose_options(dg);
  CpDecomposeOptions opts = chosen ? *chosen : defaults;
  opts.max_iterations = iterations;
  const std::vector<std::string> layers = split_list(layer_args);
  if (app->count("--layers") && layers.empty()) throw UsageError("option --layers needs at least one node name");
  {
    std::error_code ec;
    const fs::path p(out);
    const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    LOCUS_CHECK(fs::is_directory(dir, ec), "cannot write '", out, "': folder '", dir.string(), "' does not exist");
    LOCUS_CHECK(!fs::is_directory(p, ec), "cannot write '", out, "': it is a folder");
  }
  if (stop_after_options()) return 0;

  DecomposeRequest req;
  req.model = resolve_model(model_arg, ml.model_dir);
  req.output = out;
  req.options = opts;
  req.layers = layers;
  req.batch = ml.batch;
  const DecomposeOutcome res = decompose_model(req);
  if (format == "json") {
    std::printf("%s\n", json_text(decompose_json(res)).c_str());
    return 0;
  }
  const std::string& model = req.model;
  const std::vector<CpLayerReport>& rows = res.rows;
  const Totals t = totals_of(rows);
  const int decomposed = t.decomposed;
  const int64_t lp_before = t.lp_before, lp_after = t.lp_after, lm_before = t.lm_before, lm_after = t.lm_after;
  const double worst = t.worst, fit_s = res.fit_seconds;
  const int64_t params_before = res.params_before, params_after = res.params_after, macs_before = res.macs_before,
                macs_after = res.macs_after;
  const std::string& out_shapes = res.out_shapes;
  const char* form_name = opts.form == CpForm::FourWay ? "4-way" : "3-way";

  std::printf("model     %s\n", model.c_str());
  std::printf("policy    %s, %s form, ALS up to %d iterations\n", opts.policy.describe().c_str(), form_name,
              opts.max_iterations);
  std::printf("\n%-36s %-18s %6s %10s %6s %14s %14s %14s %14s  %s\n", "node", "CoutxCinxKhxKw", "rank", "rel_error",
              "iters", "params_before", "params_after", "MACs_before", "MACs_after", "note");
  for (const CpLayerReport& r : rows) {
    if (r.decomposed)
      std::printf("%-36s %-18s %6lld %10.3e %6d %14lld %14lld %14lld %14lld  %s\n", r.node.c_str(), dims(r).c_str(),
                  (long long)r.rank, r.rel_error, r.iterations, (long long)r.params_before, (long long)r.params_after,
                  (long long)r.macs_before, (long long)r.macs_after, "-");
    else
      std::printf("%-36s %-18s %6s %10s %6s %14lld %14lld %14lld %14lld  %s\n", r.node.c_str(), dims(r).c_str(), "-",
                  "-", "-", (long long)r.params_before, (long long)r.params_before, (long long)r.macs_before,
                  (long long)r.macs_before, r.why_not.c_str());
  }
  auto pct = [](int64_t after, int64_t before) { return before ? 100.0 * double(after) / double(before) : 100.0; };
  std::printf("\n%-36s %-18s %6s %10.3e %6s %14lld %14lld %14lld %14lld  %d of %zu convs decomposed\n",
              "total (convolutions)", "-", "-", worst, "-", (long long)lp_before, (long long)lp_after,
              (long long)lm_before, (long long)lm_after, decomposed, rows.size());
  std::printf("%-36s %-18s %6s %10s %6s %14lld %14lld %14lld %14lld  params %.1f%%, MACs %.1f%% of the original\n",
              "total (model)", "-", "-", "-", "-", (long long)params_before, (long long)params_after,
              (long long)macs_before, (long long)macs_after, pct(params_after, params_before),
              pct(macs_after, macs_before));
  std::printf("\n(rel_error of the total row: the largest over the decomposed layers; fitting took %.1f s)\n", fit_s);
  std::printf("written   %s (%lld bytes, standard ONNX, opset %lld)\n", out.c_str(), (long long)res.file_bytes,
              (long long)res.opset);
  std::printf("check     passes the ONNX checker; reloaded with the ONNX importer, shapes inferred: %s\n", out_shapes.c_str());
  return 0;
}

}  // namespace locus::cli
