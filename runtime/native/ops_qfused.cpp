// The native backend's fused int8 inverted-residual block: locus.FusedQLinearInvertedResidual (graph/ops.h)
// through kernels/native/qinverted_residual.h, weights packed once here, planned by the fused-block
// planner with the L2 in bytes (the same S as the fp32 blocks, four bytes per float entry).
//
// Quantization as ops_quant.cpp builds it for the u8 x s8 kernels: an int8 block (X, and so every
// activation of the chain, int8) runs its input as uint8 with the sign bit flipped (zero point +
// 128) and keeps its intermediates as uint8 with their zero points + 128 (the same requantized
// values, shifted); the last stage writes the output's real type and the residual reads the block
// input as it is, so the bytes equal the unfused QLinearConv / QLinearAdd kernels'.
#include "runtime/native/op_registry.h"

#include <memory>
#include <vector>

#include "graph/fused_qlinear.h"
#include "graph/ops.h"
#include "graph/quant_params.h"
#include "kernels/native/qelementwise.h"
#include "kernels/native/qgemm_microkernel.h"
#include "kernels/native/qinverted_residual.h"

namespace locus::native {
namespace {

using namespace kernels;
namespace fq = fused_qlinear;

Step build_fused_qblock(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(fq::kX));
  const Val& y = c.val(n.outputs[0]);
  auto constant = [&](size_t k) -> const Tensor* {
    const Tensor* t = n.input(k).empty() ? nullptr : c.graph().constant(n.input(k));
    if (!t) throw Unsupported(cat("native backend: FusedQLinearInvertedResidual '", n.name, "' input ", k, " ('",
                                  n.input(k), "') is not a constant"));
    return t;
  };
  auto optional = [&](size_t k) { return n.input(k).empty() ? nullptr : constant(k); };
  if (x.shape.size() != 4 || y.shape.size() != 4)
    throw Unsupported(cat("native backend: FusedQLinearInvertedResidual '", n.name, "' is not 2-D"));
  const bool s8 = x.dtype == DType::I8;  // every activation of the chain has X's type
  const Tensor* wd = constant(fq::kDw + 2);
  const auto st = n.ints("dw_strides", {1, 1}), pads = n.ints("dw_pads", {0, 0, 0, 0});
  QInvertedResidualShape s;
  s.N = x.shape[0], s.C = x.shape[1], s.H = x.shape[2], s.W = x.shape[3];
  s.E = wd->shape[0], s.OC = y.shape[1];
  s.KH = wd->shape[2], s.KW = wd->shape[3], s.SH = st[0], s.SW = st[1];
  s.PT = pads[0], s.PL = pads[1], s.PB = pads[2], s.PR = pads[3];
  s.expand = !n.input(fq::kExpand + 2).empty();
  s.project = !n.input(fq::kProject + 2).empty();
  if (s.expand && fq::expand_is_conv(n, constant(fq::kExpand + 2)->shape)) {
    // a KxK expand conv (the stem): H and W become its output's, the depthwise input
    const Shape& we = constant(fq::kExpand + 2)->shape;
    const auto es = n.ints("expand_strides", {1, 1}), ep = n.ints("expand_pads", {0, 0, 0, 0});
    QExpandConv& xc = s.xconv;
    xc.on = true, xc.XH = s.H, xc.XW = s.W, xc.KH = we[2], xc.KW = we[3], xc.SH = es[0], xc.SW = es[1];
    xc.PT = ep[0], xc.PL = ep[1], xc.PB = ep[2], xc.PR = ep[3];
    s.H = (xc.XH + xc.PT + xc.PB - xc.KH) / xc.SH + 1;
    s.W = (xc.XW + xc.PL + xc.PR - xc.KW) / xc.SW + 1;
  }
  s.residual = n.i("residual", 0) == 1;
  LOCUS_CHECK(s.OH() == y.shape[2] && s.OW() == y.shape[3], "native backend: FusedQLinearInvertedResidual '", n.name,
              "': output shape does not match the depthwise geometry");

  // The QuantParams of the stage at `base` (its QLinearConv's inputs 1..8); `real_out`: it writes
  // the block's type (else an intermediate: u8, an int8 one with its zero point + 128).
  auto stage_q = [&](size_t base, bool real_out) {
    QuantParams q;
    q.a_scale = quant_scale_at(*constant(base), 0);
    q.a_zero = quant_zero_at(optional(base + 1), 0) + (s8 ? 128 : 0);
    const Tensor* ws = constant(base + 3);
    const Tensor* wz = optional(base + 4);
    const bool w_u8 = constant(base + 2)->dtype == DType::U8;
    for (int64_t k = 0; k < ws->numel(); ++k) q.w_scale.push_back(quant_scale_at(*ws, k));
    if (wz)
      for (int64_t k = 0; k < wz->numel(); ++k) q.w_zero.push_back(quant_zero_at(wz, k) - (w_u8 ? 128 : 0));
    else if (w_u8)
      q.w_zero.push_back(-128);
    q.y_scale = quant_scale_at(*constant(base + 5), 0);
    q.y_zero = quant_zero_at(optional(base + 6), 0);
    if (real_out && s8) {
      q.s8_out = true, q.qmin = -128, q.qmax = 127;
    } else {
      if (s8) q.y_zero += 128;
      q.qmin = 0, q.qmax = 255;
    }
    return q;
  };
  // Weights as int8 (uint8 ones shifted by -128), kept until packed.
  auto weights_s8 = [&](size_t base) {
    const Tensor& w = *constant(base + 2);
    std::vector<int8_t> r(size_t(w.numel()));
    for (int64_t i = 0; i < w.numel(); ++i)
      r[size_t(i)] = w.dtype == DType::I8 ? w.data<int8_t>()[i] : int8_t(int32_t(w.data<uint8_t>()[i]) - 128);
    return r;
  };
  auto bias = [&](size_t base) -> const int32_t* {
    const Tensor* b = optional(base + 7);
    return b ? b->data<int32_t>() : nullptr;
  };
  QInvertedResidualWeights w;
  std::vector<int8_t> we, wdw = weights_s8(fq::kDw), wp;
  if (s.expand) {
    we = weights_s8(fq::kExpand);
    w.expand = we.data(), w.expand_bias = bias(fq::kExpand), w.expand_q = stage_q(fq::kExpand, false);
  }
  w.dw = wdw.data(), w.dw_bias = bias(fq::kDw), w.dw_q = stage_q(fq::kDw, !s.project);
  if (s.project) {
    wp = weights_s8(fq::kProject);
    w.project = wp.data(), w.project_bias = bias(fq::kProject), w.project_q = stage_q(fq::kProject, true);
  }
  if (s.residual) {
    const size_t a = fq::kAdd;
    w.add = qadd_params(quant_scale_at(*constant(a), 0), quant_zero_at(optional(a + 1), 0),
                        quant_scale_at(*constant(a + 2), 0), quant_zero_at(optional(a + 3), 0),
                        quant_scale_at(*constant(a + 4), 0), quant_zero_at(optional(a + 5), 0), s8);
    w.x_first = n.i("residual_x_first", 0) == 1;
  }
  // The same L2 as the fp32 blocks, in bytes.
  const int64_t S = 4 * (c.tiling().enabled() ? c.tiling().buffer_entries : l2_buffer_entries(kFusedFallbackL2Bytes));
  auto packed = std::make_shared<PackedQInvertedResidual>(
      pack_qinverted_residual(s, w, S, c.threads(), c.workspace_room()));
  c.add_fused_plan({n.name, packed->plan});
  const Isa isa = active_isa();
  std::string impl = cat("qinverted_residual_nhwc (", qgemm_config(isa).name, ", ", qdwconv_microkernel_name(isa), ")");
  if (!packed->plan.note.empty()) impl += "; " + packed->plan.note;
  c.set_implementation(impl);
  c.need_workspace((qinverted_residual_scratch_bytes(*packed) + 3) / 4);
  const uint8_t* x_res = x.bytes();
  uint8_t* flipped = s8 ? c.scratch_bytes(x.numel()) : nullptr;
  return [ws = c.workspace(), packed, x_res, flipped, cnt = x.numel(), out = y.bytes()] {
    if (flipped) flip_sign_u8(cnt, x_res, flipped);
    qinverted_residual_nhwc(*packed, flipped ? flipped : x_res, x_res, out, reinterpret_cast<uint8_t*>(ws->data()));
  };
}

}  // namespace

void register_qfused_ops(NativeOpRegistry& r) {
  r.add({op_key(kLocusDomain, "FusedQLinearInvertedResidual"), "qinverted_residual_nhwc", build_fused_qblock,
         /*byte_values=*/true});
}

}  // namespace locus::native
