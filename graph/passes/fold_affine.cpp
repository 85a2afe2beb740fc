// Pass `fold-affine`.
// Matches: Conv -> Mul(constant) and Conv -> Add(constant), the constant on either side, where the
//   constant broadcasts per output channel (a scalar, [C,1,1], [1,C,1,1] or any shape whose dims are
//   1 except the channel axis, without raising the rank), the Conv output is read only by that node
//   and is not a graph output, the Conv's weight (and bias, if any) are float32 constants and the
//   Conv carries no fused activation or residual yet. Chains (Conv -> Mul -> Add, PP-LCNetV3's
//   learnable affine after each conv) fold one node at a time, in node order, in one run.
// Guarantees: Mul by s gives W' = W * s and b' = b * s per output channel; Add of t gives b' = b + t
//   (computed in double, rounded to float32 once); new constants are created (the originals may be
//   shared) and the Conv takes over the node's output name.
// Explains: every Mul / Add with one constant operand left unfolded gets a remark saying why.
#include <cmath>

#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

constexpr const char* kName = "fold-affine";

// Why `c` does not broadcast per output channel over a Conv output of shape `out` ("" if it does).
std::string per_channel_problem(const Tensor& c, const Shape& out) {
  if (c.dtype != DType::F32) return cat("the constant is ", dtype_name(c.dtype), ", not float32");
  if (c.numel() == 1) return c.shape.size() <= out.size() ? "" : "the constant has a higher rank than the Conv output";
  if (c.shape.size() > out.size() || out.size() < 3) return cat("the constant ", shape_str(c.shape), " is not per-channel");
  const size_t off = out.size() - c.shape.size();  // c's dims align to the right of out's
  for (size_t k = 0; k < c.shape.size(); ++k) {
    const size_t axis = off + k;
    if (c.shape[k] == 1) continue;
    if (axis != 1 || c.shape[k] != out[1])
      return cat("the constant ", shape_str(c.shape), " is not per-channel for the Conv output ", shape_str(out));
  }
  return "";
}

int fold_affine(Graph& g, std::vector<PassRemark>& remarks) {
  return erase_replaced_nodes(g, [&](size_t i) {
    const Node& n = g.nodes[i];
    if ((n.op != "Mul" && n.op != "Add") || !(n.domain.empty() || n.domain == "ai.onnx") || n.num_inputs() != 2)
      return false;
    const bool c0 = g.is_constant(n.input(0)), c1 = g.is_constant(n.input(1));
    if (c0 == c1) return false;  // not an affine step: two runtime operands (or two constants, left to folding)
    const std::string& x = c0 ? n.input(1) : n.input(0);
    const Tensor& c = *g.constant(c0 ? n.input(0) : n.input(1));
    auto refuse = [&](const std::string& why) { remarks.push_back({kName, n.name, "not folded: " + why}); };
    const int p = g.producer(x);
    if (p < 0 || g.nodes[size_t(p)].op != "Conv") {
      refuse(p < 0 ? "its input is not produced by a Conv"
                   : cat("its input is produced by ", g.nodes[size_t(p)].op, " '", g.nodes[size_t(p)].name, "', not a Conv"));
      return false;
    }
    Node& conv = g.nodes[size_t(p)];
    if (g.consumers(x).size() != 1 || g.is_graph_output(x)) {
      refuse("the Conv output '" + x + "' is also read elsewhere");
      return false;
    }
    if (conv.has("locus.activation") || conv.has("locus.residual")) {
      refuse("the Conv already has a fused activation or residual");
      return false;
    }
    const Tensor* w = g.constant(conv.input(1));
    const Tensor* b = conv.input(2).empty() ? nullptr : g.constant(conv.input(2));
    if (!w || (!conv.input(2).empty() && !b)) { refuse("Conv weights are not constant"); return false; }
    if (w->dtype != DType::F32 || (b && b->dtype != DType::F32)) { refuse("Conv weights are not float32"); return false; }
    if (std::string why = per_channel_problem(c, g.info(x).shape); !why.empty()) { refuse(why); return false; }
    const int64_t oc = w->shape[0], per = w->numel() / oc;
    for (int64_t k = 0; k < c.numel(); ++k)
      if (!std::isfinite(c.get(k))) { refuse("the constant is not finite"); return false; }
    auto at = [&](int64_t o) { return c.numel() == 1 ? c.get(0) : c.get(o); };
    Tensor nb(DType::F32, {oc});
    const bool mul = n.op == "Mul";
    conv.inputs.resize(3);
    for (int64_t o = 0; o < oc; ++o) {
      const double b0 = b ? b->get(o) : 0.0;
      nb.data<float>()[o] = float(mul ? b0 * at(o) : b0 + at(o));
    }
    if (mul) {
      Tensor nw = *w;
      for (int64_t o = 0; o < oc; ++o)
        for (int64_t k = 0; k < per; ++k)
          nw.data<float>()[o * per + k] = float(double(w->data<float>()[o * per + k]) * at(o));
      std::string wn = g.fresh_name(conv.name + ".weight_affine");
      g.constants[wn] = std::move(nw);
      g.set_input(p, 1, wn);
    }
    std::string bname = g.fresh_name(conv.name + ".bias_affine");
    g.constants[bname] = std::move(nb);
    g.set_input(p, 2, bname);
    remarks.push_back({kName, n.name,
                       cat(mul ? "scale" : "shift", c.numel() == 1 ? " (scalar)" : " (per channel)",
                           " folded into the ", mul ? "weights and bias" : "bias", " of Conv '", conv.name, "'"),
                       RemarkKind::Applied});
    g.values.erase(conv.outputs[0]);
    g.set_output(p, 0, n.outputs[0]);
    return true;
  });
}

}  // namespace

std::unique_ptr<Pass> make_fold_affine_pass() {
  return make_pass(kName, "folds Mul / Add by a per-channel constant after a Conv into its weights and bias",
                   fold_affine);
}

}  // namespace locus
