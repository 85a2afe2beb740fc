// Pass `fuse-activation`.
// Matches: Conv -> Relu and Conv -> Clip (constant scalar min/max, either may be omitted) where the
//   Conv output is read only by the activation and is not a graph output.
// Guarantees: the Conv gets attrs locus.activation = "relu" | "clip" (+ locus.activation_min/max, +-inf for an
//   omitted bound) and takes over the activation's output name; the activation node is removed.
#include <limits>

#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

class FuseActivation : public Pass {
 public:
  std::string name() const override { return "fuse-activation"; }
  std::string description() const override {
    return "attaches Relu/Clip to the producing Conv as its epilogue activation";
  }
  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    int changes = 0;
    std::vector<bool> keep(g.nodes.size(), true);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& act = g.nodes[i];
      if (act.op != "Relu" && act.op != "Clip") continue;
      auto refuse = [&](const std::string& why) {
        remarks.push_back({name(), act.name, "not fused: " + why});
      };
      int p = g.producer(act.input(0));
      if (p < 0 || g.nodes[size_t(p)].op != "Conv") { refuse("input is not produced by a Conv"); continue; }
      Node& conv = g.nodes[size_t(p)];
      if (conv.has("locus.activation")) { refuse("the Conv already has an activation"); continue; }
      if (g.consumers(conv.outputs[0]).size() != 1 || g.is_graph_output(conv.outputs[0])) {
        refuse("the Conv output '" + conv.outputs[0] + "' is also read elsewhere"); continue;
      }
      float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
      if (act.op == "Clip") {
        const Tensor* mn = act.input(1).empty() ? nullptr : g.constant(act.input(1));
        const Tensor* mx = act.input(2).empty() ? nullptr : g.constant(act.input(2));
        if ((!act.input(1).empty() && !mn) || (!act.input(2).empty() && !mx)) {
          refuse("Clip bounds are not constant"); continue;
        }
        if ((mn && mn->numel() != 1) || (mx && mx->numel() != 1)) { refuse("Clip bounds are not scalars"); continue; }
        if (mn) lo = float(mn->get(0));
        if (mx) hi = float(mx->get(0));
        conv.attrs["locus.activation"] = std::string("clip");
        conv.attrs["locus.activation_min"] = lo;
        conv.attrs["locus.activation_max"] = hi;
      } else {
        conv.attrs["locus.activation"] = std::string("relu");
      }
      g.values.erase(conv.outputs[0]);
      g.set_output(p, 0, act.outputs[0]);
      keep[i] = false;
      ++changes;
    }
    g.erase_nodes(keep);
    return changes;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_activation_pass() { return std::make_unique<FuseActivation>(); }

}  // namespace locus
