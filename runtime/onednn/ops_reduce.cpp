// The oneDNN backend's Sqrt (eltwise_sqrt), Pow with a scalar constant exponent (eltwise_pow; other
// exponents are Unsupported) and ReduceMean (reduction_mean on the plain layout).
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

void build_unary(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  alg a = alg::eltwise_sqrt;
  float alpha = 0.f, beta = 0.f;
  if (n.op == "Pow") {
    const Tensor* e = ctx.graph().constant(n.input(1));
    if (!e || e->numel() != 1)
      throw Unsupported(cat("onednn backend: Pow '", n.name, "' with an exponent that is not one constant"));
    a = alg::eltwise_pow;  // alpha * x^beta
    alpha = 1.f;
    beta = float(e->get(0));
  }
  dn::eltwise_forward::primitive_desc pd(dn::eltwise_forward::desc(kInference, a, x.desc, alpha, beta), scratch_attr(),
                                         ctx.engine());
  Val y = ctx.new_value(pd.dst_desc(), ctx.out_shape(n));
  ctx.add_step(n.name, n.op, dn::eltwise_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

void build_reduce_mean(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  if (x.shape.empty()) throw Unsupported(cat("onednn backend: ReduceMean '", n.name, "' of a scalar"));
  Shape kept = x.shape;
  for (int64_t a : n.ints("axes")) kept[size_t(a)] = 1;
  Val src = ctx.to_desc(x, plain_md(x.shape), n.name);
  if (kept == x.shape) {  // nothing reduced
    ctx.set_val(n.outputs[0], ctx.view(src, ctx.out_shape(n), n.name));
    return;
  }
  dn::reduction::primitive_desc pd(dn::reduction::desc(alg::reduction_mean, src.desc, plain_md(kept), 0.f, 0.f),
                                   scratch_attr(), ctx.engine());
  Val y = ctx.new_value(pd.dst_desc(), kept);
  ctx.add_step(n.name, n.op, dn::reduction(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], kept == ctx.out_shape(n) ? y : ctx.view(y, ctx.out_shape(n), n.name));
}

}  // namespace

void register_reduce_ops(OnednnOpRegistry& r) {
  r.add({"Sqrt", "dnnl eltwise_sqrt", build_unary});
  r.add({"Pow", "dnnl eltwise_pow", build_unary});
  r.add({"ReduceMean", "dnnl reduction_mean", build_reduce_mean});
}

}  // namespace locus::onednn
