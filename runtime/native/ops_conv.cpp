// The native backend's convolutions: Conv (Winograd F(4x4, 3x3) / F(2x2, 3x3), im2col GEMM, cache-tiled pointwise, depthwise, direct
// small-depth; with a fused residual, graph/ops.h locus.residual) and the fused inverted-residual block.
#include "runtime/native/op_registry.h"


#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/conv_direct.h"
#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/gemm_microkernel.h"
#include "kernels/native/winograd.h"
#include "kernels/native/inverted_residual.h"
#include "kernels/native/se_block.h"

#include "graph/ops.h"

namespace locus::native {
namespace {

using namespace kernels;

// Stage activation of a FusedInvertedResidual: attrs <stage>_activation ("none" | "relu" | "clip")
// and <stage>_activation_min / _max.
Activation stage_activation(const Node& n, const std::string& stage) {
  const std::string a = n.s(stage + "_activation", "none");
  if (a == "relu") return {ActKind::Relu};
  if (a == "clip")
    return {ActKind::Clip, n.f(stage + "_activation_min", -std::numeric_limits<float>::infinity()),
            n.f(stage + "_activation_max", std::numeric_limits<float>::infinity())};
  LOCUS_CHECK(a == "none", "node '", n.name, "': unknown ", stage, " activation '", a, "'");
  return {};
}

// Whether a 3x3 conv runs as Winograd F(4x4, 3x3) or F(2x2, 3x3): the planner's choice for 3x3, stride-1,
// dilation-1, group-1 convs (when BackendOptions::winograd); one row for `locus info --plans` per 3x3
// conv. Returns the plan when Winograd is chosen.
std::optional<schedule::WinogradPlan> winograd_choice(NativeContext& c, const Node& n, const Conv2dShape& s,
                                                     const float* w, int64_t w_numel) {
  if (s.KH != 3 || s.KW != 3) return std::nullopt;
  WinogradPlanRow row;
  row.node = n.name;
  row.C = s.C, row.OC = s.OC, row.OH = s.OH, row.OW = s.OW;
  std::optional<schedule::WinogradPlan> chosen;
  if (!c.winograd()) row.why = "off (--no-winograd)";
  else if (s.SH != 1 || s.SW != 1) row.why = "strided";
  else if (s.DH != 1 || s.DW != 1) row.why = "dilated";
  else if (s.G != 1) row.why = "grouped";
  else if (kernels::conv_direct_fits(s.C, 3, 3)) row.why = "small input depth (direct path)";
  else if (!kernels::all_finite_f32(w, w_numel)) row.why = "non-finite weights";
  else {
    const kernels::GemmConfig& gc = kernels::gemm_config(kernels::active_isa());
    const int64_t l2 = c.tiling().l2_bytes > 0 ? c.tiling().l2_bytes : kFusedFallbackL2Bytes;
    schedule::WinogradPlan p = schedule::plan_winograd({s.N, s.H, s.W, s.C, s.OC, s.OH, s.OW}, {gc.mr, gc.nr}, l2,
                                                       c.threads());
    row.why = p.why;
    row.winograd = p.use;
    if (p.use) row.m = p.m, chosen = p;
  }
  c.add_winograd_plan(std::move(row));
  return chosen;
}

Step build_conv(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const auto [w, b] = conv_constants(c, n, 1, 2);
  const Conv2dShape s = conv2d_shape_of(n, x.shape, y.shape, w->shape);
  // A fused residual (locus.residual): input 3, NHWC like the output; the activation comes after it.
  const float* res = nullptr;
  if (n.i("locus.residual", 0)) {
    const Val& r = c.val(n.input(3));
    LOCUS_CHECK(r.shape == y.shape, "native backend: Conv '", n.name, "': residual shape does not match the output");
    res = r.ptr;
  }
  // The activation (Relu, Clip, HardSigmoid, HardSwish, Sigmoid) runs in the kernels' epilogues, after
  // the residual (epilogue.h)
  const Activation kact = activation_of(n);
  if (auto plan = winograd_choice(c, n, s, w->data<float>(), w->numel())) {
    auto wg = std::make_shared<WinogradConv>(pack_winograd(s.N, s.H, s.W, s.C, s.OC, s.PT, s.PL, s.OH, s.OW,
                                                           w->data<float>(), b ? b->data<float>() : nullptr, kact,
                                                           *plan, c.threads()));
    // An input holding an infinity or NaN runs on the im2col path (all_finite_f32, winograd.h).
    auto fallback = std::make_shared<PackedConv2d>(pack_conv2d(s, w->data<float>(), b ? b->data<float>() : nullptr,
                                                               res ? Activation{} : kact, 0, c.tiling().order,
                                                               c.threads()));
    c.need_workspace(std::max(winograd_scratch_floats(*wg), conv2d_scratch_floats(*fallback)));
    c.set_implementation(cat("conv2d_nhwc winograd F(", plan->m, "x", plan->m, ",3x3)", res ? " + residual" : "", " (",
                             plan->why, ")"));
    return [ws = c.workspace(), wg, fallback, in = x.ptr, res, out = y.ptr, kact, numel = x.numel()] {
      if (all_finite_f32(in, numel)) winograd_conv_nhwc(*wg, in, res, out, ws->data());
      else if (res) conv2d_nhwc(*fallback, in, out, ws->data(), res, kact);
      else conv2d_nhwc(*fallback, in, out, ws->data());
    };
  }
  auto packed = std::make_shared<PackedConv2d>(pack_conv2d(s, w->data<float>(), b ? b->data<float>() : nullptr,
                                                           res ? Activation{} : kact, c.tiling().buffer_entries,
                                                           c.tiling().order, c.threads()));
  if (s.KH == 1 && s.KW == 1) {
    PointwisePlanRow r;
    r.node = n.name;
    r.M = s.N * s.OH * s.OW;
    r.K = s.C / s.G;
    r.N = s.OC / s.G;
    r.stride_h = s.SH;
    r.stride_w = s.SW;
    r.groups = s.G;
    if (packed->scan) r.plan = packed->scan->plan;
    else if (!c.tiling().enabled()) r.why_not = "off";
    else if (s.G > 1) r.why_not = "grouped";
    else if (s.PT || s.PL || s.PB || s.PR) r.why_not = "padded";
    else r.why_not = "no-fit";  // the planner found no tile for the buffer
    c.add_pointwise_plan(std::move(r));
  }
  c.need_workspace(conv2d_scratch_floats(*packed));
  const float* in = x.ptr;
  float* out = y.ptr;
  std::string impl;
  switch (packed->path) {
    case ConvPath::Pointwise: impl = packed->scan ? "conv2d_nhwc pointwise, cache-tiled (pointwise_scan_f32)" : "conv2d_nhwc pointwise (gemm_f32)"; break;
    case ConvPath::Depthwise: impl = cat("conv2d_nhwc depthwise (", dwconv_microkernel_name(active_isa()), ")"); break;
    case ConvPath::Direct: impl = "conv2d_nhwc direct (small input depth)"; break;
    case ConvPath::General: impl = packed->scan ? "conv2d_nhwc strided 1x1, cache-tiled (pointwise_scan_f32)" : "conv2d_nhwc im2col + gemm_f32"; break;
  }
  if (res) impl += res == out ? " + residual (in place)" : " + residual";
  c.set_implementation(std::move(impl));
  if (res)
    return [ws = c.workspace(), packed, in, out, res, kact] { conv2d_nhwc(*packed, in, out, ws->data(), res, kact); };
  return [ws = c.workspace(), packed, in, out] { conv2d_nhwc(*packed, in, out, ws->data()); };
}

// Input i of a fused node as constant floats (nullptr when absent; Unsupported when not constant).
const float* fused_constant(NativeContext& c, const Node& n, size_t i) {
  if (n.input(i).empty()) return nullptr;
  const Tensor* t = c.graph().constant(n.input(i));
  if (!t) throw Unsupported(cat("native backend: ", n.op, " '", n.name, "' input ", i, " is not constant"));
  return t->data<float>();
}

// The geometry of a fused block node (FusedInvertedResidual, FusedSEBlock): input, E, OC and the
// (first) depthwise stage's kernel, strides and pads, from its constant depthwise weights (input 3).
InvertedResidualShape fused_geometry(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const Tensor* wd = n.input(3).empty() ? nullptr : c.graph().constant(n.input(3));
  if (!wd) throw Unsupported(cat("native backend: ", n.op, " '", n.name, "' without constant depthwise weights"));
  auto st = n.ints("dw_strides", {1, 1}), pads = n.ints("dw_pads", {0, 0, 0, 0});
  InvertedResidualShape s;
  s.N = x.shape[0], s.C = x.shape[1], s.H = x.shape[2], s.W = x.shape[3];
  s.E = wd->shape[0], s.OC = y.shape[1];
  s.KH = wd->shape[2], s.KW = wd->shape[3], s.SH = st[0], s.SW = st[1];
  s.PT = pads[0], s.PL = pads[1], s.PB = pads[2], s.PR = pads[3];
  s.expand = !n.input(1).empty();
  s.residual = n.i("residual", 0) != 0;
  return s;
}

Step build_fused_block(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  auto weight = [&](size_t i) { return fused_constant(c, n, i); };
  const Tensor* wd = c.graph().constant(n.input(3));
  InvertedResidualShape s = fused_geometry(c, n);
  s.project = !n.input(5).empty();
  const Tensor* wd2 = n.input(7).empty() ? nullptr : c.graph().constant(n.input(7));
  if (!n.input(7).empty() && !wd2)
    throw Unsupported(cat("native backend: FusedInvertedResidual '", n.name, "' input 7 is not constant"));
  if (wd2) {
    auto st2 = n.ints("dw2_strides", {1, 1}), pads2 = n.ints("dw2_pads", {0, 0, 0, 0});
    s.dw2 = true;
    s.KH2 = wd2->shape[2], s.KW2 = wd2->shape[3], s.SH2 = st2[0], s.SW2 = st2[1];
    s.PT2 = pads2[0], s.PL2 = pads2[1], s.PB2 = pads2[2], s.PR2 = pads2[3];
  }
  LOCUS_CHECK(s.OH() == y.shape[2] && s.OW() == y.shape[3], "native backend: FusedInvertedResidual '", n.name,
              "': output shape does not match the depthwise geometry");
  InvertedResidualWeights w;
  w.expand = weight(1), w.expand_bias = weight(2), w.expand_act = stage_activation(n, "expand");
  w.dw = wd->data<float>(), w.dw_bias = weight(4), w.dw_act = stage_activation(n, "dw");
  w.project = weight(5), w.project_bias = weight(6), w.project_act = stage_activation(n, "project");
  if (wd2) w.dw2 = wd2->data<float>(), w.dw2_bias = weight(8), w.dw2_act = stage_activation(n, "dw2");
  const int64_t S = c.tiling().enabled() ? c.tiling().buffer_entries : l2_buffer_entries(kFusedFallbackL2Bytes);
  // Threads split the walk over the batch's bands, or the chunks when there are too few bands.
  auto packed = std::make_shared<PackedInvertedResidual>(pack_inverted_residual(s, w, S, c.threads()));
  c.add_fused_plan({n.name, packed->plan});
  // where the thread split kept a plan it meant to change, say why (--remarks, implementations())
  if (!packed->plan.note.empty()) c.set_implementation(cat("inverted_residual_nhwc; ", packed->plan.note));
  c.need_workspace(inverted_residual_scratch_floats(*packed));
  return [ws = c.workspace(), packed, in = x.ptr, out = y.ptr] { inverted_residual_nhwc(*packed, in, out, ws->data()); };
}

// Stage activation of a FusedSEBlock (the extended set, graph/ops.h).
StageActivation se_stage_activation(const Node& n, const std::string& stage) {
  const std::string a = n.s(stage + "_activation", "none");
  StageActivation r;
  if (a == "hardswish_ops") r.hardswish_ops = true;
  else if (a == "hardswish") r.act = {ActKind::HardSwish};
  else if (a == "sigmoid") r.act = {ActKind::Sigmoid};
  else if (a == "hardsigmoid")
    r.act = {ActKind::HardSigmoid, n.f(stage + "_activation_alpha", 0.2f), n.f(stage + "_activation_beta", 0.5f)};
  else r.act = stage_activation(n, stage);
  return r;
}

Step build_se_block(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  auto weight = [&](size_t i) { return fused_constant(c, n, i); };
  for (size_t k : {3, 5, 7, 9})
    if (!weight(k)) throw Unsupported(cat("native backend: FusedSEBlock '", n.name, "' without input ", k));
  SeBlockShape se;
  se.block = fused_geometry(c, n);
  const InvertedResidualShape& s = se.block;
  se.S = c.graph().constant(n.input(7))->shape[0];
  LOCUS_CHECK(s.OH() == y.shape[2] && s.OW() == y.shape[3], "native backend: FusedSEBlock '", n.name,
              "': output shape does not match the depthwise geometry");
  SeBlockWeights w;
  w.expand = weight(1), w.expand_bias = weight(2), w.expand_act = se_stage_activation(n, "expand");
  w.dw = weight(3), w.dw_bias = weight(4), w.dw_act = se_stage_activation(n, "dw");
  w.project = weight(5), w.project_bias = weight(6), w.project_act = se_stage_activation(n, "project");
  w.squeeze = weight(7), w.squeeze_bias = weight(8), w.squeeze_act = se_stage_activation(n, "squeeze");
  w.excite = weight(9), w.excite_bias = weight(10), w.excite_act = se_stage_activation(n, "excite");
  const int64_t S = c.tiling().enabled() ? c.tiling().buffer_entries : l2_buffer_entries(kFusedFallbackL2Bytes);
  auto packed = std::make_shared<PackedSeBlock>(pack_se_block(se, w, S, c.threads()));
  c.add_fused_plan({n.name, packed->plan.block, packed->plan});
  c.set_implementation(cat("se_block_nhwc (", schedule::se_strategy_name(packed->plan.strategy), ")",
                           packed->note.empty() ? "" : "; " + packed->note));
  c.need_workspace(se_block_scratch_floats(*packed));
  return [ws = c.workspace(), packed, in = x.ptr, out = y.ptr] { se_block_nhwc(*packed, in, out, ws->data()); };
}

}  // namespace

ConvConstants conv_constants(NativeContext& c, const Node& n, size_t wk, size_t bk) {
  const Tensor* w = c.graph().constant(n.input(wk));
  if (!w) throw Unsupported(cat("native backend: ", n.op, " '", n.name, "' with non-constant weights"));
  const Tensor* b = n.input(bk).empty() ? nullptr : c.graph().constant(n.input(bk));
  if (!n.input(bk).empty() && !b) throw Unsupported(cat("native backend: ", n.op, " '", n.name, "' with non-constant bias"));
  return {w, b};
}

kernels::Conv2dShape conv2d_shape_of(const Node& n, const Shape& x, const Shape& y, const Shape& w) {
  auto st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}), dil = n.ints("dilations", {1, 1});
  kernels::Conv2dShape s;
  s.N = x[0], s.C = x[1], s.H = x[2], s.W = x[3];
  s.OC = y[1], s.OH = y[2], s.OW = y[3];
  s.KH = w[2], s.KW = w[3];
  s.SH = st[0], s.SW = st[1];
  s.PT = pads[0], s.PL = pads[1], s.PB = pads[2], s.PR = pads[3];
  s.DH = dil[0], s.DW = dil[1];
  s.G = n.i("group", 1);
  return s;
}

void register_conv_ops(NativeOpRegistry& r) {
  r.add({"Conv", "conv2d_nhwc", build_conv});
  r.add({"locus.FusedInvertedResidual", "inverted_residual_nhwc", build_fused_block});
  r.add({"locus.FusedSEBlock", "se_block_nhwc", build_se_block});
}

}  // namespace locus::native
