// The oneDNN backend's arithmetic: Add, Sub, Mul, Div as the binary primitive (the second operand
// may broadcast; for Add and Mul either may).
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

void build_binary(OnednnContext& ctx, const Node& n, alg a, bool commutative) {
  Val x = ctx.val(n.input(0)), y = ctx.val(n.input(1));
  const Shape& ys = ctx.out_shape(n);
  if (x.shape != ys) {
    if (commutative && y.shape == ys)
      std::swap(x, y);
    else
      throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' broadcasts its first operand"));
  }
  if (y.shape != ys)
    y = ctx.view(y, left_pad(y.shape, ys.size()), n.name);
  else
    y = ctx.to_desc(y, x.desc, n.name);
  dn::binary::primitive_desc pd(dn::binary::desc(a, x.desc, y.desc, x.desc), scratch_attr(), ctx.engine());
  Val out = ctx.new_value(pd.dst_desc(), ys);
  ctx.add_step(n.name, n.op, dn::binary(pd), {{DNNL_ARG_SRC_0, x}, {DNNL_ARG_SRC_1, y}, {DNNL_ARG_DST, out}});
  ctx.set_val(n.outputs[0], out);
}

Builder binary_of(alg a, bool commutative) {
  return [a, commutative](OnednnContext& ctx, const Node& n) { build_binary(ctx, n, a, commutative); };
}

}  // namespace

void register_binary_ops(OnednnOpRegistry& r) {
  r.add({"Add", "dnnl binary_add", binary_of(alg::binary_add, true)});
  r.add({"Mul", "dnnl binary_mul", binary_of(alg::binary_mul, true)});
  r.add({"Sub", "dnnl binary_sub", binary_of(alg::binary_sub, false)});
  r.add({"Div", "dnnl binary_div", binary_of(alg::binary_div, false)});
}

}  // namespace locus::onednn
