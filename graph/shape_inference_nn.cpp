// Shape inference for the compute ops (float32 only): Conv, MaxPool, AveragePool,
// GlobalAveragePool, BatchNormalization, Relu, Clip, Softmax, Gemm, MatMul.
// Window ops leave their attributes in explicit canonical form: kernel_shape, strides, pads[4]
// (top, left, bottom, right), dilations (Conv, MaxPool), auto_pad resolved and erased.
#include <algorithm>

#include "graph/ops.h"
#include "graph/shape_inference_internal.h"

namespace locus::shape_inference {

// An ints attribute of exactly `size` entries, each in [lo, kMaxTensorElements].
std::vector<int64_t> window_attr(NodeContext& c, const char* name, std::vector<int64_t> def, size_t size,
                                 int64_t lo) {
  std::vector<int64_t> v = c.node().ints(name, std::move(def));
  if (v.size() != size) c.error("attribute ", name, " must have ", size, " values, got ", v.size());
  for (int64_t x : v)
    if (x < lo || x > kMaxTensorElements) c.error("attribute ", name, " has invalid value ", x);
  return v;
}

namespace {

// 2-D spatial only: rank 3 / 5 (1-D / 3-D) are valid ONNX but not implemented.
void require_2d_spatial(NodeContext& c, size_t k) {
  int64_t r = c.rank(k);
  if (r == 4) return;
  if (r == 3 || r == 5)
    c.unsupported("only 2-D spatial input is supported; input '", c.input_name(k), "' has shape ",
                  shape_str(c.shape(k)), " (", r - 2, "-D)");
  c.error("input '", c.input_name(k), "' must have rank 4 [N,C,H,W], got shape ", shape_str(c.shape(k)));
}

struct WindowOptions {
  bool dilations = true;  // the op has a dilations attribute
  bool ceil_mode = false;
  bool is_pool = false;   // pads must be smaller than the window
};

// Resolves strides, dilations and pads (incl. auto_pad) of a 2-D window op, writes them back as
// explicit attributes and returns the output spatial size {OH, OW}.
std::vector<int64_t> resolve_window(NodeContext& c, const Shape& x, const std::vector<int64_t>& kernel,
                                    const WindowOptions& o) {
  Node& n = c.node();
  auto strides = window_attr(c, "strides", {1, 1}, 2, 1);
  auto dilations = o.dilations ? window_attr(c, "dilations", {1, 1}, 2, 1) : std::vector<int64_t>{1, 1};
  std::vector<int64_t> pads;
  std::string auto_pad = n.s("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET" || auto_pad.empty()) {
    pads = window_attr(c, "pads", {0, 0, 0, 0}, 4, 0);
  } else if (auto_pad == "VALID") {
    pads = {0, 0, 0, 0};
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    pads.assign(4, 0);
    for (size_t i = 0; i < 2; ++i) {
      int64_t in = x[2 + i], window = (kernel[i] - 1) * dilations[i] + 1;
      int64_t out = (in + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + window - in);
      int64_t small = total / 2, large = total - small;
      pads[i] = auto_pad == "SAME_UPPER" ? small : large;      // begin
      pads[i + 2] = auto_pad == "SAME_UPPER" ? large : small;  // end
    }
  } else {
    c.error("unknown auto_pad '", auto_pad, "'");
  }

  std::vector<int64_t> out(2);
  for (size_t i = 0; i < 2; ++i) {
    int64_t window = (kernel[i] - 1) * dilations[i] + 1;
    if (o.is_pool && (pads[i] >= window || pads[i + 2] >= window))
      c.error("pads ", shape_str(pads), " must be smaller than the kernel window ", window);
    out[i] = pooled_size(x[2 + i], kernel[i], strides[i], pads[i], pads[i + 2], dilations[i], o.ceil_mode);
    if (out[i] <= 0)
      c.error("kernel window ", window, " does not fit input size ", x[2 + i], " with pads ",
              pads[i], "+", pads[i + 2], " on spatial axis ", i);
  }
  n.attrs.erase("auto_pad");
  n.attrs["kernel_shape"] = kernel;
  n.attrs["strides"] = strides;
  n.attrs["pads"] = pads;
  if (o.dilations) n.attrs["dilations"] = dilations;
  return out;
}

}  // namespace

std::vector<int64_t> conv_window(NodeContext& c, const Shape& x, const std::vector<int64_t>& kernel) {
  return resolve_window(c, x, kernel, WindowOptions{true, false, false});
}

ValueInfo infer_conv(NodeContext& c) {
  Node& n = c.node();
  const bool residual = n.i("locus.residual", 0) != 0;
  c.require_inputs(2, residual ? 4 : 3);
  if (residual && !c.has(3)) c.error("input 3 (the residual, locus.residual = 1) is required but missing");
  c.require_f32(0);
  c.require_f32(1);
  require_2d_spatial(c, 0);
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(1);
  if (w.size() != 4) c.error("weight '", c.input_name(1), "' must have rank 4, got shape ", shape_str(w));
  int64_t group = n.i("group", 1);
  if (group < 1) c.error("group must be positive, got ", group);
  const int64_t C = x[1], OC = w[0];
  if (C % group != 0 || w[1] * group != C)
    c.error("input channels ", C, " do not match weight ", shape_str(w), " with group ", group);
  if (OC % group != 0) c.error("output channels ", OC, " are not divisible by group ", group);
  if (c.has(2)) {
    c.require_f32(2);
    if (c.shape(2) != Shape{OC})
      c.error("bias '", c.input_name(2), "' must have shape [", OC, "], got ", shape_str(c.shape(2)));
  }
  std::vector<int64_t> kernel = {w[2], w[3]};
  if (n.has("kernel_shape") && n.ints("kernel_shape") != kernel)
    c.error("kernel_shape ", shape_str(n.ints("kernel_shape")), " does not match weight ", shape_str(w));
  if (w[2] < 1 || w[3] < 1) c.error("weight ", shape_str(w), " has an empty kernel");
  if (n.has("locus.activation")) {
    std::string act = n.s("locus.activation", "");
    if (act != "relu" && act != "clip" && act != "hardsigmoid" && act != "hardswish" && act != "sigmoid")
      c.unsupported("fused activation '", act, "' is not supported");
  }
  auto out = resolve_window(c, x, kernel, WindowOptions{true, false, false});
  n.attrs["group"] = group;
  const Shape y = {x[0], OC, out[0], out[1]};
  if (residual) {
    c.require_f32(3);
    if (c.shape(3) != y)
      c.error("residual '", c.input_name(3), "' must have the output's shape ", shape_str(y), ", got ",
              shape_str(c.shape(3)));
  }
  return c.output(DType::F32, y);
}

ValueInfo infer_pool(NodeContext& c) {
  Node& n = c.node();
  const bool is_max = n.op == "MaxPool";
  c.require_inputs(1, 1);
  c.require_f32(0);
  require_2d_spatial(c, 0);
  const Shape& x = c.shape(0);
  if (!n.has("kernel_shape")) c.error("attribute kernel_shape is required");
  auto kernel = window_attr(c, "kernel_shape", {}, 2, 1);
  if (!is_max && n.has("dilations")) {
    auto d = n.ints("dilations");
    if (std::any_of(d.begin(), d.end(), [](int64_t v) { return v != 1; }))
      c.unsupported("dilated AveragePool is not supported");
    n.attrs.erase("dilations");
  }
  int64_t ceil_mode = n.i("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) c.error("ceil_mode must be 0 or 1, got ", ceil_mode);
  auto out = resolve_window(c, x, kernel, WindowOptions{is_max, ceil_mode == 1, true});
  n.attrs["ceil_mode"] = ceil_mode;
  if (!is_max) {
    int64_t cip = n.i("count_include_pad", 0);
    if (cip != 0 && cip != 1) c.error("count_include_pad must be 0 or 1, got ", cip);
    n.attrs["count_include_pad"] = cip;
  }
  return c.output(DType::F32, {x[0], x[1], out[0], out[1]});
}

ValueInfo infer_global_average_pool(NodeContext& c) {
  c.require_inputs(1, 1);
  c.require_f32(0);
  require_2d_spatial(c, 0);
  const Shape& x = c.shape(0);
  return c.output(DType::F32, {x[0], x[1], 1, 1});
}

ValueInfo infer_batch_norm(NodeContext& c) {
  c.require_inputs(5, 5);
  if (c.node().i("training_mode", 0) != 0) c.unsupported("training_mode=1 is not supported");
  // opset < 9 spatial=0 (per-element statistics) is left in place by the importer
  if (c.node().i("spatial", 1) == 0) c.unsupported("spatial=0 is not supported");
  for (size_t k = 0; k < 5; ++k) c.require_f32(k);
  const Shape& x = c.shape(0);
  if (x.size() < 2) c.error("input '", c.input_name(0), "' must have rank >= 2, got ", shape_str(x));
  for (size_t k = 1; k < 5; ++k)
    if (c.shape(k) != Shape{x[1]})
      c.error("parameter '", c.input_name(k), "' must have shape [", x[1], "] (channels of ",
              shape_str(x), "), got ", shape_str(c.shape(k)));
  return c.output(DType::F32, x);
}

ValueInfo infer_activation(NodeContext& c) {
  bool clip = c.node().op == "Clip";
  c.require_inputs(1, clip ? 3 : 1);
  c.require_f32(0);
  for (size_t k = 1; k < 3; ++k) {
    if (!c.has(k)) continue;
    c.require_f32(k);
    if (checked_numel(c.shape(k), c.input_name(k)) != 1)
      c.error(k == 1 ? "min" : "max", " '", c.input_name(k), "' must be a scalar, got shape ",
              shape_str(c.shape(k)));
  }
  return c.output(DType::F32, c.shape(0));
}

ValueInfo infer_softmax(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(1, 1);
  c.require_f32(0);
  int64_t r = c.rank(0);
  if (r < 1) c.error("input must have rank >= 1");
  int64_t legacy = n.i("legacy", 0);
  if (legacy != 0 && legacy != 1) c.error("legacy must be 0 or 1, got ", legacy);
  int64_t axis = c.normalize_axis(n.i("axis", legacy ? 1 : -1), r, "axis");
  n.attrs["axis"] = axis;
  n.attrs["legacy"] = legacy;
  return c.output(DType::F32, c.shape(0));
}

ValueInfo infer_gemm(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(2, 3);
  c.require_f32(0);
  c.require_f32(1);
  const Shape& a = c.shape(0);
  const Shape& b = c.shape(1);
  if (a.size() != 2 || b.size() != 2)
    c.error("A and B must be 2-D, got ", shape_str(a), " and ", shape_str(b));
  bool ta = n.i("transA", 0) != 0, tb = n.i("transB", 0) != 0;
  int64_t M = ta ? a[1] : a[0], K = ta ? a[0] : a[1];
  int64_t Kb = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  if (K != Kb)
    c.error("inner dimensions do not match: A ", shape_str(a), (ta ? " (transposed)" : ""), ", B ",
            shape_str(b), (tb ? " (transposed)" : ""));
  if (c.has(2)) {
    c.require_f32(2);
    const Shape& cs = c.shape(2);
    bool ok = cs.size() <= 2;
    // unidirectional broadcast of C to [M, N]
    for (size_t i = 0; ok && i < cs.size(); ++i) {
      int64_t target = (i + 2 - cs.size()) == 0 ? M : N;
      ok = cs[i] == 1 || cs[i] == target;
    }
    if (!ok) c.error("C ", shape_str(cs), " cannot be broadcast to [", M, ",", N, "]");
  }
  return c.output(DType::F32, {M, N});
}

ValueInfo infer_matmul(NodeContext& c) {
  c.require_inputs(2, 2);
  c.require_f32(0);
  c.require_f32(1);
  Shape a = c.shape(0), b = c.shape(1);
  if (a.empty() || b.empty()) c.error("inputs must have rank >= 1, got ", shape_str(a), " and ", shape_str(b));
  bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);  // [K] -> [1, K]
  if (b_vec) b.push_back(1);           // [K] -> [K, 1]
  int64_t M = a[a.size() - 2], K = a.back(), Kb = b[b.size() - 2], N = b.back();
  if (K != Kb)
    c.error("inner dimensions do not match: ", shape_str(c.shape(0)), " x ", shape_str(c.shape(1)));
  Shape batch = broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2),
                                 cat("node '", c.node().name, "' (MatMul): batch dimensions"));
  Shape out = batch;
  if (!a_vec) out.push_back(M);
  if (!b_vec) out.push_back(N);
  return c.output(DType::F32, out);
}

}  // namespace locus::shape_inference
