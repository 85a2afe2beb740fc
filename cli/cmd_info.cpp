// `locus info`: what a model is made of — operators, parameters, per-layer shapes and MACs.
#include <cstdio>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_stats.h"
#include "graph/ops.h"
#include "importers/onnx/onnx_importer.h"

namespace locus::cli {

static const char* kInfoHelp =
    "usage: locus info MODEL [options]\n"
    "\n"
    "Prints the operators, the parameter count, one line per layer (node, op, output shape, MACs)\n"
    "and the total MACs. By default the graph is shown after the optimisation passes (BatchNorm\n"
    "folded, activations fused); --no-optimize shows it as imported.\n"
    "\n"
    "options:\n"
    "  --batch N          value for a symbolic batch dimension (default 1)\n"
    "  --model-dir DIR    folder searched for MODEL\n"
    "  --no-optimize      show the imported graph\n"
    "  --passes           also list what each pass did and why it did not fire\n";

int cmd_info(int argc, char** argv) {
  Args a(argc, argv, 2, {"--batch", "--model-dir"}, {"--help", "-h", "--no-optimize", "--passes"});
  if (a.flag("--help") || a.flag("-h")) {
    std::fputs(kInfoHelp, stdout);
    return 0;
  }
  if (a.positional().size() != 1) throw UsageError("info: expected exactly one MODEL");
  std::string path = resolve_model(a.positional()[0], a.get("--model-dir"));
  onnx_import::ImportOptions io;
  io.default_dim = a.get_int("--batch", 1, 1, 4096);
  Graph g = onnx_import::load_model(path, io);
  if (auto bad = unsupported_nodes(g); !bad.empty()) {
    std::string msg;
    for (auto& b : bad) msg += (msg.empty() ? "" : ", ") + b;
    throw Unsupported("unsupported operators: " + msg);
  }
  PassReport report;
  report.results.push_back({"constant-folding (during shape inference)", infer_shapes_and_fold(g)});
  if (!a.flag("--no-optimize")) {
    PassReport r = PassManager::default_pipeline().run(g);
    report.results.insert(report.results.end(), r.results.begin(), r.results.end());
    report.remarks = std::move(r.remarks);
  }

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
    if (n.op == "Conv") op += n.s("locus.activation", "").empty() ? "" : "+" + n.s("locus.activation", "");
    std::printf("%-4zu %-40s %-18s %-20s %14lld\n", i, n.name.c_str(), op.c_str(),
                shape_str(g.info(n.outputs[0]).shape).c_str(), (long long)macs);
  }
  std::printf("\ntotal MACs %lld (%.3f G)\n", (long long)total, double(total) / 1e9);
  if (a.flag("--passes")) {
    std::printf("\npasses\n");
    for (auto& r : report.results) std::printf("  %-42s %d changes\n", r.pass.c_str(), r.changes);
    for (auto& r : report.remarks)
      std::printf("  %-24s %s: %s\n", r.pass.c_str(), r.node.c_str(), r.message.c_str());
  }
  return 0;
}

}  // namespace locus::cli
