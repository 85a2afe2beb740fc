// Shape inference for the elementwise and shape-manipulation ops (float32, int64, int32):
// Add/Sub/Mul/Div, Identity, Flatten, Reshape, Concat, Shape, Gather, Unsqueeze, Squeeze.
// Inputs that determine the output shape (Reshape shape, Unsqueeze/Squeeze axes) must be constant.
#include <algorithm>
#include <set>

#include "graph/ops.h"
#include "graph/shape_inference_internal.h"

namespace locus::shape_inference {

ValueInfo infer_binary(NodeContext& c) {
  // Opsets < 7 broadcasting B at an axis of A: the ONNX importer rewrites it into numpy form (trailing
  // 1s on B) and removes the marker; a node still carrying it would broadcast wrongly.
  if (c.node().has("locus.legacy_axis"))
    c.unsupported("legacy broadcast with axis (opsets < 7) is not supported in this form");
  c.require_inputs(2, 2);
  c.require_shape_dtype(0);
  c.require_shape_dtype(1);
  c.require_same_dtype(0, 1);
  Shape s = broadcast_shapes(c.shape(0), c.shape(1), cat("node '", c.node().name, "' (", c.node().op, ")"));
  return c.output(c.dtype(0), s);
}

ValueInfo infer_identity(NodeContext& c) {
  c.require_inputs(1, 1);
  c.require_data_dtype(0);
  return c.output(c.dtype(0), c.shape(0));
}

ValueInfo infer_flatten(NodeContext& c) {
  c.require_inputs(1, 1);
  c.require_data_dtype(0);
  const Shape& x = c.shape(0);
  int64_t r = int64_t(x.size());
  int64_t axis = c.normalize_axis(c.node().i("axis", 1), r, "axis", /*inclusive=*/true);
  c.node().attrs["axis"] = axis;
  int64_t outer = checked_numel(Shape(x.begin(), x.begin() + axis), "Flatten outer dims");
  int64_t inner = checked_numel(Shape(x.begin() + axis, x.end()), "Flatten inner dims");
  return c.output(c.dtype(0), {outer, inner});
}

ValueInfo infer_reshape(NodeContext& c) {
  c.require_inputs(2, 2);
  c.require_data_dtype(0);
  const Shape& x = c.shape(0);
  std::vector<int64_t> spec = c.constant_ints(1, "shape");
  int64_t allowzero = c.node().i("allowzero", 0);
  Shape out(spec.size());
  int64_t infer_at = -1;
  bool has_zero = false;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == -1) {
      if (infer_at >= 0) c.error("shape ", shape_str(spec), " has more than one -1");
      infer_at = int64_t(i);
      out[i] = 1;
    } else if (d == 0 && !allowzero) {
      if (i >= x.size())
        c.error("shape ", shape_str(spec), " copies dimension ", i, " (0) but the input ",
                shape_str(x), " has rank ", x.size());
      out[i] = x[i];
    } else if (d < 0) {
      c.error("shape ", shape_str(spec), " has invalid dimension ", d);
    } else {
      has_zero |= d == 0;
      out[i] = d;
    }
  }
  if (allowzero && has_zero && infer_at >= 0)
    c.error("shape ", shape_str(spec), " has both 0 and -1 with allowzero=1");
  const int64_t total = checked_numel(x, "Reshape input");
  const int64_t known = checked_numel(out, cat("node '", c.node().name, "' (Reshape): shape ", shape_str(spec)));
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0)
      c.error("cannot reshape ", shape_str(x), " (", total, " elements) to ", shape_str(spec));
    out[size_t(infer_at)] = total / known;
  } else if (known != total) {
    c.error("cannot reshape ", shape_str(x), " (", total, " elements) to ", shape_str(spec), " (",
            known, " elements)");
  }
  return c.output(c.dtype(0), out);
}

ValueInfo infer_concat(NodeContext& c) {
  Node& n = c.node();
  if (n.inputs.empty()) c.error("needs at least one input");
  c.require_inputs(n.inputs.size(), n.inputs.size());
  c.require_data_dtype(0);  // quantized (uint8 / int8) values concatenate like float ones
  if (!n.has("axis")) c.error("attribute axis is required");
  const Shape& first = c.shape(0);
  int64_t r = int64_t(first.size());
  if (r < 1) c.error("inputs must have rank >= 1");
  int64_t axis = c.normalize_axis(n.i("axis", 0), r, "axis");
  n.attrs["axis"] = axis;
  Shape out = first;
  for (size_t k = 1; k < n.inputs.size(); ++k) {
    c.require_same_dtype(0, k);
    const Shape& s = c.shape(k);
    bool ok = int64_t(s.size()) == r;
    for (int64_t i = 0; ok && i < r; ++i) ok = i == axis || s[size_t(i)] == first[size_t(i)];
    if (!ok)
      c.error("input '", c.input_name(k), "' ", shape_str(s), " does not match ", shape_str(first),
              " outside axis ", axis);
    out[size_t(axis)] += s[size_t(axis)];
  }
  return c.output(c.dtype(0), out);
}

ValueInfo infer_shape(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(1, 1);
  int64_t r = c.rank(0);
  auto clamp_axis = [r](int64_t a) { return std::clamp<int64_t>(a < 0 ? a + r : a, 0, r); };
  int64_t start = clamp_axis(n.i("start", 0));
  int64_t end = std::max(start, clamp_axis(n.i("end", r)));
  n.attrs["start"] = start;
  n.attrs["end"] = end;
  return c.output(DType::I64, {end - start});
}

ValueInfo infer_gather(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(2, 2);
  c.require_shape_dtype(0);
  DType it = c.dtype(1);
  if (it != DType::I64 && it != DType::I32)
    c.error("indices '", c.input_name(1), "' must be int64 or int32, got ", dtype_name(it));
  const Shape& x = c.shape(0);
  int64_t r = int64_t(x.size());
  if (r < 1) c.error("data must have rank >= 1");
  int64_t axis = c.normalize_axis(n.i("axis", 0), r, "axis");
  n.attrs["axis"] = axis;
  if (const Tensor* idx = c.constant(1)) {
    int64_t dim = x[size_t(axis)];
    for (int64_t i = 0; i < idx->numel(); ++i) {
      int64_t v = idx->get_int(i);
      if (v < -dim || v >= dim) c.error("index ", v, " is out of range for axis ", axis, " of size ", dim);
    }
  }
  Shape out(x.begin(), x.begin() + axis);
  const Shape& is = c.shape(1);
  out.insert(out.end(), is.begin(), is.end());
  out.insert(out.end(), x.begin() + axis + 1, x.end());
  return c.output(c.dtype(0), out);
}

namespace {

// Axes of Unsqueeze / Squeeze: constant input 1 (canonical form) or, leniently, the opset < 13
// attribute. Returns false if neither is given.
bool axes_of(NodeContext& c, std::vector<int64_t>& axes) {
  if (c.has(1)) {
    axes = c.constant_ints(1, "axes");
    return true;
  }
  if (c.node().has("axes")) {
    axes = c.node().ints("axes");
    return true;
  }
  return false;
}

std::vector<int64_t> normalized_axes(NodeContext& c, const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> r;
  std::set<int64_t> seen;
  for (int64_t a : axes) {
    int64_t v = c.normalize_axis(a, rank, "axis");
    if (!seen.insert(v).second) c.error("axes ", shape_str(axes), " repeat axis ", v);
    r.push_back(v);
  }
  return r;
}

}  // namespace

ValueInfo infer_unsqueeze(NodeContext& c) {
  c.require_inputs(1, 2);
  c.require_data_dtype(0);
  std::vector<int64_t> axes;
  if (!axes_of(c, axes)) c.error("axes input is required");
  const Shape& x = c.shape(0);
  int64_t out_rank = int64_t(x.size() + axes.size());
  std::vector<int64_t> ax = normalized_axes(c, axes, out_rank);
  std::vector<bool> inserted(size_t(out_rank), false);
  for (int64_t a : ax) inserted[size_t(a)] = true;
  Shape out;
  size_t next = 0;
  for (int64_t i = 0; i < out_rank; ++i) out.push_back(inserted[size_t(i)] ? 1 : x[next++]);
  return c.output(c.dtype(0), out);
}

ValueInfo infer_squeeze(NodeContext& c) {
  c.require_inputs(1, 2);
  c.require_data_dtype(0);
  const Shape& x = c.shape(0);
  int64_t r = int64_t(x.size());
  std::vector<bool> remove(x.size(), false);
  std::vector<int64_t> axes;
  if (axes_of(c, axes) && !axes.empty()) {  // empty axes: squeeze all, as onnxruntime
    for (int64_t a : normalized_axes(c, axes, r)) {
      if (x[size_t(a)] != 1) c.error("cannot squeeze axis ", a, " of size ", x[size_t(a)], " in ", shape_str(x));
      remove[size_t(a)] = true;
    }
  } else {
    for (size_t i = 0; i < x.size(); ++i) remove[i] = x[i] == 1;
  }
  Shape out;
  for (size_t i = 0; i < x.size(); ++i)
    if (!remove[i]) out.push_back(x[i]);
  return c.output(c.dtype(0), out);
}

}  // namespace locus::shape_inference
