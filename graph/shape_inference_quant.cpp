// Shape inference and validation for the quantized ops (graph/ops.h documents their forms):
// QuantizeLinear, DequantizeLinear (per tensor and per axis), QLinearConv, QLinearMatMul and the
// com.microsoft QLinearAdd and QLinearGlobalAveragePool. A malformed quantized model gets a one-line
// error naming the node and the problem: a missing scale, a zero point whose type differs from its
// tensor's, a scale that is not positive and finite, a per-channel length mismatch, a bias that is
// not int32, mixed activation types. Scales and zero points must be constants (they are in every
// model a quantizer writes); the kernels read them at session creation.
#include <cmath>

#include "graph/ops.h"
#include "graph/shape_inference_internal.h"

namespace locus::shape_inference {
namespace {

bool is_q8(DType t) { return t == DType::U8 || t == DType::I8; }

// Input k, a quantized tensor: uint8 or int8.
DType require_q8(NodeContext& c, size_t k, const char* role) {
  const DType t = c.dtype(k);
  if (!is_q8(t))
    c.unsupported(role, " '", c.input_name(k), "' has dtype ", dtype_name(t), "; only uint8 and int8 are supported");
  return t;
}

// Checks the scale (input `sk`) and zero point (input `zk`, optional unless zp_required) of a tensor of
// dtype `qtype`. `channels` > 0 allows a 1-D scale of that length (per channel / per axis), else
// the scale must hold one value. Returns the number of scale values.
int64_t check_qparams(NodeContext& c, size_t sk, size_t zk, DType qtype, const char* role, int64_t channels,
                      bool zp_required = false) {
  if (!c.has(sk)) c.error(role, " scale (input ", sk, ") is missing");
  const Tensor* s = c.constant(sk);
  if (!s) c.unsupported(role, " scale '", c.input_name(sk), "' must be a constant");
  if (s->dtype != DType::F32)
    c.error(role, " scale '", c.input_name(sk), "' must be float32, got ", dtype_name(s->dtype));
  const int64_t n = s->numel();
  if (s->shape.size() > 1 || n < 1)
    c.error(role, " scale '", c.input_name(sk), "' must be a scalar or 1-D, got shape ", shape_str(s->shape));
  if (n != 1 && (channels <= 0 || n != channels)) {
    if (channels > 0)
      c.error(role, " scale '", c.input_name(sk), "' has ", n, " values, expected 1 or ", channels, " (one per channel)");
    c.error(role, " scale '", c.input_name(sk), "' has ", n, " values, expected 1 (per tensor)");
  }
  for (int64_t i = 0; i < n; ++i) {
    const float v = s->data<float>()[i];
    if (!(v > 0) || !std::isfinite(v))
      c.error(role, " scale '", c.input_name(sk), "' must be positive and finite, got ", v,
              n > 1 ? cat(" at index ", i) : std::string());
  }
  if (!c.has(zk)) {
    if (zp_required) c.error(role, " zero point (input ", zk, ") is missing");
    return n;
  }
  const Tensor* z = c.constant(zk);
  if (!z) c.unsupported(role, " zero point '", c.input_name(zk), "' must be a constant");
  if (z->dtype != qtype)
    c.error(role, " zero point '", c.input_name(zk), "' has type ", dtype_name(z->dtype), " but the ", role,
            " tensor is ", dtype_name(qtype), " (they must match)");
  if (z->shape.size() > 1 || z->numel() != n)
    c.error(role, " zero point '", c.input_name(zk), "' has shape ", shape_str(z->shape), " but its scale has ", n,
            " value", n == 1 ? "" : "s", " (they must match)");
  return n;
}

// The per-axis form of Quantize/DequantizeLinear (a scale of more than one value): the axis
// (normalised, written back) and its length; 0 for the per-tensor form, whose axis is ignored.
int64_t qdq_axis_channels(NodeContext& c, const Shape& x) {
  Node& n = c.node();
  const Tensor* s = c.constant(1);
  const int64_t r = int64_t(x.size());
  if (!s || s->numel() <= 1 || r == 0) return 0;
  const int64_t axis = c.normalize_axis(n.i("axis", 1), r, "axis");
  n.attrs["axis"] = axis;
  return x[size_t(axis)];
}

}  // namespace

ValueInfo infer_quantize_linear(NodeContext& c) {
  c.require_inputs(1, 3);
  c.require_f32(0);
  const Shape& x = c.shape(0);
  const DType out = c.has(2) ? c.dtype(2) : DType::U8;
  if (!is_q8(out))
    c.unsupported("zero point '", c.input_name(2), "' has dtype ", dtype_name(out), "; only uint8 and int8 are supported");
  const int64_t channels = qdq_axis_channels(c, x);
  check_qparams(c, 1, 2, out, "y", channels);
  return c.output(out, x);
}

ValueInfo infer_dequantize_linear(NodeContext& c) {
  c.require_inputs(1, 3);
  const DType t = c.dtype(0);
  if (!is_q8(t) && t != DType::I32)
    c.unsupported("input '", c.input_name(0), "' has dtype ", dtype_name(t), "; only uint8, int8 and int32 are supported");
  const Shape& x = c.shape(0);
  const int64_t channels = qdq_axis_channels(c, x);
  check_qparams(c, 1, 2, t, "x", channels);
  if (t == DType::I32 && c.has(2)) {
    const Tensor* z = c.constant(2);
    for (int64_t i = 0; i < z->numel(); ++i)
      if (z->get_int(i) != 0) c.error("an int32 input needs zero points of 0, got ", z->get_int(i));
  }
  return c.output(DType::F32, x);
}

// The two quantized operands of QLinearConv / QLinearMatMul and the output: types and shapes.
struct QLinearOperands {
  DType a, b, y;
  const Shape& a_shape;
  const Shape& b_shape;
};

// The input count of a QLinear op: `lo` to `hi` inputs (exactly `lo` when they are equal; more than
// `hi` is require_inputs' error), listed in `names` for the message, the first one present.
void require_qlinear_inputs(NodeContext& c, size_t lo, size_t hi, const char* names) {
  const size_t got = c.node().num_inputs();
  if (lo == hi ? got != lo : got < lo)
    c.error("needs ", lo, lo == hi ? std::string() : cat(" or ", hi), " inputs (", names, "), got ", got);
  c.require_inputs(1, hi);
}

// The inputs of QLinearConv / QLinearMatMul (8 to `hi`, listed in `names`), their quantized operands
// (inputs 0 and 3, named `a` and `b` in the messages) and the output's type, from its zero point
// (input 7), which must be input 0's.
QLinearOperands require_qlinear_operands(NodeContext& c, size_t hi, const char* names, const char* a, const char* b) {
  require_qlinear_inputs(c, 8, hi, names);
  const DType at = require_q8(c, 0, a);
  if (!c.has(3)) c.error(b, " (input 3) is missing");
  const DType bt = require_q8(c, 3, b);
  if (!c.has(7)) c.error("y zero point (input 7) is missing");
  const DType yt = c.dtype(7);
  if (!is_q8(yt)) c.error("y zero point '", c.input_name(7), "' must be uint8 or int8, got ", dtype_name(yt));
  if (yt != at) c.error("mixed types: ", a, " is ", dtype_name(at), " but y is ", dtype_name(yt), " (they must match)");
  return {at, bt, yt, c.shape(0), c.shape(3)};
}

ValueInfo infer_qlinear_conv(NodeContext& c) {
  Node& n = c.node();
  const auto& [xt, wt, yt, x, w] = require_qlinear_operands(
      c, 9, "x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point[, B]", "x", "w");
  if (x.size() != 4) c.error("x '", c.input_name(0), "' must have rank 4 [N,C,H,W], got shape ", shape_str(x));
  if (w.size() != 4) c.error("w '", c.input_name(3), "' must have rank 4, got shape ", shape_str(w));
  const int64_t group = n.i("group", 1);
  if (group < 1) c.error("group must be positive, got ", group);
  const int64_t C = x[1], OC = w[0];
  if (C % group != 0 || w[1] * group != C)
    c.error("input channels ", C, " do not match weight ", shape_str(w), " with group ", group);
  if (OC % group != 0) c.error("output channels ", OC, " are not divisible by group ", group);
  check_qparams(c, 1, 2, xt, "x", 0, true);
  check_qparams(c, 4, 5, wt, "w", OC, true);
  check_qparams(c, 6, 7, yt, "y", 0, true);
  if (c.has(8)) {
    if (c.dtype(8) != DType::I32) c.error("bias '", c.input_name(8), "' must be int32, got ", dtype_name(c.dtype(8)));
    if (c.shape(8) != Shape{OC})
      c.error("bias '", c.input_name(8), "' must have shape [", OC, "], got ", shape_str(c.shape(8)));
  }
  std::vector<int64_t> kernel = {w[2], w[3]};
  if (n.has("kernel_shape") && n.ints("kernel_shape") != kernel)
    c.error("kernel_shape ", shape_str(n.ints("kernel_shape")), " does not match weight ", shape_str(w));
  if (w[2] < 1 || w[3] < 1) c.error("weight ", shape_str(w), " has an empty kernel");
  auto out = conv_window(c, x, kernel);
  n.attrs["group"] = group;
  return c.output(yt, {x[0], OC, out[0], out[1]});
}

ValueInfo infer_qlinear_matmul(NodeContext& c) {
  Node& n = c.node();
  const auto& [at, bt, yt, a, b] = require_qlinear_operands(
      c, 8, "a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point", "a", "b");
  if (a.size() < 2) c.unsupported("a '", c.input_name(0), "' must have rank >= 2, got shape ", shape_str(a));
  if (b.size() < 2) c.unsupported("b '", c.input_name(3), "' must have rank >= 2, got shape ", shape_str(b));
  const int64_t K = a.back(), Kb = b[b.size() - 2], N = b.back();
  if (K != Kb) c.error("inner dimensions differ: a ", shape_str(a), " and b ", shape_str(b));
  check_qparams(c, 1, 2, at, "a", 0, true);
  check_qparams(c, 4, 5, bt, "b", N, true);
  check_qparams(c, 6, 7, yt, "y", 0, true);
  // numpy matmul: the batch dimensions broadcast
  Shape y = broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2),
                             cat("node '", n.name, "' (", n.op, ") batch dimensions"));
  y.push_back(a[a.size() - 2]);
  y.push_back(N);
  return c.output(yt, y);
}

ValueInfo infer_qlinear_add(NodeContext& c) {
  Node& n = c.node();
  require_qlinear_inputs(c, 7, 8, "A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale[, C_zero_point]");
  const DType at = require_q8(c, 0, "A");
  if (!c.has(3)) c.error("B (input 3) is missing");
  const DType bt = require_q8(c, 3, "B");
  if (bt != at) c.error("mixed types: A is ", dtype_name(at), " but B is ", dtype_name(bt), " (they must match)");
  if (c.has(7) && c.dtype(7) != at)
    c.error("mixed types: A is ", dtype_name(at), " but C (its zero point '", c.input_name(7), "') is ",
            dtype_name(c.dtype(7)), " (they must match)");
  check_qparams(c, 1, 2, at, "A", 0);
  check_qparams(c, 4, 5, bt, "B", 0);
  check_qparams(c, 6, 7, at, "C", 0);
  return c.output(at, broadcast_shapes(c.shape(0), c.shape(3), cat("node '", n.name, "' (", n.op, ")")));
}

ValueInfo infer_qlinear_global_average_pool(NodeContext& c) {
  Node& n = c.node();
  require_qlinear_inputs(c, 5, 5, "X, x_scale, x_zero_point, y_scale, y_zero_point");
  const DType xt = require_q8(c, 0, "x");
  if (!c.has(4)) c.error("y zero point (input 4) is missing");
  if (c.dtype(4) != xt)
    c.error("mixed types: x is ", dtype_name(xt), " but y (its zero point '", c.input_name(4), "') is ",
            dtype_name(c.dtype(4)), " (they must match)");
  check_qparams(c, 1, 2, xt, "x", 0, true);
  check_qparams(c, 3, 4, xt, "y", 0, true);
  const int64_t channels_last = n.i("channels_last", 0);
  if (channels_last != 0 && channels_last != 1) c.error("channels_last must be 0 or 1, got ", channels_last);
  n.attrs["channels_last"] = channels_last;
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.error("x '", c.input_name(0), "' must have rank >= 3, got shape ", shape_str(x));
  Shape y(x.size(), 1);
  y[0] = x[0];
  if (channels_last) y.back() = x.back();
  else y[1] = x[1];
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] < 1) c.error("x '", c.input_name(0), "' has an empty dimension: ", shape_str(x));
  return c.output(xt, y);
}

}  // namespace locus::shape_inference
