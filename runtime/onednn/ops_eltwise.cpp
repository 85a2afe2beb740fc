// The oneDNN backend's per-element and per-channel ops: Relu, Clip, HardSigmoid (eltwise_linear then
// eltwise_clip), HardSwish and Sigmoid (eltwise_logistic) (eltwise_forward),
// BatchNormalization (batch_normalization_forward, inference with global statistics) and Softmax
// (softmax_forward).
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

void build_eltwise(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  alg a = alg::eltwise_relu;
  float lo = 0.f, hi = 0.f;
  if (n.op == "Clip") {
    a = alg::eltwise_clip;
    lo = -std::numeric_limits<float>::infinity();
    hi = std::numeric_limits<float>::infinity();
    for (size_t k : {size_t(1), size_t(2)}) {
      if (n.input(k).empty()) continue;
      const Tensor* t = ctx.graph().constant(n.input(k));
      if (!t) throw Unsupported(cat("onednn backend: Clip '", n.name, "' with non-constant bounds"));
      (k == 1 ? lo : hi) = float(t->get(0));
    }
  }
  const dn::primitive_attr attr = scratch_attr();
  if (n.op == "HardSigmoid") {  // max(0, min(1, alpha x + beta)): eltwise_linear, then eltwise_clip in place
    // (two primitives: oneDNN 2.6's eltwise with a clip post-op gave 0 for 1.1 on a 3-element tensor)
    dn::eltwise_forward::primitive_desc lin(
        dn::eltwise_forward::desc(kInference, alg::eltwise_linear, x.desc, n.f("alpha", 0.2f), n.f("beta", 0.5f)), attr,
        ctx.engine());
    Val y = ctx.new_value(lin.dst_desc(), ctx.out_shape(n));
    ctx.add_step(n.name, n.op, dn::eltwise_forward(lin), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
    dn::eltwise_forward::primitive_desc clip(
        dn::eltwise_forward::desc(kInference, alg::eltwise_clip, y.desc, 0.f, 1.f), attr, ctx.engine());
    ctx.add_step(n.name, n.op, dn::eltwise_forward(clip), {{DNNL_ARG_SRC, y}, {DNNL_ARG_DST, y}});
    ctx.set_val(n.outputs[0], y);
    return;
  }
  if (n.op == "HardSwish") {
    a = alg::eltwise_hardswish;
  } else if (n.op == "Sigmoid") {
    a = alg::eltwise_logistic;
  }
  dn::eltwise_forward::primitive_desc pd(dn::eltwise_forward::desc(kInference, a, x.desc, lo, hi), attr, ctx.engine());
  Val y = ctx.new_value(pd.dst_desc(), ctx.out_shape(n));
  ctx.add_step(n.name, n.op, dn::eltwise_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

void build_batchnorm(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Graph& g = ctx.graph();
  const Tensor *scale = g.constant(n.input(1)), *beta = g.constant(n.input(2)), *mean = g.constant(n.input(3)),
               *var = g.constant(n.input(4));
  if (!scale || !beta || !mean || !var)
    throw Unsupported(cat("onednn backend: BatchNormalization '", n.name, "' with non-constant parameters"));
  if (x.shape.size() < 2) throw Unsupported(cat("onednn backend: BatchNormalization '", n.name, "' of rank < 2"));
  auto flags = dn::normalization_flags::use_global_stats | dn::normalization_flags::use_scale |
               dn::normalization_flags::use_shift;
  dn::batch_normalization_forward::primitive_desc pd(
      dn::batch_normalization_forward::desc(kInference, x.desc, n.f("epsilon", 1e-5f), flags), scratch_attr(),
      ctx.engine());
  md c_md({x.shape[1]}, dt::f32, tag::x);
  auto param = [&](const Tensor* t) { return Val{-1, c_md, ctx.constant_memory(*t, c_md, c_md), {}}; };
  Val y = ctx.new_value(pd.dst_desc(), ctx.out_shape(n));
  ctx.add_step(n.name, n.op, dn::batch_normalization_forward(pd),
               {{DNNL_ARG_SRC, x}, {DNNL_ARG_MEAN, param(mean)}, {DNNL_ARG_VARIANCE, param(var)},
                {DNNL_ARG_SCALE, param(scale)}, {DNNL_ARG_SHIFT, param(beta)}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

void build_softmax(OnednnContext& ctx, const Node& n) {
  Val x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  int64_t rank = int64_t(x.shape.size());
  int64_t axis = n.i("axis", rank - 1);
  bool legacy = n.i("legacy", 0) != 0;
  if (rank == 0) throw Unsupported(cat("onednn backend: Softmax '", n.name, "' of a scalar"));
  if (legacy && axis != rank - 1) {
    // coerce to 2-D at axis, softmax the rows
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? outer : inner) *= x.shape[size_t(d)];
    x = ctx.view(x, {outer, inner}, n.name);
    axis = 1;
  }
  dn::softmax_forward::primitive_desc pd(dn::softmax_forward::desc(kInference, x.desc, int(axis)), scratch_attr(),
                                         ctx.engine());
  Val y = ctx.new_value(pd.dst_desc(), x.shape);
  ctx.add_step(n.name, n.op, dn::softmax_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y.shape == ys ? y : ctx.view(y, ys, n.name));
}

}  // namespace

void register_eltwise_ops(OnednnOpRegistry& r) {
  r.add({"Relu", "dnnl eltwise_relu", build_eltwise});
  r.add({"Clip", "dnnl eltwise_clip", build_eltwise});
  r.add({"HardSigmoid", "dnnl eltwise_linear, eltwise_clip", build_eltwise});
  r.add({"HardSwish", "dnnl eltwise_hardswish", build_eltwise});
  r.add({"Sigmoid", "dnnl eltwise_logistic", build_eltwise});
  r.add({"BatchNormalization", "dnnl batch_normalization_forward", build_batchnorm});
  r.add({"Softmax", "dnnl softmax_forward", build_softmax});
}

}  // namespace locus::onednn
