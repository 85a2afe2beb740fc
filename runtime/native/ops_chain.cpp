// Native kernel of locus.FusedChain (graph/ops.h): kernels/native/fused_chain.h, planned on the
// core's L2 as the fused blocks are (the pointwise tiling buffer when set, else the fallback L2),
// run on the session's threads (the batch's bands split among them).
#include <limits>
#include <memory>

#include "graph/ops.h"
#include "kernels/native/fused_chain.h"
#include "runtime/backend.h"
#include "runtime/native/op_registry.h"

namespace locus::native {
namespace {

using namespace kernels;

Step build_fused_chain(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  auto constant = [&](size_t i) -> const float* {
    if (n.input(i).empty()) return nullptr;
    const Tensor* t = c.graph().constant(n.input(i));
    if (!t) throw Unsupported(cat("native backend: FusedChain '", n.name, "' input ", i, " is not constant"));
    return t->data<float>();
  };
  const auto kinds = n.ints("kinds"), strides = n.ints("strides"), pads = n.ints("pads");
  const auto acts = std::get<std::vector<std::string>>(n.attrs.at("activations"));
  const auto lo = n.floats("activation_min"), hi = n.floats("activation_max");
  schedule::FusedChainShape s;
  s.H = x.shape[2], s.W = x.shape[3], s.C = x.shape[1];
  std::vector<FusedChainStageWeights> w;
  for (size_t st = 0; st < kinds.size(); ++st) {
    const Shape ws = c.graph().info(n.input(2 + 2 * st)).shape;
    schedule::ChainStage g;
    g.depthwise = kinds[st] == 1;
    g.OC = ws[0], g.KH = ws[2], g.KW = ws[3], g.SH = strides[2 * st], g.SW = strides[2 * st + 1];
    g.PT = pads[4 * st], g.PL = pads[4 * st + 1], g.PB = pads[4 * st + 2], g.PR = pads[4 * st + 3];
    s.stages.push_back(g);
    FusedChainStageWeights sw;
    sw.w = constant(2 + 2 * st);
    sw.bias = constant(3 + 2 * st);
    if (acts[st] == "relu") sw.act = {ActKind::Relu};
    if (acts[st] == "clip") sw.act = {ActKind::Clip, lo[st], hi[st]};
    w.push_back(sw);
  }
  const bool residual = !n.input(1).empty();
  s.residual = !residual ? schedule::ChainResidual::None
                         : n.input(1) == n.input(0) ? schedule::ChainResidual::Input : schedule::ChainResidual::External;
  LOCUS_CHECK(s.TH(s.n()) == y.shape[2] && s.TW(s.n()) == y.shape[3] && s.TC(s.n()) == y.shape[1],
              "native backend: FusedChain '", n.name, "': output shape does not match the stages");
  Activation out_act;
  if (n.s("output_activation", "none") == "relu") out_act = {ActKind::Relu};
  const int64_t S = c.tiling().enabled() ? c.tiling().buffer_entries : l2_buffer_entries(kFusedFallbackL2Bytes);
  auto packed = std::make_shared<PackedFusedChain>(pack_fused_chain(s, x.shape[0], w, out_act, S, c.threads()));
  c.need_workspace(packed->scratch);
  const float* r = residual ? c.val(n.input(1)).ptr : nullptr;
  return [ws = c.workspace(), packed, in = x.ptr, r, out = y.ptr] { fused_chain_nhwc(*packed, in, r, out, ws->data()); };
}

}  // namespace

void register_chain_ops(NativeOpRegistry& r) { r.add({"locus.FusedChain", "fused_chain_nhwc", build_fused_chain}); }

}  // namespace locus::native
