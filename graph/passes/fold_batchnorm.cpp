// Pass `fold-batchnorm`.
// Matches: Conv -> BatchNormalization where the Conv output is read only by that BatchNormalization
//   (and is not a graph output), the Conv weight (and bias, if any) and all BatchNormalization
//   parameters are constants, and the Conv carries no fused activation yet.
// Guarantees: the pair becomes one Conv with weights W' = W * s and bias b' = (b - mean) * s + beta,
//   s = scale / sqrt(var + eps), per output channel; new constants are created (the originals may
//   be shared) and the Conv takes over the BatchNormalization's output name.
// Explains: every BatchNormalization left unfolded gets a remark saying why.
#include <cmath>

#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

constexpr const char* kName = "fold-batchnorm";

int fold_batchnorm(Graph& g, std::vector<PassRemark>& remarks) {
  auto fold = [&](const Node& bn, int p, Node& conv, auto& refuse) {
    if (g.consumers(conv.outputs[0]).size() != 1 || g.is_graph_output(conv.outputs[0])) {
      refuse("the Conv output '" + conv.outputs[0] + "' is also read elsewhere"); return false;
    }
    if (conv.has("locus.activation")) { refuse("the Conv already has a fused activation"); return false; }
    const Tensor* w = g.constant(conv.input(1));
    const Tensor* b = conv.input(2).empty() ? nullptr : g.constant(conv.input(2));
    if (!w || (!conv.input(2).empty() && !b)) { refuse("Conv weights are not constant"); return false; }
    const Tensor *scale = g.constant(bn.input(1)), *beta = g.constant(bn.input(2)),
                 *mean = g.constant(bn.input(3)), *var = g.constant(bn.input(4));
    if (!scale || !beta || !mean || !var) { refuse("BatchNormalization parameters are not constant"); return false; }
    if (w->dtype != DType::F32) { refuse("weights are not float32"); return false; }
    int64_t oc = w->shape[0];
    int64_t per = w->numel() / oc;
    double eps = bn.f("epsilon", 1e-5f);
    Tensor nw = *w;
    Tensor nb(DType::F32, {oc});
    for (int64_t o = 0; o < oc; ++o) {
      double s = scale->get(o) / std::sqrt(var->get(o) + eps);
      for (int64_t k = 0; k < per; ++k) nw.data<float>()[o * per + k] = float(w->data<float>()[o * per + k] * s);
      double b0 = b ? b->get(o) : 0.0;
      nb.data<float>()[o] = float((b0 - mean->get(o)) * s + beta->get(o));
    }
    std::string wn = g.fresh_name(conv.name + ".weight_bnfolded");
    g.constants[wn] = std::move(nw);
    std::string bname = g.fresh_name(conv.name + ".bias_bnfolded");
    g.constants[bname] = std::move(nb);
    conv.inputs.resize(3);
    g.set_input(p, 1, wn);
    g.set_input(p, 2, bname);
    remarks.push_back({kName, bn.name, cat("folded into the weights and bias of Conv '", conv.name, "'"),
                       RemarkKind::Applied});
    return true;
  };
  return fold_into_producing_conv(g, remarks, kName, {"BatchNormalization"}, "not folded", fold);
}

}  // namespace

std::unique_ptr<Pass> make_fold_batchnorm_pass() {
  return make_pass(kName, "folds inference BatchNormalization into the preceding Conv's weights and bias",
                   fold_batchnorm);
}

}  // namespace locus
