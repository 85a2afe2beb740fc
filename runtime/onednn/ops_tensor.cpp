// The oneDNN backend's data movement: Reshape, Flatten, Squeeze, Unsqueeze and Identity are views of
// the same buffer (after a reorder into plain row-major layout if the value is blocked); Concat is
// the concat primitive; Slice (steps of 1) is a reorder from a sub-memory of the plain layout; Cast
// between equal types is an alias; Transpose is a reorder from permuted strides.
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

void build_identity(OnednnContext& ctx, const Node& n) { ctx.set_val(n.outputs[0], ctx.val(n.input(0))); }

void build_view(OnednnContext& ctx, const Node& n) {
  ctx.set_val(n.outputs[0], ctx.view(ctx.val(n.input(0)), ctx.out_shape(n), n.name));
}

void build_concat(OnednnContext& ctx, const Node& n) {
  std::vector<Val> srcs;
  std::vector<md> descs;
  for (auto& in : n.inputs) {
    if (in.empty()) continue;
    Val v = ctx.val(in);
    if (v.shape.empty()) throw Unsupported(cat("onednn backend: Concat '", n.name, "' of scalars"));
    srcs.push_back(v);
    descs.push_back(v.desc);
  }
  dn::concat::primitive_desc pd(int(n.i("axis", 0)), descs, ctx.engine(), scratch_attr());
  Val y = ctx.new_value(pd.dst_desc(), ctx.out_shape(n));
  std::vector<ArgRef> args;
  for (size_t i = 0; i < srcs.size(); ++i) args.push_back({DNNL_ARG_MULTIPLE_SRC + int(i), srcs[i]});
  args.push_back({DNNL_ARG_DST, y});
  ctx.add_step(n.name, n.op, dn::concat(pd), args);
  ctx.set_val(n.outputs[0], y);
}

void build_slice(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  const std::vector<int64_t> first = n.ints("locus.starts"), step = n.ints("locus.steps");
  for (int64_t s : step)
    if (s != 1) throw Unsupported(cat("onednn backend: Slice '", n.name, "' with a step other than 1"));
  if (x.shape.empty() || checked_numel(ys, "Slice output") == 0)
    throw Unsupported(cat("onednn backend: Slice '", n.name, "' of a scalar or to an empty value"));
  const dt type = x.desc.data_type();
  Val p = ctx.to_desc(x, plain_md(x.shape, type), n.name);
  md sub = p.desc.submemory_desc(dims_of(ys), dims(first.begin(), first.end()));
  Val view{p.buf, sub, {}, ys};
  if (p.buf < 0) view.fixed = dn::memory(sub, ctx.engine(), p.fixed.get_data_handle());
  ctx.set_val(n.outputs[0], ctx.to_desc(view, plain_md(ys, type), n.name));
}

// Transpose: the plain value seen through permuted strides, reordered into the plain layout of y.
void build_transpose(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  if (x.shape.empty()) throw Unsupported(cat("onednn backend: Transpose '", n.name, "' of a scalar"));
  const dt type = x.desc.data_type();
  Val p = ctx.to_desc(x, plain_md(x.shape, type), n.name);
  const std::vector<int64_t> perm = n.ints("perm");
  dims plain_st(x.shape.size(), 1), st;
  for (size_t i = x.shape.size(); i-- > 1;) plain_st[i - 1] = plain_st[i] * x.shape[i];
  for (int64_t a : perm) st.push_back(plain_st[size_t(a)]);
  md permuted(dims_of(ys), type, st);
  Val view{p.buf, permuted, {}, ys};
  if (p.buf < 0) view.fixed = dn::memory(permuted, ctx.engine(), p.fixed.get_data_handle());
  ctx.set_val(n.outputs[0], ctx.to_desc(view, plain_md(ys, type), n.name));
}

void build_cast(OnednnContext& ctx, const Node& n) {
  const Graph& g = ctx.graph();
  const DType from = g.info(n.input(0)).dtype, to = g.info(n.outputs[0]).dtype;
  if (from != to)
    throw Unsupported(cat("onednn backend: Cast '", n.name, "' from ", dtype_name(from), " to ", dtype_name(to),
                          " of a runtime value (constant casts are folded)"));
  ctx.set_val(n.outputs[0], ctx.val(n.input(0)));
}

}  // namespace

void register_tensor_ops(OnednnOpRegistry& r) {
  const char* view = "view (a dnnl reorder to plain layout if blocked)";
  r.add({"Identity", "alias (no primitive)", build_identity});
  r.add({"Reshape", view, build_view});
  r.add({"Flatten", view, build_view});
  r.add({"Squeeze", view, build_view});
  r.add({"Unsqueeze", view, build_view});
  r.add({"Concat", "dnnl concat", build_concat});
  r.add({"Slice", "dnnl reorder of a sub-memory", build_slice});
  r.add({"Transpose", "dnnl reorder of permuted strides", build_transpose});
  r.add({"Cast", "alias (same type)", build_cast});
}

}  // namespace locus::onednn
