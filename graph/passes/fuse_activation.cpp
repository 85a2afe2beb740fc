// Pass `fuse-activation`.
// Matches: Conv -> Relu, Conv -> Clip (constant scalar min/max, either may be omitted) and Conv ->
//   HardSigmoid / HardSwish / Sigmoid (mobile CNNs) where the Conv output is read only by the
//   activation and is not a graph output.
// Guarantees: the Conv gets attrs locus.activation = "relu" | "clip" (+ locus.activation_min/max, +-inf for an
//   omitted bound) | "hardsigmoid" (+ locus.activation_alpha/beta) | "hardswish" | "sigmoid" and takes
//   over the activation's output name; the activation node is removed.
#include <limits>

#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

constexpr const char* kName = "fuse-activation";

int fuse_activation(Graph& g, std::vector<PassRemark>& remarks) {
  auto fold = [&](const Node& act, int /*conv_index*/, Node& conv, auto& refuse) {
    if (conv.has("locus.activation")) { refuse("the Conv already has an activation"); return false; }
    if (g.consumers(conv.outputs[0]).size() != 1 || g.is_graph_output(conv.outputs[0])) {
      refuse("the Conv output '" + conv.outputs[0] + "' is also read elsewhere"); return false;
    }
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (act.op == "Clip") {
      const Tensor* mn = act.input(1).empty() ? nullptr : g.constant(act.input(1));
      const Tensor* mx = act.input(2).empty() ? nullptr : g.constant(act.input(2));
      if ((!act.input(1).empty() && !mn) || (!act.input(2).empty() && !mx)) {
        refuse("Clip bounds are not constant"); return false;
      }
      if ((mn && mn->numel() != 1) || (mx && mx->numel() != 1)) { refuse("Clip bounds are not scalars"); return false; }
      if (mn) lo = float(mn->get(0));
      if (mx) hi = float(mx->get(0));
      conv.attrs["locus.activation"] = std::string("clip");
      conv.attrs["locus.activation_min"] = lo;
      conv.attrs["locus.activation_max"] = hi;
    } else if (act.op == "HardSigmoid") {
      conv.attrs["locus.activation"] = std::string("hardsigmoid");
      conv.attrs["locus.activation_alpha"] = act.f("alpha", 0.2f);
      conv.attrs["locus.activation_beta"] = act.f("beta", 0.5f);
    } else if (act.op == "HardSwish" || act.op == "Sigmoid") {
      conv.attrs["locus.activation"] = std::string(act.op == "Sigmoid" ? "sigmoid" : "hardswish");
    } else {
      conv.attrs["locus.activation"] = std::string("relu");
    }
    remarks.push_back({kName, act.name, cat("fused into Conv '", conv.name, "' as its epilogue"), RemarkKind::Applied});
    return true;
  };
  return fold_into_producing_conv(g, remarks, kName, {"Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid"}, "not fused", fold);
}

}  // namespace

std::unique_ptr<Pass> make_fuse_activation_pass() {
  return make_pass(kName, "attaches Relu/Clip/HardSigmoid/HardSwish/Sigmoid to the producing Conv as its epilogue activation", fuse_activation);
}

}  // namespace locus
