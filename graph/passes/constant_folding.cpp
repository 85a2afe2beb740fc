// Pass `constant-folding`.
// Matches: a node whose inputs are all constants (or omitted), and any Shape node (shapes are
//   static, so Shape always folds). This is what turns the exported
//   Shape -> Gather -> Unsqueeze -> Concat -> Reshape idiom into a Reshape with a constant shape.
// Guarantees: each folded node is removed and its outputs become Graph::constants, computed by the
//   reference kernels; a folded output that was a graph output stays one (as a constant).
// Does not fire on: nodes whose outputs would exceed kFoldLimit elements (folding would only move
//   work from run time to load time and grow memory), ops the reference cannot evaluate (remark).
#include <algorithm>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "kernels/reference/reference_ops.h"

namespace locus {
namespace {

constexpr int64_t kFoldLimit = int64_t(1) << 24;

class ConstantFolding : public Pass {
 public:
  std::string name() const override { return "constant-folding"; }
  std::string description() const override {
    return "evaluates nodes whose inputs are all constant (and Shape) at load time";
  }
  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    int changes = 0;
    std::vector<bool> keep(g.nodes.size(), true);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      Node& n = g.nodes[i];
      if (n.op == "Shape") {
        ValueInfo in = g.info(n.input(0));
        int64_t r = int64_t(in.shape.size());
        int64_t start = n.i("start", 0), end = n.i("end", r);
        if (start < 0) start += r;
        if (end < 0) end += r;
        start = std::clamp<int64_t>(start, 0, r);
        end = std::clamp<int64_t>(end, start, r);
        std::vector<int64_t> dims(in.shape.begin() + start, in.shape.begin() + end);
        g.constants[n.outputs[0]] = Tensor::from_i64({int64_t(dims.size())}, dims);
        g.values.erase(n.outputs[0]);
        keep[i] = false;
        ++changes;
        continue;
      }
      bool all_const = !n.inputs.empty();
      for (auto& in : n.inputs)
        if (!in.empty() && !g.is_constant(in)) all_const = false;
      if (!all_const) continue;
      int64_t out_elems = 0;
      for (auto& o : n.outputs)
        if (g.values.count(o)) out_elems += checked_numel(g.values[o].shape, o);
      if (out_elems > kFoldLimit) {
        remarks.push_back({name(), n.name, "not folded: output too large to fold at load time"});
        continue;
      }
      std::vector<const Tensor*> ins;
      for (auto& in : n.inputs) ins.push_back(in.empty() ? nullptr : g.constant(in));
      std::vector<Tensor> outs;
      try {
        outs = reference::evaluate(n, ins);
      } catch (const Unsupported& e) {
        remarks.push_back({name(), n.name, cat("not folded: ", e.what())});
        continue;
      }
      for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k) {
        if (n.outputs[k].empty()) continue;
        g.constants[n.outputs[k]] = std::move(outs[k]);
        g.values.erase(n.outputs[k]);
      }
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
