// The oneDNN backend's upsampling ops of mobile CNNs: Resize as resampling_forward (nearest or
// linear along H and W) when oneDNN's coordinate mapping picks the same input pixels and weights
// as the node's (e.g. nearest asymmetric/floor at integer factors, linear half_pixel with sizes);
// otherwise Unsupported naming the node. ConvTranspose as deconvolution_forward (groups, strides,
// dilations, pads, output padding through the right padding; bias and the fused activation as
// post-ops).
#include <cmath>

#include "graph/ops.h"
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

// Whether oneDNN's resampling along one axis (in -> out) matches the node's taps.
bool onednn_matches(const Node& n, int64_t in, int64_t out, float scale, bool linear) {
  const ResizeTaps t = resize_taps(n, in, out, scale);
  for (int64_t o = 0; o < out; ++o) {
    // oneDNN (ref_resampling): x = (o + 0.5) * in / out - 0.5; nearest takes round-half-up of x
    const float x = (float(o) + 0.5f) * float(in) / float(out) - 0.5f;
    if (!linear) {
      const int64_t i = std::clamp<int64_t>(int64_t(std::floor(x + 0.5f)), 0, in - 1);
      if (t.i0[size_t(o)] != i) return false;
      continue;
    }
    const float xc = std::max(0.f, std::min(x, float(in - 1)));
    const int64_t i0 = std::min<int64_t>(int64_t(xc), in - 1), i1 = std::min<int64_t>(i0 + 1, in - 1);
    const float w = i0 == i1 ? 0.f : xc - float(i0);
    // the same pair of pixels (or one pixel) with the same weight, to float rounding
    const bool same_pixels = t.i0[size_t(o)] == i0 && (t.i1[size_t(o)] == i1 || t.w[size_t(o)] == 0.f || w == 0.f);
    if (!same_pixels || std::fabs(t.w[size_t(o)] - w) > 1e-5f) return false;
  }
  return true;
}

void build_resize(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  if (x.shape.size() != 4)
    throw Unsupported(cat("onednn backend: Resize '", n.name, "' of a rank-", x.shape.size(), " value"));
  if (x.shape[0] != ys[0] || x.shape[1] != ys[1])
    throw Unsupported(cat("onednn backend: Resize '", n.name, "' along N or C (resampling_forward resizes H and W)"));
  const bool linear = n.s("mode", "nearest") == "linear";
  const std::vector<float> scales = n.floats("locus.scales");
  for (size_t d = 2; d < 4; ++d)
    if (!onednn_matches(n, x.shape[d], ys[d], scales[d], linear))
      throw Unsupported(cat("onednn backend: Resize '", n.name, "' (", n.s("mode", ""), ", ",
                            n.s("coordinate_transformation_mode", ""), linear ? "" : ", " + n.s("nearest_mode", ""),
                            ") maps output pixels to other input pixels than resampling_forward does"));
  md dst(dims_of(ys), dt::f32, tag::any);
  dn::resampling_forward::primitive_desc pd(
      dn::resampling_forward::desc(kInference, linear ? alg::resampling_linear : alg::resampling_nearest, x.desc, dst),
      scratch_attr(), ctx.engine());
  Val src = ctx.to_desc(x, pd.src_desc(), n.name);
  Val y = ctx.new_value(pd.dst_desc(), ys);
  ctx.add_step(n.name, n.op, dn::resampling_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

void build_conv_transpose(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  const Graph& g = ctx.graph();
  const Tensor* w = g.constant(n.input(1));
  if (!w) throw Unsupported(cat("onednn backend: ConvTranspose '", n.name, "' with non-constant weights"));
  const Tensor* b = n.input(2).empty() ? nullptr : g.constant(n.input(2));
  if (!n.input(2).empty() && !b) throw Unsupported(cat("onednn backend: ConvTranspose '", n.name, "' with non-constant bias"));
  auto st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}), dil = n.ints("dilations", {1, 1});
  const int64_t G = n.i("group", 1), C = x.shape[1], OC = ys[1], KH = w->shape[2], KW = w->shape[3];
  // oneDNN: OH = (IH - 1) * S - pad_l - pad_r + (KH - 1) * D + 1; the output padding is a smaller pad_r
  const int64_t pr_h = (x.shape[2] - 1) * st[0] + (KH - 1) * dil[0] + 1 - pads[0] - ys[2];
  const int64_t pr_w = (x.shape[3] - 1) * st[1] + (KW - 1) * dil[1] + 1 - pads[1] - ys[3];
  if (pr_h < 0 || pr_w < 0)
    throw Unsupported(cat("onednn backend: ConvTranspose '", n.name, "' whose output padding exceeds its end pads"));
  // ONNX weights [C, OC/G, KH, KW] are oneDNN's (g)iohw
  dims wei = G > 1 ? dims{G, OC / G, C / G, KH, KW} : dims{OC, C, KH, KW};
  md user_w(wei, dt::f32, G > 1 ? tag::giohw : tag::iohw);
  md bias_md({OC}, dt::f32, tag::x);
  md any_src(dims_of(x.shape), dt::f32, tag::any), any_w(wei, dt::f32, tag::any), any_dst(dims_of(ys), dt::f32, tag::any);
  dn::post_ops po;
  append_activation(po, n);
  dn::primitive_attr attr = scratch_attr();
  attr.set_post_ops(po);
  dn::deconvolution_forward::primitive_desc pd(
      dn::deconvolution_forward::desc(kInference, alg::deconvolution_direct, any_src, any_w, bias_md, any_dst,
                                      {st[0], st[1]}, {dil[0] - 1, dil[1] - 1}, {pads[0], pads[1]}, {pr_h, pr_w}),
      attr, ctx.engine());
  Val src = ctx.to_desc(x, pd.src_desc(), n.name);
  dn::memory wm = ctx.constant_memory(*w, user_w, pd.weights_desc());
  Tensor zeros(DType::F32, {OC});
  dn::memory bm = ctx.constant_memory(b ? *b : zeros, bias_md, bias_md);
  Val y = ctx.new_value(pd.dst_desc(), ys);
  ctx.add_step(n.name, n.op, dn::deconvolution_forward(pd),
               {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), wm, {}}},
                {DNNL_ARG_BIAS, Val{-1, bias_md, bm, {}}}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

}  // namespace

void register_resample_ops(OnednnOpRegistry& r) {
  r.add({"Resize", "dnnl resampling_forward", build_resize});
  r.add({"ConvTranspose", "dnnl deconvolution_forward", build_conv_transpose});
}

}  // namespace locus::onednn
