// Shape inference for the ops of mobile CNNs (MobileNetV3, PP-OCR): HardSigmoid, HardSwish, Sigmoid,
// Cast, Slice, Transpose, Resize, ConvTranspose, Sqrt, Pow, ReduceMean; and the helpers their kernels share (resize_taps,
// dtype_from_onnx). Each rule leaves the node in the canonical form of graph/ops.h: every attribute
// explicit, Slice's and Resize's constant operands resolved into locus.* attributes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "graph/ops.h"
#include "graph/shape_inference_internal.h"

namespace locus {

DType dtype_from_onnx(int64_t t) {
  switch (t) {
    case 1: return DType::F32;
    case 2: return DType::U8;
    case 3: return DType::I8;
    case 6: return DType::I32;
    case 7: return DType::I64;
    case 9: return DType::Bool;
    case 11: return DType::F64;
    default: return DType::Undefined;
  }
}

ResizeTaps resize_taps(const Node& n, int64_t in, int64_t out, float scale) {
  const std::string mode = n.s("mode", "nearest");
  const std::string ctm = n.s("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = n.s("nearest_mode", "round_prefer_floor");
  const bool linear = mode == "linear";
  ResizeTaps t;
  t.i0.resize(size_t(out));
  t.i1.resize(size_t(out));
  t.w.assign(size_t(out), 0.f);
  for (int64_t o = 0; o < out; ++o) {
    const float xr = float(o);
    float x;  // the output index's coordinate in the input
    const float length = float(in) * scale;  // the resized length (ONNX: not rounded to the output size)
    if (ctm == "asymmetric") x = xr / scale;
    else if (ctm == "align_corners") x = length == 1.f ? 0.f : xr * float(in - 1) / (length - 1.f);
    else if (ctm == "pytorch_half_pixel") x = length > 1.f ? (xr + 0.5f) / scale - 0.5f : 0.f;
    else if (ctm == "tf_half_pixel_for_nearest") x = (xr + 0.5f) / scale;
    else x = (xr + 0.5f) / scale - 0.5f;  // half_pixel
    if (!linear) {
      int64_t i;
      if (nearest == "floor") i = int64_t(std::floor(x));
      else if (nearest == "ceil") i = int64_t(std::ceil(x));
      else if (nearest == "round_prefer_ceil") i = int64_t(std::round(x));
      else i = x == float(int64_t(std::floor(x))) + 0.5f ? int64_t(std::floor(x)) : int64_t(std::round(x));
      i = std::clamp<int64_t>(i, 0, in - 1);
      t.i0[size_t(o)] = t.i1[size_t(o)] = i;
      continue;
    }
    x = std::max(0.f, std::min(x, float(in - 1)));
    const int64_t i0 = std::min<int64_t>(int64_t(x), in - 1);
    const int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
    t.i0[size_t(o)] = i0;
    t.i1[size_t(o)] = i1;
    t.w[size_t(o)] = i0 == i1 ? 0.f : x - float(i0);
  }
  return t;
}

namespace shape_inference {

ValueInfo infer_unary_f32(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(1, 1);
  c.require_f32(0);
  if (n.op == "HardSigmoid") {
    n.attrs["alpha"] = n.f("alpha", 0.2f);
    n.attrs["beta"] = n.f("beta", 0.5f);
  }
  return c.output(DType::F32, c.shape(0));
}

ValueInfo infer_cast(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(1, 1);
  if (!n.has("to")) c.error("attribute to is required");
  if (std::get_if<std::string>(&n.attrs.at("to")))
    c.unsupported("the opset < 6 form (attribute to as a string) is not supported");
  const int64_t to = n.i("to", 0);
  const DType out = dtype_from_onnx(to);
  if (out == DType::Undefined)
    c.unsupported("cast to ONNX data type ", to, " is not supported (float32, float64, int64, int32, int8, uint8 "
                  "and bool are)");
  if (c.dtype(0) == DType::Undefined) c.error("input '", c.input_name(0), "' has no dtype");
  return c.output(out, c.shape(0));
}

ValueInfo infer_slice(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(3, 5);
  c.require_data_dtype(0);
  const Shape& x = c.shape(0);
  const int64_t r = int64_t(x.size());
  const std::vector<int64_t> starts = c.constant_ints(1, "starts"), ends = c.constant_ints(2, "ends");
  if (starts.size() != ends.size())
    c.error("starts ", shape_str(starts), " and ends ", shape_str(ends), " have different lengths");
  std::vector<int64_t> axes, steps;
  if (c.has(3)) axes = c.constant_ints(3, "axes");
  else for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
  if (c.has(4)) steps = c.constant_ints(4, "steps");
  else steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    c.error("starts, ends, axes and steps must have the same length (", starts.size(), ", ", ends.size(), ", ",
            axes.size(), ", ", steps.size(), ")");
  std::vector<int64_t> first(size_t(r), 0), step(size_t(r), 1);
  Shape out = x;
  std::set<int64_t> seen;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t a = c.normalize_axis(axes[k], r, "axis");
    if (!seen.insert(a).second) c.error("axes ", shape_str(axes), " repeat axis ", a);
    const int64_t dim = x[size_t(a)], st = steps[k];
    if (st == 0) c.error("steps must not be 0");
    // the ONNX rules: negative indices count from the end, then clamp; INT64 extremes are common
    int64_t s = starts[k], e = ends[k];
    if (s < 0) s = s < -dim ? -1 : s + dim;
    if (e < 0) e = e < -dim ? -1 : e + dim;
    int64_t count;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      count = e > s ? (e - s + st - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      const int64_t ns = st == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -st;
      count = s > e ? (s - e + ns - 1) / ns : 0;
    }
    first[size_t(a)] = count > 0 ? s : 0;
    step[size_t(a)] = st;
    out[size_t(a)] = count;
  }
  n.attrs["locus.starts"] = first;
  n.attrs["locus.steps"] = step;
  return c.output(c.dtype(0), out);
}

ValueInfo infer_pow(NodeContext& c) {
  c.require_inputs(2, 2);
  c.require_f32(0);
  const Tensor* y = c.constant(1);
  if (!y) c.unsupported("the exponent must be constant ('", c.input_name(1), "' is computed at run time)");
  if (y->dtype != DType::F32 && y->dtype != DType::I64 && y->dtype != DType::I32)
    c.unsupported("exponent '", c.input_name(1), "' has dtype ", dtype_name(y->dtype), "; float32, int64 and int32 are supported");
  Shape s = broadcast_shapes(c.shape(0), y->shape, cat("node '", c.node().name, "' (Pow)"));
  if (s != c.shape(0)) c.unsupported("an exponent ", shape_str(y->shape), " that broadcasts X ", shape_str(c.shape(0)), " is not supported");
  return c.output(DType::F32, s);
}

ValueInfo infer_reduce_mean(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(1, 2);
  c.require_f32(0);
  const Shape& x = c.shape(0);
  const int64_t r = int64_t(x.size());
  std::vector<int64_t> axes;
  if (c.has(1)) axes = c.constant_ints(1, "axes");  // opset 18
  else axes = n.ints("axes", {});
  const int64_t keepdims = n.i("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) c.error("keepdims must be 0 or 1, got ", keepdims);
  const bool noop = n.i("noop_with_empty_axes", 0) != 0;
  std::vector<bool> reduce(size_t(r), axes.empty() && !noop);
  for (int64_t a : axes) {
    const int64_t v = c.normalize_axis(a, r, "axis");
    if (reduce[size_t(v)]) c.error("axes ", shape_str(axes), " repeat axis ", v);
    reduce[size_t(v)] = true;
  }
  std::vector<int64_t> resolved;
  Shape out;
  for (int64_t d = 0; d < r; ++d) {
    if (reduce[size_t(d)]) {
      resolved.push_back(d);
      if (x[size_t(d)] == 0) c.unsupported("the mean over an empty axis ", d, " is not supported");
      if (keepdims) out.push_back(1);
    } else {
      out.push_back(x[size_t(d)]);
    }
  }
  n.attrs["axes"] = resolved;  // sorted, >= 0; empty: nothing reduced (noop_with_empty_axes)
  n.attrs["keepdims"] = keepdims;
  n.attrs.erase("noop_with_empty_axes");
  return c.output(DType::F32, out);
}

ValueInfo infer_transpose(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(1, 1);
  c.require_data_dtype(0);
  const Shape& x = c.shape(0);
  const int64_t r = int64_t(x.size());
  std::vector<int64_t> perm;
  if (n.has("perm")) {
    perm = n.ints("perm");
  } else {
    for (int64_t d = r; d-- > 0;) perm.push_back(d);  // reverses the axes
  }
  if (int64_t(perm.size()) != r) c.error("perm ", shape_str(perm), " must have ", r, " entries (the input's rank)");
  std::vector<bool> seen(size_t(r), false);
  Shape out;
  for (int64_t& p : perm) {
    p = c.normalize_axis(p, r, "perm entry");
    if (seen[size_t(p)]) c.error("perm ", shape_str(n.ints("perm")), " is not a permutation");
    seen[size_t(p)] = true;
    out.push_back(x[size_t(p)]);
  }
  n.attrs["perm"] = perm;
  return c.output(c.dtype(0), out);
}

ValueInfo infer_resize(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(1, 4);
  c.require_f32(0);
  const Shape& x = c.shape(0);
  const size_t r = x.size();
  if (r < 1) c.error("input must have rank >= 1");
  const std::string mode = n.s("mode", "nearest");
  if (mode == "cubic") c.unsupported("mode cubic is not supported (nearest and linear are)");
  if (mode != "nearest" && mode != "linear") c.error("unknown mode '", mode, "'");
  std::string ctm = n.s("coordinate_transformation_mode", "half_pixel");
  if (ctm == "tf_half_pixel_for_nn") ctm = "tf_half_pixel_for_nearest";  // its name in ONNX 1.5
  if (ctm == "tf_crop_and_resize") c.unsupported("coordinate_transformation_mode tf_crop_and_resize is not supported");
  if (ctm != "half_pixel" && ctm != "pytorch_half_pixel" && ctm != "align_corners" && ctm != "asymmetric" &&
      ctm != "tf_half_pixel_for_nearest")
    c.error("unknown coordinate_transformation_mode '", ctm, "'");
  const std::string nearest = n.s("nearest_mode", "round_prefer_floor");
  if (nearest != "round_prefer_floor" && nearest != "round_prefer_ceil" && nearest != "floor" && nearest != "ceil")
    c.error("unknown nearest_mode '", nearest, "'");
  if (n.i("antialias", 0) != 0) c.unsupported("antialias=1 is not supported");
  if (n.has("axes")) c.unsupported("attribute axes is not supported");
  if (n.s("keep_aspect_ratio_policy", "stretch") != "stretch")
    c.unsupported("keep_aspect_ratio_policy '", n.s("keep_aspect_ratio_policy", ""), "' is not supported");
  // scales (input 2) or sizes (input 3), constant; an empty tensor stands for an absent one
  const Tensor* scales = c.constant(2);
  const Tensor* sizes = c.constant(3);
  if (c.has(2) && !scales) c.unsupported("scales input must be constant ('", c.input_name(2), "' is computed at run time)");
  if (c.has(3) && !sizes) c.unsupported("sizes input must be constant ('", c.input_name(3), "' is computed at run time)");
  if (scales && scales->numel() == 0) scales = nullptr;
  if (sizes && sizes->numel() == 0) sizes = nullptr;
  if (!scales == !sizes) c.error("exactly one of scales and sizes must be given");
  Shape out(r);
  std::vector<float> sc(r);
  if (scales) {
    if (scales->dtype != DType::F32) c.error("scales must be float32, got ", dtype_name(scales->dtype));
    if (size_t(scales->numel()) != r) c.error("scales has ", scales->numel(), " values for an input of rank ", r);
    for (size_t i = 0; i < r; ++i) {
      const float s = scales->data<float>()[i];
      if (!(s > 0.f) || !std::isfinite(s)) c.error("scale ", s, " on axis ", i, " is not a positive number");
      const double o = std::floor(double(float(x[i]) * s));
      if (o > double(kMaxTensorElements)) c.error("scale ", s, " on axis ", i, " gives an absurd size");
      out[i] = int64_t(o);
      sc[i] = s;
    }
  } else {
    if (sizes->dtype != DType::I64) c.error("sizes must be int64, got ", dtype_name(sizes->dtype));
    if (size_t(sizes->numel()) != r) c.error("sizes has ", sizes->numel(), " values for an input of rank ", r);
    for (size_t i = 0; i < r; ++i) {
      out[i] = sizes->get_int(int64_t(i));
      if (out[i] < 0) c.error("size ", out[i], " on axis ", i, " is negative");
      sc[i] = x[i] > 0 ? float(out[i]) / float(x[i]) : 1.f;
    }
  }
  for (size_t i = 0; i < r; ++i)
    if (out[i] > 0 && x[i] == 0) c.error("cannot resize an empty axis ", i, " to ", out[i]);
  n.attrs["mode"] = mode;
  n.attrs["coordinate_transformation_mode"] = ctm;
  n.attrs["nearest_mode"] = nearest;
  n.attrs["locus.scales"] = sc;
  return c.output(DType::F32, out);
}

ValueInfo infer_conv_transpose(NodeContext& c) {
  Node& n = c.node();
  c.require_inputs(2, 3);
  c.require_f32(0);
  c.require_f32(1);
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(1);
  if (x.size() == 3 || x.size() == 5)
    c.unsupported("only 2-D spatial input is supported; input '", c.input_name(0), "' has shape ", shape_str(x));
  if (x.size() != 4) c.error("input '", c.input_name(0), "' must have rank 4 [N,C,H,W], got shape ", shape_str(x));
  if (w.size() != 4) c.error("weight '", c.input_name(1), "' must have rank 4, got shape ", shape_str(w));
  const int64_t group = n.i("group", 1);
  if (group < 1) c.error("group must be positive, got ", group);
  if (w[0] != x[1] || x[1] % group != 0)
    c.error("input channels ", x[1], " do not match weight ", shape_str(w), " with group ", group);
  const int64_t OC = w[1] * group;
  if (c.has(2)) {
    c.require_f32(2);
    if (c.shape(2) != Shape{OC})
      c.error("bias '", c.input_name(2), "' must have shape [", OC, "], got ", shape_str(c.shape(2)));
  }
  const std::vector<int64_t> kernel = {w[2], w[3]};
  if (n.has("kernel_shape") && n.ints("kernel_shape") != kernel)
    c.error("kernel_shape ", shape_str(n.ints("kernel_shape")), " does not match weight ", shape_str(w));
  if (w[2] < 1 || w[3] < 1) c.error("weight ", shape_str(w), " has an empty kernel");
  auto strides = window_attr(c, "strides", {1, 1}, 2, 1);
  auto dilations = window_attr(c, "dilations", {1, 1}, 2, 1);
  auto out_pad = window_attr(c, "output_padding", {0, 0}, 2, 0);
  for (size_t i = 0; i < 2; ++i)
    if (out_pad[i] >= std::max(strides[i], dilations[i]))
      c.error("output_padding ", shape_str(out_pad), " must be smaller than the stride or the dilation");
  const std::string auto_pad = n.s("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && !auto_pad.empty() && auto_pad != "VALID" && auto_pad != "SAME_UPPER" &&
      auto_pad != "SAME_LOWER")
    c.error("unknown auto_pad '", auto_pad, "'");
  std::vector<int64_t> pads(4, 0);
  // the output size without padding along axis i
  auto full = [&](size_t i) { return strides[i] * (x[2 + i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1; };
  std::vector<int64_t> target;  // output spatial size, when given or implied
  if (n.has("output_shape")) {
    target = n.ints("output_shape");
    if (target.size() == 4) target = {target[2], target[3]};
    if (target.size() != 2) c.error("output_shape ", shape_str(n.ints("output_shape")), " must have 2 values");
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    target = {x[2] * strides[0], x[3] * strides[1]};
  }
  if (!target.empty()) {
    for (size_t i = 0; i < 2; ++i) {
      const int64_t total = full(i) - target[i];
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);  // floor(total / 2), as ONNX
      const bool upper = auto_pad == "SAME_UPPER";
      pads[i] = upper ? half : total - half;
      pads[i + 2] = total - pads[i];
      if (pads[i] < 0)
        c.unsupported("output_shape ", shape_str(target), " needs a negative begin padding on spatial axis ", i);
      // a larger output than the full one: the extra end rows are output padding (bias only)
      if (pads[i + 2] < 0) {
        out_pad[i] -= pads[i + 2];
        pads[i + 2] = 0;
      }
    }
  } else if (auto_pad != "VALID") {
    pads = window_attr(c, "pads", {0, 0, 0, 0}, 4, 0);
  }
  Shape out = {x[0], OC, 0, 0};
  for (size_t i = 0; i < 2; ++i) {
    out[2 + i] = full(i) - pads[i] - pads[i + 2];
    if (out[2 + i] <= 0) c.error("pads ", shape_str(pads), " leave no output on spatial axis ", i);
  }
  n.attrs.erase("auto_pad");
  n.attrs.erase("output_shape");
  n.attrs["kernel_shape"] = kernel;
  n.attrs["strides"] = strides;
  n.attrs["dilations"] = dilations;
  n.attrs["output_padding"] = out_pad;
  n.attrs["pads"] = pads;
  n.attrs["group"] = group;
  return c.output(DType::F32, out);
}

}  // namespace shape_inference
}  // namespace locus
