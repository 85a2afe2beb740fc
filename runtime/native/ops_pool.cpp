// The native backend's pooling: MaxPool, AveragePool, GlobalAveragePool.
#include "runtime/native/op_registry.h"


#include "kernels/native/pool2d_nhwc.h"

#include "graph/ops.h"

namespace locus::native {
namespace {

using namespace kernels;

Step build_pool(NativeContext& c, const Node& n, bool is_max) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  auto k = n.ints("kernel_shape"), st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}),
       dil = n.ints("dilations", {1, 1});
  Pool2dShape s;
  s.N = x.shape[0]; s.C = x.shape[1]; s.H = x.shape[2]; s.W = x.shape[3];
  s.OH = y.shape[2]; s.OW = y.shape[3];
  s.KH = k[0]; s.KW = k[1]; s.SH = st[0]; s.SW = st[1];
  s.PT = pads[0]; s.PL = pads[1]; s.PB = pads[2]; s.PR = pads[3];
  s.DH = dil[0]; s.DW = dil[1];
  s.count_include_pad = n.i("count_include_pad", 0) != 0;
  if (is_max) return [s, px = x.ptr, py = y.ptr] { maxpool2d_nhwc(s, px, py); };
  return [s, px = x.ptr, py = y.ptr] { avgpool2d_nhwc(s, px, py); };
}

Step build_global_avgpool(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  int64_t N = x.shape[0], C = x.shape[1], HW = x.shape[2] * x.shape[3];
  return [N, C, HW, px = x.ptr, py = y.ptr] { global_avgpool_nhwc(N, HW, C, px, py); };
}

}  // namespace

void register_pool_ops(NativeOpRegistry& r) {
  r.add({"MaxPool", "pool2d_nhwc", [](NativeContext& c, const Node& n) { return build_pool(c, n, true); }});
  r.add({"AveragePool", "pool2d_nhwc", [](NativeContext& c, const Node& n) { return build_pool(c, n, false); }});
  r.add({"GlobalAveragePool", "global_avgpool_nhwc", build_global_avgpool});
}

}  // namespace locus::native
