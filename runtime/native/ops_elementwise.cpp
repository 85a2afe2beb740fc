// The native backend's element-wise ops: Add, Sub, Mul, Div (broadcasting), Relu, Clip, HardSigmoid,
// HardSwish, Sigmoid, BatchNormalization.
#include "runtime/native/op_registry.h"


#include <cmath>
#include <limits>
#include <vector>

#include "kernels/native/activation.h"
#include "kernels/native/elementwise.h"

#include "graph/ops.h"

namespace locus::native {
namespace {

using namespace kernels;

Step build_binary(NativeContext& c, const Node& n, BinaryOp op) {
  const Val& a = c.val(n.input(0));
  const Val& b = c.val(n.input(1));
  const Val& y = c.val(n.outputs[0]);
  if (a.shape == y.shape && b.shape == y.shape && a.layout == y.layout && b.layout == y.layout) {
    int64_t cnt = y.numel();
    return [op, cnt, pa = a.ptr, pb = b.ptr, py = y.ptr] { binary_same_f32(op, cnt, pa, pb, py); };
  }
  StridedF32 sa{a.ptr, broadcast_strides(a, y.shape)}, sb{b.ptr, broadcast_strides(b, y.shape)};
  return [op, sa, sb, shape = y.shape, py = y.ptr, ys = y.strides()] { binary_f32(op, shape, sa, sb, py, ys); };
}

Step build_activation(NativeContext& c, const Node& n) {
  Activation act{ActKind::Relu};
  if (n.op == "HardSigmoid") act = {ActKind::HardSigmoid, n.f("alpha", 0.2f), n.f("beta", 0.5f)};
  if (n.op == "HardSwish") act = {ActKind::HardSwish};
  if (n.op == "Sigmoid") act = {ActKind::Sigmoid};
  if (n.op == "Clip") {
    act.kind = ActKind::Clip;
    act.lo = -std::numeric_limits<float>::infinity();
    act.hi = std::numeric_limits<float>::infinity();
    for (int k : {1, 2}) {
      if (n.input(size_t(k)).empty()) continue;
      const Tensor* t = c.graph().constant(n.input(size_t(k)));
      if (!t) throw Unsupported(cat("native backend: Clip '", n.name, "' with non-constant bounds"));
      (k == 1 ? act.lo : act.hi) = float(t->get(0));
    }
  }
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  int64_t cnt = y.numel();
  return [act, cnt, px = x.ptr, py = y.ptr] { activation_f32(act, px, py, cnt); };
}

Step build_batchnorm(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const Tensor *scale = c.graph().constant(n.input(1)), *beta = c.graph().constant(n.input(2)),
               *mean = c.graph().constant(n.input(3)), *var = c.graph().constant(n.input(4));
  if (!scale || !beta || !mean || !var)
    throw Unsupported(cat("native backend: BatchNormalization '", n.name, "' with non-constant parameters"));
  int64_t C = x.shape[1];
  float* sc = c.scratch(C);
  float* sh = c.scratch(C);
  double eps = n.f("epsilon", 1e-5f);
  for (int64_t c = 0; c < C; ++c) {
    double s = scale->get(c) / std::sqrt(var->get(c) + eps);
    sc[c] = float(s);
    sh[c] = float(beta->get(c) - mean->get(c) * s);
  }
  if (x.layout == Layout::NHWC || x.shape.size() == 2) {
    int64_t rows = x.numel() / C;
    return [rows, C, sc, sh, px = x.ptr, py = y.ptr] { channel_affine_f32(rows, C, px, sc, sh, py); };
  }
  // general rank: y = x * scale[c] + shift[c] with the channel on dimension 1
  std::vector<int64_t> cs(x.shape.size(), 0);
  cs[1] = 1;
  StridedF32 vx{x.ptr, x.strides()}, vs{sc, cs}, vh{sh, cs}, vy{y.ptr, y.strides()};
  return [x, y, vx, vs, vh, vy] {
    binary_f32(BinaryOp::Mul, x.shape, vx, vs, y.ptr, y.strides());
    binary_f32(BinaryOp::Add, x.shape, vy, vh, y.ptr, y.strides());
  };
}

}  // namespace

void register_elementwise_ops(NativeOpRegistry& r) {
  r.add({"Add", "binary_f32", [](NativeContext& c, const Node& n) { return build_binary(c, n, BinaryOp::Add); }});
  r.add({"Sub", "binary_f32", [](NativeContext& c, const Node& n) { return build_binary(c, n, BinaryOp::Sub); }});
  r.add({"Mul", "binary_f32", [](NativeContext& c, const Node& n) { return build_binary(c, n, BinaryOp::Mul); }});
  r.add({"Div", "binary_f32", [](NativeContext& c, const Node& n) { return build_binary(c, n, BinaryOp::Div); }});
  r.add({"Relu", "activation_f32", build_activation});
  r.add({"Clip", "activation_f32", build_activation});
  r.add({"HardSigmoid", "activation_f32", build_activation});
  r.add({"HardSwish", "activation_f32", build_activation});
  r.add({"Sigmoid", "activation_f32", build_activation});
  r.add({"BatchNormalization", "channel_affine_f32", build_batchnorm});
}

}  // namespace locus::native
