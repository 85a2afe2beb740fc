// The oneDNN backend's quantized ops, unfused, with oneDNN's int8 primitives (the yardstick the
// fused int8 kernels are compared against; oneDNN rounds its own way, so results are within a
// quantization step of ONNX Runtime's, not bit-exact):
//   QLinearConv        convolution_forward u8 (or s8) src with a common src zero point, s8 weights
//                      (zero point 0), s32 bias, u8/s8 dst with its zero point; per-output-channel
//                      output scales x_scale * w_scale[c] / y_scale (oneDNN 2.x: acc + bias, then
//                      scaled, as QLinearConv defines); depthwise is a grouped convolution
//   QLinearMatMul      matmul u8s8 (A's leading dims folded into its rows; 2-D weights), the same
//                      scales and zero points
//   QuantizeLinear / DequantizeLinear   reorder with an output scale and a zero point (per tensor)
//   QLinearAdd         reorders dequantizing both operands to f32 (scaled by a_scale / c_scale,
//                      b_scale / c_scale), binary_add, a reorder adding c's zero point into u8/s8
//   QLinearGlobalAveragePool   reorder to f32 (scaled by x_scale / y_scale), pooling_avg over H x W,
//                      reorder adding y's zero point into u8/s8
// Scales and zero points must be constants; a form oneDNN cannot express (weight zero points other
// than 0, u8 weights, QLinearAdd broadcasting both operands, channels_last pooling) throws Unsupported naming it.
// On a CPU without VNNI, oneDNN's u8 x s8 convolutions (other than depthwise) and matmuls multiply
// with vpmaddubsw, which sums each pair of products in 16 bits and saturates: 255 * (|w1| + |w2|)
// must stay within 32767, which weights within +-64 guarantee. With larger weights oneDNN's results
// are silently wrong (the real int8 MobileNetV2 on a Zen 3 core: another top-1 class on one of its
// five test sets, 17% of the logits within a step of ONNX Runtime's instead of 42%), so such a layer is
// refused with the reason (saturates_without_vnni).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "kernels/native/cpu_features.h"
#include "runtime/onednn/op_registry.h"

namespace locus::onednn {
namespace {

const Tensor& constant_input(OnednnContext& ctx, const Node& n, size_t i, const char* what) {
  const Tensor* t = n.input(i).empty() ? nullptr : ctx.graph().constant(n.input(i));
  if (!t) throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' with a non-constant ", what));
  return *t;
}

std::vector<float> scales_of(OnednnContext& ctx, const Node& n, size_t i, const char* what) {
  const Tensor& t = constant_input(ctx, n, i, what);
  if (t.dtype != DType::F32) throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "': ", what, " is not float"));
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

float scale_of(OnednnContext& ctx, const Node& n, size_t i, const char* what) {
  std::vector<float> s = scales_of(ctx, n, i, what);
  if (s.size() != 1) throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' with a per-axis ", what));
  return s[0];
}

// The zero points of input i (0 when absent).
std::vector<int32_t> zeros_of(OnednnContext& ctx, const Node& n, size_t i, const char* what) {
  if (n.input(i).empty()) return {0};
  const Tensor& t = constant_input(ctx, n, i, what);
  std::vector<int32_t> r;
  for (int64_t k = 0; k < t.numel(); ++k) {
    if (t.dtype == DType::U8) r.push_back(t.data<uint8_t>()[k]);
    else if (t.dtype == DType::I8) r.push_back(t.data<int8_t>()[k]);
    else throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "': ", what, " of type ", dtype_name(t.dtype)));
  }
  if (r.empty()) r.push_back(0);
  return r;
}

int32_t zero_of(OnednnContext& ctx, const Node& n, size_t i, const char* what) {
  std::vector<int32_t> z = zeros_of(ctx, n, i, what);
  for (int32_t v : z)
    if (v != z[0]) throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' with a per-axis ", what));
  return z[0];
}

dt dt_of(DType t, const Node& n) {
  if (t == DType::U8) return dt::u8;
  if (t == DType::I8) return dt::s8;
  if (t == DType::F32) return dt::f32;
  throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' on ", dtype_name(t), " values"));
}

// d with another element type, same layout.
md retyped(const md& d, dt t) {
  dnnl_memory_desc_t r = d.data;
  r.data_type = dnnl_data_type_t(t);
  return md(r);
}

// One reorder computing dst = scale * (src - src_zero) + dst_zero, rounded and saturated to dst's type.
Val rescale(OnednnContext& ctx, const std::string& node, const std::string& op, const Val& src, dt to, float scale,
            int32_t src_zero, int32_t dst_zero) {
  dn::primitive_attr attr = scratch_attr();
  if (scale != 1.f) attr.set_output_scales(0, {scale});
  if (src_zero != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {src_zero});
  if (dst_zero != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {dst_zero});
  md want = retyped(src.desc, to);
  dn::reorder::primitive_desc pd(ctx.engine(), src.desc, ctx.engine(), want, attr);
  Val y = ctx.new_value(want, src.shape);
  ctx.add_step(node, op, dn::reorder(pd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, y}});
  return y;
}

// A constant (its data row-major in layout `user`) in layout `want`, through a reorder (which also
// computes any compensation `want` asks for).
dn::memory constant_int(OnednnContext& ctx, const Tensor& t, const md& user, const md& want) {
  dn::memory src(user, ctx.engine(), const_cast<std::byte*>(t.bytes.data()));
  dn::memory dst(want, ctx.engine());
  dn::stream s(ctx.engine());
  dn::reorder(src, dst).execute(s, src, dst);
  s.wait();
  return dst;
}

void build_quantize(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  float s = scale_of(ctx, n, 1, "y_scale");
  int32_t z = zero_of(ctx, n, 2, "y_zero_point");
  dt to = dt_of(ctx.graph().info(n.outputs[0]).dtype, n);
  ctx.set_val(n.outputs[0], rescale(ctx, n.name, n.op, x, to, 1.f / s, 0, z));
}

void build_dequantize(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  float s = scale_of(ctx, n, 1, "x_scale");
  int32_t z = zero_of(ctx, n, 2, "x_zero_point");
  ctx.set_val(n.outputs[0], rescale(ctx, n.name, n.op, x, dt::f32, s, z, 0));
}

// x_scale * w_scale[c] / y_scale per output channel (one value if w_scale is per tensor).
std::vector<float> output_scales(OnednnContext& ctx, const Node& n) {
  float xs = scale_of(ctx, n, 1, "x_scale"), ys = scale_of(ctx, n, 6, "y_scale");
  std::vector<float> r = scales_of(ctx, n, 4, "w_scale");
  for (float& v : r) v = xs * v / ys;
  return r;
}

// The largest |w| oneDNN's 16-bit pair sums hold on a CPU without VNNI (see the top of the file).
constexpr int kNoVnniMaxWeight = 64;

// pairwise: the op multiplies with vpmaddubsw where the CPU has no VNNI (every conv but a depthwise
// one, and matmul).
const Tensor& s8_weights(OnednnContext& ctx, const Node& n, bool pairwise) {
  const Tensor& w = constant_input(ctx, n, 3, "weight");
  if (w.dtype != DType::I8)
    throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' with ", dtype_name(w.dtype),
                          " weights (oneDNN's int8 primitives take s8 weights)"));
  for (int32_t z : zeros_of(ctx, n, 5, "w_zero_point"))
    if (z != 0)
      throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "' with a nonzero weight zero point (oneDNN has none)"));
  if (pairwise && !kernels::cpu_has_avx512vnni()) {
    int big = 0;
    for (int64_t i = 0; i < w.numel(); ++i) big = std::max(big, std::abs(int(w.data<int8_t>()[i])));
    if (big > kNoVnniMaxWeight)
      throw Unsupported(cat("onednn backend: ", n.op, " '", n.name, "': weights up to ", big,
                            " would saturate oneDNN's int8 kernels on this CPU (without VNNI they sum pairs of "
                            "u8 x s8 products in 16 bits; safe up to ", kNoVnniMaxWeight, ")"));
  }
  return w;
}

void build_qlinear_conv(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  const int64_t groups = n.i("group", 1);
  const bool depthwise = groups > 1 && x.shape.size() == 4 && groups == x.shape[1] && groups == ys[1];
  const Tensor& w = s8_weights(ctx, n, !depthwise);
  if (x.shape.size() != 4) throw Unsupported(cat("onednn backend: QLinearConv '", n.name, "' is not 2-D"));
  const Tensor* b = n.input(8).empty() ? nullptr : &constant_input(ctx, n, 8, "bias");
  if (b && b->dtype != DType::I32) throw Unsupported(cat("onednn backend: QLinearConv '", n.name, "' with a non-int32 bias"));
  std::vector<float> scales = output_scales(ctx, n);
  int32_t xz = zero_of(ctx, n, 2, "x_zero_point"), yz = zero_of(ctx, n, 7, "y_zero_point");
  dt src_t = x.desc.data_type(), dst_t = dt_of(ctx.graph().info(n.outputs[0]).dtype, n);

  auto st = n.ints("strides", {1, 1}), pads = n.ints("pads", {0, 0, 0, 0}), dil = n.ints("dilations", {1, 1});
  const Shape& ws = w.shape;
  dims wei = groups > 1 ? dims{groups, ws[0] / groups, ws[1], ws[2], ws[3]} : dims{ws[0], ws[1], ws[2], ws[3]};
  dims strides{st[0], st[1]}, dl{dil[0] - 1, dil[1] - 1}, pl{pads[0], pads[1]};
  dims pr{pad_right(x.shape[2], ys[2], ws[2], st[0], dil[0], pads[0], pads[2]),
          pad_right(x.shape[3], ys[3], ws[3], st[1], dil[1], pads[1], pads[3])};
  md any_src(dims_of(x.shape), src_t, tag::any), any_w(wei, dt::s8, tag::any), any_dst(dims_of(ys), dst_t, tag::any);
  md bias_md(dims{ws[0]}, dt::s32, tag::x);
  auto desc = b ? dn::convolution_forward::desc(kInference, alg::convolution_direct, any_src, any_w, bias_md, any_dst,
                                                strides, dl, pl, pr)
                : dn::convolution_forward::desc(kInference, alg::convolution_direct, any_src, any_w, any_dst, strides,
                                                dl, pl, pr);
  dn::primitive_attr attr = scratch_attr();
  attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
  if (xz != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {xz});
  if (yz != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {yz});
  dn::convolution_forward::primitive_desc pd(desc, attr, ctx.engine());
  Val src = ctx.to_desc(x, pd.src_desc(), n.name);
  md w_user(wei, dt::s8, groups > 1 ? tag::goihw : tag::oihw);
  dn::memory wm = constant_int(ctx, w, w_user, pd.weights_desc());
  Val y = ctx.new_value(pd.dst_desc(), ys);
  std::vector<ArgRef> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), wm, {}}}, {DNNL_ARG_DST, y}};
  if (b) args.push_back({DNNL_ARG_BIAS, Val{-1, bias_md, constant_int(ctx, *b, bias_md, bias_md), {}}});
  ctx.add_step(n.name, "QLinearConv", dn::convolution_forward(pd), args);
  ctx.set_val(n.outputs[0], y);
}

void build_qlinear_matmul(OnednnContext& ctx, const Node& n) {
  const Val& a = ctx.val(n.input(0));
  const Tensor& w = s8_weights(ctx, n, true);
  const Shape& ys = ctx.out_shape(n);
  if (a.shape.size() < 2 || w.shape.size() != 2)
    throw Unsupported(cat("onednn backend: QLinearMatMul '", n.name, "' with a weight of rank other than 2"));
  std::vector<float> scales = output_scales(ctx, n);
  int32_t az = zero_of(ctx, n, 2, "a_zero_point"), yz = zero_of(ctx, n, 7, "y_zero_point");
  dt dst_t = dt_of(ctx.graph().info(n.outputs[0]).dtype, n);
  // leading dims of A folded into the rows: [rows, K] x [K, N], the result seen as ys
  const int64_t K = a.shape.back(), N = w.shape[1];
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < a.shape.size(); ++i) rows *= a.shape[i];
  Val src = ctx.view(a, {rows, K}, n.name);
  md w_user = plain_md(w.shape, dt::s8), any_w(dims_of(w.shape), dt::s8, tag::any);
  md dst = plain_md({rows, N}, dst_t);
  dn::primitive_attr attr = scratch_attr();
  attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
  if (az != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {az});
  if (yz != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {yz});
  dn::matmul::primitive_desc pd(dn::matmul::desc(src.desc, any_w, dst), attr, ctx.engine());
  dn::memory wm = constant_int(ctx, w, w_user, pd.weights_desc());
  Val y = ctx.new_value(pd.dst_desc(), {rows, N});
  ctx.add_step(n.name, "QLinearMatMul", dn::matmul(pd),
               {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, Val{-1, pd.weights_desc(), wm, {}}}, {DNNL_ARG_DST, y}});
  ctx.set_val(n.outputs[0], ctx.view(y, ys, n.name));
}

void build_qlinear_add(OnednnContext& ctx, const Node& n) {
  Val a = ctx.val(n.input(0)), b = ctx.val(n.input(3));
  const Shape& ys = ctx.out_shape(n);
  float as = scale_of(ctx, n, 1, "A_scale"), bs = scale_of(ctx, n, 4, "B_scale"), cs = scale_of(ctx, n, 6, "C_scale");
  int32_t az = zero_of(ctx, n, 2, "A_zero_point"), bz = zero_of(ctx, n, 5, "B_zero_point"),
          cz = zero_of(ctx, n, 7, "C_zero_point");
  dt dst_t = dt_of(ctx.graph().info(n.outputs[0]).dtype, n);
  if (a.shape != ys && b.shape == ys) {  // addition commutes: the full-size operand first
    std::swap(a, b);
    std::swap(as, bs);
    std::swap(az, bz);
  }
  if (a.shape != ys) throw Unsupported(cat("onednn backend: QLinearAdd '", n.name, "' broadcasts both operands"));
  if (b.shape != ys)  // broadcast by the binary primitive, in plain layout
    b = ctx.view(b, left_pad(b.shape, ys.size()), n.name);
  else
    b = ctx.to_desc(b, retyped(a.desc, b.desc.data_type()), n.name);
  // (a - az) * as / cs and (b - bz) * bs / cs in f32, added; then + cz, rounded into u8/s8
  Val af = rescale(ctx, n.name + ":dequantize", "Reorder", a, dt::f32, as / cs, az, 0);
  Val bf = rescale(ctx, n.name + ":dequantize", "Reorder", b, dt::f32, bs / cs, bz, 0);
  dn::binary::primitive_desc pd(dn::binary::desc(alg::binary_add, af.desc, bf.desc, af.desc), scratch_attr(),
                                ctx.engine());
  Val sum = ctx.new_value(pd.dst_desc(), ys);
  ctx.add_step(n.name, "QLinearAdd", dn::binary(pd), {{DNNL_ARG_SRC_0, af}, {DNNL_ARG_SRC_1, bf}, {DNNL_ARG_DST, sum}});
  ctx.set_val(n.outputs[0], rescale(ctx, n.name + ":quantize", "Reorder", sum, dst_t, 1.f, 0, cz));
}

void build_qlinear_gap(OnednnContext& ctx, const Node& n) {
  const Val& x = ctx.val(n.input(0));
  const Shape& ys = ctx.out_shape(n);
  if (n.i("channels_last", 0) != 0)
    throw Unsupported(cat("onednn backend: QLinearGlobalAveragePool '", n.name, "' with channels_last"));
  if (x.shape.size() != 4)
    throw Unsupported(cat("onednn backend: QLinearGlobalAveragePool '", n.name, "' is not 2-D"));
  float xs = scale_of(ctx, n, 1, "x_scale"), ysc = scale_of(ctx, n, 3, "y_scale");
  int32_t xz = zero_of(ctx, n, 2, "x_zero_point"), yz = zero_of(ctx, n, 4, "y_zero_point");
  dt dst_t = dt_of(ctx.graph().info(n.outputs[0]).dtype, n);
  Val xf = rescale(ctx, n.name + ":dequantize", "Reorder", x, dt::f32, xs / ysc, xz, 0);
  md dst(dims_of(ys), dt::f32, tag::any);
  dn::pooling_v2_forward::primitive_desc pd(
      dn::pooling_v2_forward::desc(kInference, alg::pooling_avg_exclude_padding, xf.desc, dst, {1, 1},
                                   {x.shape[2], x.shape[3]}, {0, 0}, {0, 0}, {0, 0}),
      scratch_attr(), ctx.engine());
  Val mean = ctx.new_value(pd.dst_desc(), ys);
  ctx.add_step(n.name, "QLinearGlobalAveragePool", dn::pooling_v2_forward(pd), {{DNNL_ARG_SRC, xf}, {DNNL_ARG_DST, mean}});
  ctx.set_val(n.outputs[0], rescale(ctx, n.name + ":quantize", "Reorder", mean, dst_t, 1.f, 0, yz));
}

}  // namespace

void register_quant_ops(OnednnOpRegistry& r) {
  r.add({"QuantizeLinear", "dnnl reorder (output scale 1/y_scale, dst zero point)", build_quantize});
  r.add({"DequantizeLinear", "dnnl reorder (src zero point, output scale x_scale)", build_dequantize});
  r.add({"QLinearConv", "dnnl convolution_forward u8s8 (output scales, src/dst zero points)", build_qlinear_conv});
  r.add({"QLinearMatMul", "dnnl matmul u8s8 (output scales, src/dst zero points)", build_qlinear_matmul});
  r.add({op_key("com.microsoft", "QLinearAdd"), "dnnl reorders to f32 + binary_add + reorder to int8",
         build_qlinear_add});
  r.add({op_key("com.microsoft", "QLinearGlobalAveragePool"),
         "dnnl reorder to f32 + pooling_avg + reorder to int8", build_qlinear_gap});
}

}  // namespace locus::onednn
