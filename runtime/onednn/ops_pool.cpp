// The oneDNN backend's pooling: MaxPool, AveragePool and GlobalAveragePool as pooling_v2_forward
// (global: one window over H x W).
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

void build_pool(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  if (x.shape.size() != 4) throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' is not 2-D"));
  dims k, st, dil, pl, pr;
  alg a;
  if (n.op == "GlobalAveragePool") {
    k = {x.shape[2], x.shape[3]};
    st = {1, 1};
    dil = {0, 0};
    pl = pr = {0, 0};
    a = alg::pooling_avg_exclude_padding;
  } else {
    auto ks = n.ints("kernel_shape"), s = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}),
         d = n.ints("dilations", {1, 1});
    k = {ks[0], ks[1]};
    st = {s[0], s[1]};
    dil = {d[0] - 1, d[1] - 1};
    pl = {pads[0], pads[1]};
    pr = {pad_right(x.shape[2], ys[2], ks[0], s[0], d[0], pads[0], pads[2]),
          pad_right(x.shape[3], ys[3], ks[1], s[1], d[1], pads[1], pads[3])};
    bool include = n.i("count_include_pad", 0) != 0;
    if (n.op == "MaxPool") {
      a = alg::pooling_max;
    } else {
      a = include ? alg::pooling_avg_include_padding : alg::pooling_avg_exclude_padding;
      // ceil_mode windows hanging past the explicit padding are not counted by ONNX; oneDNN would
      // count them with include-padding
      if (include && (pr[0] > pads[2] || pr[1] > pads[3]))
        throw Unsupported(cat("onednn backend: AveragePool '", n.name, "' with count_include_pad and ceil_mode overhang"));
    }
  }
  md dst(dims_of(ys), dt::f32, tag::any);
  dn::pooling_v2_forward::primitive_desc pd(dn::pooling_v2_forward::desc(kInference, a, x.desc, dst, st, k, dil, pl, pr),
                                            scratch_attr(), ctx.engine());
  Val y = ctx.new_value(pd.dst_desc(), ys);
  ctx.add_step(n.name, n.op, dn::pooling_v2_forward(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], y);
}

}  // namespace

void register_pool_ops(OnednnOpRegistry& r) {
  r.add({"MaxPool", "dnnl pooling_v2_forward (pooling_max)", build_pool});
  r.add({"AveragePool", "dnnl pooling_v2_forward (pooling_avg)", build_pool});
  r.add({"GlobalAveragePool", "dnnl pooling_v2_forward (pooling_avg, one window)", build_pool});
}

}  // namespace locus::onednn
