// Pass `constant-folding`.
// Matches: a node whose inputs are all constants (or omitted), and any Shape node (shapes are
//   static, so Shape always folds). This is what turns the exported
//   Shape -> Gather -> Unsqueeze -> Concat -> Reshape idiom into a Reshape with a constant shape.
// Guarantees: each folded node is removed and its outputs become Graph::constants, computed by the
//   reference kernels; a folded output that was a graph output stays one (as a constant).
// Does not fire on: DequantizeLinear (a quantized parameter stays quantized for fold-qdq), nodes whose outputs would exceed kFoldLimit elements (folding would only move
//   work from run time to load time and grow memory), nodes past kFoldTotalLimit elements folded in
//   one run (so that a small model cannot make load time allocate without bound: many foldable
//   nodes each under the per-node limit), ops the reference cannot evaluate (remark).
// The same folding also runs during shape inference (infer_shapes_and_fold), so that nodes after
// a shape-computing subgraph see constant shape inputs.
#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "graph/eval/eval_ops.h"

namespace locus {
namespace {

constexpr int64_t kFoldLimit = int64_t(1) << 24;
constexpr int64_t kFoldTotalLimit = int64_t(1) << 26;

}  // namespace

bool fold_node(const Node& n, Graph& g, std::vector<PassRemark>* remarks, int64_t* folded_elements) {
  const char* pass = "constant-folding";
  bool foldable = n.op == "Shape";  // its output depends only on the (static) input shape
  if (!foldable) {
    foldable = !n.inputs.empty();
    for (auto& in : n.inputs)
      if (!in.empty() && !g.is_constant(in)) foldable = false;
  }
  if (!foldable) return false;
  if (n.op == "DequantizeLinear" && n.domain.empty()) {
    // a quantized weight or bias stays quantized: fold-qdq reads DQ(constant) -> op -> Q groups
    if (remarks) remarks->push_back({pass, n.name, "not folded: a DequantizeLinear of a constant is a quantized "
                                                   "parameter (fold-qdq turns its group into a quantized op)"});
    return false;
  }
  int64_t out_elems = 0;
  for (auto& o : n.outputs)
    if (g.values.count(o)) out_elems += checked_numel(g.values[o].shape, o);
  if (out_elems > kFoldLimit) {
    if (remarks) remarks->push_back({pass, n.name, "not folded: output too large to fold at load time"});
    return false;
  }
  if (folded_elements) {
    if (*folded_elements + out_elems > kFoldTotalLimit) {
      if (remarks) remarks->push_back({pass, n.name, "not folded: the folded constants reached their total limit"});
      return false;
    }
    *folded_elements += out_elems;
  }
  std::vector<Tensor> outs;
  if (n.op == "Shape") {
    // infer_shapes normalised start/end into the input's rank
    ValueInfo in = g.info(n.input(0));
    int64_t start = n.i("start", 0), end = n.i("end", int64_t(in.shape.size()));
    std::vector<int64_t> dims(in.shape.begin() + start, in.shape.begin() + end);
    outs.push_back(Tensor::from_i64({int64_t(dims.size())}, dims));
  } else {
    std::vector<const Tensor*> ins;
    for (auto& in : n.inputs) ins.push_back(in.empty() ? nullptr : g.constant(in));
    try {
      outs = eval::evaluate(n, ins);
    } catch (const Unsupported& e) {
      if (remarks) remarks->push_back({pass, n.name, cat("not folded: ", e.what())});
      return false;
    }
  }
  for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k) {
    if (n.outputs[k].empty()) continue;
    g.constants[n.outputs[k]] = std::move(outs[k]);
    g.values.erase(n.outputs[k]);
  }
  return true;
}

int infer_shapes_and_fold(Graph& g) {
  int folded = 0;
  int64_t elements = 0;
  infer_shapes(g, [&](const Node& n, Graph& graph) { return fold_node(n, graph, nullptr, &elements) && ++folded; });
  return folded;
}

namespace {

class ConstantFolding : public Pass {
 public:
  std::string name() const override { return "constant-folding"; }
  std::string description() const override {
    return "evaluates nodes whose inputs are all constant (and Shape) at load time";
  }
  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    int changes = 0;
    int64_t elements = 0;
    std::vector<bool> keep(g.nodes.size(), true);
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (fold_node(g.nodes[i], g, &remarks, &elements)) {
        keep[i] = false;
        ++changes;
      }
    g.erase_nodes(keep);
    return changes;
  }
};

}  // namespace

std::unique_ptr<Pass> make_constant_folding_pass() { return std::make_unique<ConstantFolding>(); }

}  // namespace locus
