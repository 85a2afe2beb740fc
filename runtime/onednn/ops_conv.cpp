// The oneDNN backend's convolutions: Conv as convolution_forward (direct; bias and the fused
// Relu/Clip as eltwise post-ops; src/weights/dst in the formats oneDNN picks, weights reordered once
// at compile time), and onednn-dwfused's 1x1 -> depthwise 3x3 pairs as one convolution_forward with
// the depthwise post-op (post_ops::append_dw).
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

struct ConvGeometry {
  dims src, wei, bias, dst, strides, dil, pad_l, pad_r;
  int64_t groups = 1;
  const Tensor* w = nullptr;
  const Tensor* b = nullptr;
};

ConvGeometry conv_geometry(const Node& n, const Graph& g, const Shape& xs, const Shape& ys) {
  ConvGeometry c;
  c.w = g.constant(n.input(1));
  if (!c.w) throw Unsupported(cat("onednn backend: Conv '", n.name, "' with non-constant weights"));
  if (!n.input(2).empty()) {
    c.b = g.constant(n.input(2));
    if (!c.b) throw Unsupported(cat("onednn backend: Conv '", n.name, "' with non-constant bias"));
  }
  if (xs.size() != 4) throw Unsupported(cat("onednn backend: Conv '", n.name, "' is not 2-D"));
  auto st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}), dil = n.ints("dilations", {1, 1});
  const Shape& ws = c.w->shape;
  c.groups = n.i("group", 1);
  c.src = dims_of(xs);
  c.dst = dims_of(ys);
  if (c.groups > 1)
    c.wei = {c.groups, ws[0] / c.groups, ws[1], ws[2], ws[3]};
  else
    c.wei = {ws[0], ws[1], ws[2], ws[3]};
  c.bias = {ws[0]};
  c.strides = {st[0], st[1]};
  c.dil = {dil[0] - 1, dil[1] - 1};
  c.pad_l = {pads[0], pads[1]};
  c.pad_r = {pad_right(xs[2], ys[2], ws[2], st[0], dil[0], pads[0], pads[2]),
             pad_right(xs[3], ys[3], ws[3], st[1], dil[1], pads[1], pads[3])};
  return c;
}

dn::convolution_forward::desc conv_desc(const ConvGeometry& c) {
  md any_src(c.src, dt::f32, tag::any), any_w(c.wei, dt::f32, tag::any), any_dst(c.dst, dt::f32, tag::any);
  md bias(c.bias, dt::f32, tag::x);
  return dn::convolution_forward::desc(kInference, alg::convolution_direct, any_src, any_w, bias, any_dst, c.strides,
                                       c.dil, c.pad_l, c.pad_r);
}

md weights_user_md(const ConvGeometry& c) { return md(c.wei, dt::f32, c.groups > 1 ? tag::goihw : tag::oihw); }

void build_conv(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  ConvGeometry c = conv_geometry(n, ctx.graph(), x.shape, ctx.out_shape(n));
  dn::post_ops po;
  append_activation(po, n);
  dn::primitive_attr attr = scratch_attr();
  attr.set_post_ops(po);
  dn::convolution_forward::primitive_desc pd(conv_desc(c), attr, ctx.engine());
  Val src = ctx.to_desc(x, pd.src_desc(), n.name);
  dn::memory w = ctx.constant_memory(*c.w, weights_user_md(c), pd.weights_desc());
  md bias_md(c.bias, dt::f32, tag::x);
  Tensor zeros(DType::F32, {c.bias[0]});
  dn::memory b = ctx.constant_memory(c.b ? *c.b : zeros, bias_md, bias_md);
  Val y = ctx.new_value(pd.dst_desc(), ctx.out_shape(n));
  ctx.add_step(n.name, "Conv", dn::convolution_forward(pd),
               {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), w, {}}},
                {DNNL_ARG_BIAS, Val{-1, bias_md, b, {}}}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

bool is_pointwise(const Node& n, const Graph& g) {
  const Tensor* w = g.constant(n.input(1));
  return n.op == "Conv" && w && w->shape.size() == 4 && w->shape[2] == 1 && w->shape[3] == 1 &&
         n.i("group", 1) == 1 && n.ints("strides", {1, 1}) == std::vector<int64_t>{1, 1} &&
         n.ints("pads", {0, 0, 0, 0}) == std::vector<int64_t>{0, 0, 0, 0} &&
         n.ints("dilations", {1, 1}) == std::vector<int64_t>{1, 1} &&
         (n.input(2).empty() || g.constant(n.input(2)));
}

// Depthwise 3x3, channel multiplier 1, pads 1, stride 1 or 2: what append_dw can express.
bool is_dw3x3(const Node& n, const Graph& g) {
  const Tensor* w = g.constant(n.input(1));
  if (n.op != "Conv" || !w || w->shape.size() != 4) return false;
  int64_t C = g.info(n.input(0)).shape[1];
  auto st = n.ints("strides", {1, 1});
  return w->shape[0] == C && w->shape[1] == 1 && w->shape[2] == 3 && w->shape[3] == 3 && n.i("group", 1) == C &&
         st[0] == st[1] && (st[0] == 1 || st[0] == 2) &&
         n.ints("pads", {0, 0, 0, 0}) == std::vector<int64_t>{1, 1, 1, 1} &&
         n.ints("dilations", {1, 1}) == std::vector<int64_t>{1, 1} && (n.input(2).empty() || g.constant(n.input(2)));
}

}  // namespace

void append_activation(dn::post_ops& po, const Node& n) {
  std::string a = n.s("locus.activation", "");
  if (a == "relu") {
    po.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f);
  } else if (a == "clip") {
    po.append_eltwise(1.f, alg::eltwise_clip, n.f("locus.activation_min", -std::numeric_limits<float>::infinity()),
                      n.f("locus.activation_max", std::numeric_limits<float>::infinity()));
  } else if (a == "hardsigmoid") {  // max(0, min(1, alpha x + beta)): linear, then clip
    po.append_eltwise(1.f, alg::eltwise_linear, n.f("locus.activation_alpha", 0.2f), n.f("locus.activation_beta", 0.5f));
    po.append_eltwise(1.f, alg::eltwise_bounded_relu, 1.f, 0.f);  // min(max(x, 0), 1)
  } else if (a == "hardswish") {
    po.append_eltwise(1.f, alg::eltwise_hardswish, 0.f, 0.f);
  } else if (a == "sigmoid") {
    po.append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f);
  } else {
    LOCUS_CHECK(a.empty(), "node '", n.name, "': unknown fused activation '", a, "'");
  }
}

bool dw_fusable_pair(const Graph& g, const Node& pw, const Node& dw) {
  return is_pointwise(pw, g) && dw.input(0) == pw.outputs[0] && is_dw3x3(dw, g) &&
         g.info(pw.outputs[0]).shape[0] == g.info(dw.outputs[0]).shape[0];
}

std::string build_fused_conv(OnednnContext& ctx, const Node& pw, const Node& dw, std::string& why) {
  const Val& x = ctx.val(pw.input(0));
  const Shape& mid = ctx.shape(pw.outputs[0]);
  const Shape& ys = ctx.out_shape(dw);
  ConvGeometry c = conv_geometry(pw, ctx.graph(), x.shape, mid);
  ConvGeometry d = conv_geometry(dw, ctx.graph(), mid, ys);
  int64_t stride = d.strides[0];
  dn::post_ops po;
  append_activation(po, pw);
  po.append_dw(dt::f32, dt::f32, dt::f32, 3, stride, 1, 0, {});
  append_activation(po, dw);
  dn::primitive_attr attr = scratch_attr();
  attr.set_post_ops(po);
  dn::convolution_forward::primitive_desc pd;
  try {
    pd = dn::convolution_forward::primitive_desc(conv_desc(c), attr, ctx.engine());
  } catch (const dn::error& e) {
    why = e.what();
    return "";
  }
  md dst = pd.dst_desc();
  if (dst.dims() != dims_of(ys)) {
    why = "the fused primitive's output dims differ from the depthwise conv's";
    return "";
  }
  md dw_w = pd.query_md(dn::query::exec_arg_md, DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS);
  md dw_b = pd.query_md(dn::query::exec_arg_md, DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS);
  if (dw_w.dims() != d.wei) {
    why = "oneDNN did not report the depthwise weights' layout";
    return "";
  }
  Val src = ctx.to_desc(x, pd.src_desc(), pw.name);
  dn::memory w = ctx.constant_memory(*c.w, weights_user_md(c), pd.weights_desc());
  md bias_md(c.bias, dt::f32, tag::x);
  Tensor zeros_pw(DType::F32, {c.bias[0]}), zeros_dw(DType::F32, {d.bias[0]});
  dn::memory b = ctx.constant_memory(c.b ? *c.b : zeros_pw, bias_md, bias_md);
  dn::memory ww = ctx.constant_memory(*d.w, weights_user_md(d), dw_w);
  md dw_bias_user(d.bias, dt::f32, tag::x);
  if (dw_b.get_size() == 0) dw_b = dw_bias_user;
  dn::memory wb = ctx.constant_memory(d.b ? *d.b : zeros_dw, dw_bias_user, dw_b);
  Val y = ctx.new_value(dst, ys);
  ctx.add_step(pw.name + "+" + dw.name, "Conv+DwConv", dn::convolution_forward(pd),
               {{DNNL_ARG_SRC, src},
                {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), w, {}}},
                {DNNL_ARG_BIAS, Val{-1, bias_md, b, {}}},
                {DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_WEIGHTS, Val{-1, dw_w, ww, {}}},
                {DNNL_ARG_ATTR_POST_OP_DW | DNNL_ARG_BIAS, Val{-1, dw_b, wb, {}}},
                {DNNL_ARG_DST, y}});
  ctx.set_val(dw.outputs[0], y);
  // jit_1x1 fuses the depthwise conv into its kernel only when the 1x1 output is larger than twice
  // the L2 of all threads; otherwise oneDNN picks ref_fused_convolution, which runs its 1x1 and dw
  // primitives one after the other through a scratchpad buffer
  return pd.impl_info_str();
}

void register_conv_ops(OnednnOpRegistry& r) {
  r.add({"Conv", "dnnl convolution_forward", build_conv});
}

}  // namespace locus::onednn
