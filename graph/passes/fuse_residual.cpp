// Pass `fuse-residual`.
// Matches: Add(a, b) where one operand is the output of a Conv without a fused activation or
//   residual, read only by that Add and not a graph output, and the other operand R (not a constant,
//   produced before that Conv) has the Add's shape, equal to the Conv output's (no broadcasting):
//   ResNet's conv3 -> Add(conv3, shortcut). When both operands qualify, the Conv computed later
//   (in node order) takes the other as its residual, so R is ready when the Conv runs.
//   If the Add's output is read only by a Relu (and is not a graph output), the Relu is fused too.
// Guarantees: the Conv gets locus.residual = 1 and input 3 = R (graph/ops.h: Y = act(conv + B + R)),
//   takes over the Add's (or the Relu's) output name, and gets locus.activation = "relu" when the
//   Relu was fused; the Add (and Relu) are removed.
// Runs last in PassManager::default_pipeline(disabled, blocks, fuse_residuals = true), after the
//   inverted-residual fusion (whose blocks keep their own residual Add), for the backends whose
//   Conv takes a residual (BackendCapabilities::conv_residual: the native backend).
#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

constexpr const char* kName = "fuse-residual";

int fuse_residual(Graph& g, std::vector<PassRemark>& remarks) {
  std::vector<bool> keep(g.nodes.size(), true);
  int changes = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& add = g.nodes[i];
    if (add.op != "Add" || add.inputs.size() != 2) continue;
    const Shape& ys = g.info(add.outputs[0]).shape;
    std::string why = "no operand is a Conv output";
    int best = -1;
    size_t best_side = 0;
    for (size_t side = 0; side < 2; ++side) {
      const std::string& v = add.inputs[side];
      const std::string& other = add.inputs[1 - side];
      const int p = g.producer(v);
      if (p < 0 || g.nodes[size_t(p)].op != "Conv" || !keep[size_t(p)]) continue;
      const Node& conv = g.nodes[size_t(p)];
      if (conv.has("locus.activation")) { why = cat("Conv '", conv.name, "' already has an activation"); continue; }
      if (conv.i("locus.residual", 0)) { why = cat("Conv '", conv.name, "' already has a residual"); continue; }
      if (g.consumers(v).size() != 1 || g.is_graph_output(v)) {
        why = cat("the Conv output '", v, "' is also read elsewhere"); continue;
      }
      if (v == other) { why = "both operands are the Conv output"; continue; }
      if (g.is_constant(other)) { why = "the other operand is a constant"; continue; }
      const ValueInfo oi = g.info(other), ci = g.info(v);
      if (oi.dtype != DType::F32 || ci.dtype != DType::F32 || oi.shape != ys || ci.shape != ys) {
        why = "the operands' shapes differ (broadcasting)"; continue;
      }
      if (g.producer(other) > p) { why = "the other operand is computed after the Conv"; continue; }
      if (p > best) best = p, best_side = side;
    }
    if (best < 0) {
      remarks.push_back({kName, add.name, "not fused: " + why});
      continue;
    }
    const std::string residual = add.inputs[1 - best_side];
    std::string out = add.outputs[0];
    int relu = -1;
    const auto readers = g.consumers(out);
    if (readers.size() == 1 && g.nodes[size_t(readers[0])].op == "Relu" && !g.is_graph_output(out)) relu = readers[0];
    Node& conv = g.nodes[size_t(best)];
    const std::string conv_out = conv.outputs[0];
    conv.inputs.resize(3);
    conv.inputs.push_back(residual);
    conv.attrs["locus.residual"] = int64_t(1);
    keep[i] = false;
    std::string what = cat("fused into Conv '", conv.name, "' as its residual");
    if (relu >= 0) {
      conv.attrs["locus.activation"] = std::string("relu");
      keep[size_t(relu)] = false;
      remarks.push_back({kName, g.nodes[size_t(relu)].name, cat("fused into Conv '", conv.name, "' after its residual"),
                         RemarkKind::Applied});
      out = g.nodes[size_t(relu)].outputs[0];
      g.values.erase(add.outputs[0]);
    }
    remarks.push_back({kName, add.name, what, RemarkKind::Applied});
    g.invalidate_uses();
    g.values.erase(conv_out);
    g.set_output(best, 0, out);
    ++changes;
  }
  g.erase_nodes(keep);
  return changes;
}

}  // namespace

std::unique_ptr<Pass> make_fuse_residual_pass() {
  return make_pass(kName, "adds a residual Add (and the Relu after it) to the producing Conv's epilogue",
                   fuse_residual);
}

}  // namespace locus
