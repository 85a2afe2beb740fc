// The oneDNN backend's data movement: Reshape, Flatten, Squeeze, Unsqueeze and Identity are views of
// the same buffer (after a reorder into plain row-major layout if the value is blocked); Concat is
// the concat primitive.
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

}  // namespace

void register_tensor_ops(OnednnOpRegistry& r) {
  const char* view = "view (a dnnl reorder to plain layout if blocked)";
  r.add({"Identity", "alias (no primitive)", build_identity});
  r.add({"Reshape", view, build_view});
  r.add({"Flatten", view, build_view});
  r.add({"Squeeze", view, build_view});
  r.add({"Unsqueeze", view, build_view});
  r.add({"Concat", "dnnl concat", build_concat});
}

}  // namespace locus::onednn
