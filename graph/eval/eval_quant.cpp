// Reference kernels of the quantized ops, written from the ONNX / ONNX Runtime contrib specs with
// ONNX Runtime's x86 rounding (docs/int8.md, sections per op): QuantizeLinear, DequantizeLinear,
// QLinearConv, QLinearMatMul, com.microsoft.QLinearAdd, com.microsoft.QLinearGlobalAveragePool.
// Accumulation is integer-exact (sum (x - zx)(w - zw) in int64, plus the int32 bias); the float steps
// are the ones ORT performs, in float, in its order.
#include <cmath>
#include <cstring>

#include "graph/eval/eval_internal.h"
#include "graph/ops.h"
#include "graph/quant_params.h"

namespace locus::eval::detail {
namespace {

int32_t qmin(DType t) { return t == DType::U8 ? 0 : -128; }
int32_t qmax(DType t) { return t == DType::U8 ? 255 : 127; }

// Element i of a u8 / s8 / s32 tensor as int32.
int32_t qget(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::U8: return t.data<uint8_t>()[i];
    case DType::I8: return t.data<int8_t>()[i];
    case DType::I32: return t.data<int32_t>()[i];
    default: fail("quantized tensor of dtype ", dtype_name(t.dtype));
  }
}

void qset(Tensor& t, int64_t i, int32_t v) {
  if (t.dtype == DType::U8) t.data<uint8_t>()[i] = uint8_t(v);
  else t.data<int8_t>()[i] = int8_t(v);
}


// ORT's requantization (MlasRequantizeOutput): float(acc) * multiplier, clamp in float to the output
// type's range shifted by the zero point, round half to even, add the zero point.
// The last steps of both: clamp v in float to yt's range shifted by zy (NaN to the low end, as
// maxps(NaN, lo) returns lo), round half to even, add zy.
int32_t clamp_round(float v, int32_t zy, DType yt) {
  const float lo = float(qmin(yt) - zy), hi = float(qmax(yt) - zy);
  v = std::isnan(v) ? lo : v;
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return int32_t(std::nearbyint(v)) + zy;
}
int32_t requantize(int64_t acc, float multiplier, int32_t zy, DType yt) {
  return clamp_round(float(int32_t(acc)) * multiplier, zy, yt);
}

// The channel index along `axis` of element i of a tensor of shape s (per-axis Q/DQ).
int64_t axis_index(int64_t i, const Shape& s, int64_t axis) {
  int64_t inner = dims_product(s, size_t(axis) + 1, s.size());
  return (i / inner) % s[size_t(axis)];
}

// Q/DQ walk x (input 0) with the scale (input 1) and zero point (input 2, optional) of each
// element's channel along `axis` when they are per-axis, else the single ones: f(i, scale, zp).
template <class F>
void for_each_quantized(const Node& n, const Inputs& in, F f) {
  const Tensor& x = *in[0];
  const Tensor& s = *in[1];
  const Tensor* z = in.size() > 2 ? in[2] : nullptr;
  const bool per_axis = s.numel() > 1;
  const int64_t axis = n.i("axis", 1);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t k = per_axis ? axis_index(i, x.shape, axis) : 0;
    f(i, quant_scale_at(s, k), quant_zero_at(z, k));
  }
}

void quantize_linear(const Node& n, const Inputs& in, Tensor& y) {
  // MlasQuantizeLinear: divide (not multiply by the reciprocal), clamp in float, round to even
  const float* x = in[0]->data<float>();
  for_each_quantized(n, in, [&](int64_t i, float scale, int32_t zp) { qset(y, i, clamp_round(x[i] / scale, zp, y.dtype)); });
}

void dequantize_linear(const Node& n, const Inputs& in, Tensor& y) {
  // ORT: float(x - zp) * scale
  const Tensor& x = *in[0];
  for_each_quantized(n, in, [&](int64_t i, float scale, int32_t zp) {
    y.data<float>()[i] = float(int64_t(qget(x, i)) - zp) * scale;
  });
}

void qlinear_conv(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor &x = *in[0], &xs = *in[1], &w = *in[3], &ws = *in[4], &ys = *in[6];
  const Tensor *xz = in[2], *wz = in[5], *yz = in[7];
  const Tensor* b = in.size() > 8 ? in[8] : nullptr;
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = w.shape[0], KC = w.shape[1], KH = w.shape[2], KW = w.shape[3];
  const int64_t OH = y.shape[2], OW = y.shape[3];
  const auto st = n.ints("strides"), pads = n.ints("pads"), dil = n.ints("dilations");
  const Window win{KH, KW, st[0], st[1], pads[0], pads[1], pads[2], pads[3], dil[0], dil[1]};
  const int64_t group = n.i("group", 1), ocg = OC / group;
  const int32_t zx = quant_zero_at(xz, 0), zy = quant_zero_at(yz, 0);
  (void)C;
  for (int64_t o = 0; o < OC; ++o) {
    const int32_t zw = quant_zero_at(wz, o);
    const float mult = quant_scale_at(xs, 0) * quant_scale_at(ws, o) / quant_scale_at(ys, 0);  // ORT's order: (xs*ws)/ys
    const int64_t g = o / ocg;
    for (int64_t ni = 0; ni < N; ++ni)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t acc = b ? qget(*b, o) : 0;
          for (int64_t kc = 0; kc < KC; ++kc) {
            const int64_t ci = g * KC + kc;
            // taps in the padding are skipped: padding is the zero point, (zx - zx) = 0
            for_each_tap(win, oh, ow, H, W, [&](int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
              const int64_t xv = qget(x, ((ni * x.shape[1] + ci) * H + ih) * W + iw) - zx;
              const int64_t wv = qget(w, ((o * KC + kc) * KH + kh) * KW + kw) - zw;
              acc += xv * wv;
            });
          }
          qset(y, ((ni * OC + o) * OH + oh) * OW + ow, requantize(acc, mult, zy, y.dtype));
        }
  }
}

void qlinear_matmul(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor &a = *in[0], &as = *in[1], &b = *in[3], &bs = *in[4], &ys = *in[6];
  const int32_t za = quant_zero_at(in[2], 0), zy = quant_zero_at(in[7], 0);
  const int64_t M = a.shape[a.shape.size() - 2], K = a.shape.back(), Ncol = b.shape.back();
  // batch dimensions (numpy broadcasting): the output's, and each operand's strides in matrices
  const Shape batch(y.shape.begin(), y.shape.end() - 2);
  const auto sa = broadcast_strides(Shape(a.shape.begin(), a.shape.end() - 2), batch);
  const auto sb = broadcast_strides(Shape(b.shape.begin(), b.shape.end() - 2), batch);
  const int64_t batches = dims_product(batch, 0, batch.size());
  for (int64_t bi = 0; bi < batches; ++bi) {
    const int64_t a0 = broadcast_offset(bi, batch, sa) * M * K, b0 = broadcast_offset(bi, batch, sb) * K * Ncol;
    for (int64_t j = 0; j < Ncol; ++j) {
      const int32_t zb = quant_zero_at(in[5], j);
      const float mult = quant_scale_at(as, 0) * quant_scale_at(bs, j) / quant_scale_at(ys, 0);
      for (int64_t m = 0; m < M; ++m) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += int64_t(qget(a, a0 + m * K + k) - za) * (qget(b, b0 + k * Ncol + j) - zb);
        qset(y, (bi * M + m) * Ncol + j, requantize(acc, mult, zy, y.dtype));
      }
    }
  }
}

// MlasQLinearAdd, AVX2 kernel (the one ORT runs on x86-64 with AVX2):
//   ra = sa / sc, rb = sb / sc (float); fixed = float(zc) - (ra * za + rb * zb) (float, the sum
//   contracted to one fma as GCC compiles it); c = fma(a, ra, fma(b, rb, fixed)); round half to even
//   (cvtps2dq); saturate to the type (packs to s16, then to u8 / s8).
void qlinear_add(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor &a = *in[0], &b = *in[3];
  const float sa = quant_scale_at(*in[1], 0), sb = quant_scale_at(*in[4], 0), sc = quant_scale_at(*in[6], 0);
  const int32_t za = quant_zero_at(in[2], 0), zb = quant_zero_at(in[5], 0);
  const int32_t zc = in.size() > 7 ? quant_zero_at(in[7], 0) : 0;
  const float ra = sa / sc, rb = sb / sc;
  const float fixed = float(zc) - std::fma(ra, float(za), rb * float(zb));
  const auto sta = broadcast_strides(a.shape, y.shape), stb = broadcast_strides(b.shape, y.shape);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float av = float(qget(a, broadcast_offset(i, y.shape, sta)));
    const float bv = float(qget(b, broadcast_offset(i, y.shape, stb)));
    const float v = std::fma(av, ra, std::fma(bv, rb, fixed));
    int64_t r = int64_t(std::nearbyint(v));
    r = r < qmin(y.dtype) ? qmin(y.dtype) : r > qmax(y.dtype) ? qmax(y.dtype) : r;
    qset(y, i, int32_t(r));
  }
}

// MlasQLinearGlobalAveragePoolNchw (x86): acc = sum(x) - zx * image_size (int32), scale =
// sx / (sy * float(image_size)) in float, then ORT's requantization (float multiply, clamp, round
// half to even, + zy).
void qlinear_global_average_pool(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const float sx = quant_scale_at(*in[1], 0), sy = quant_scale_at(*in[3], 0);
  const int32_t zx = quant_zero_at(in[2], 0), zy = quant_zero_at(in[4], 0);
  const bool last = n.i("channels_last", 0) == 1;
  const int64_t N = x.shape[0];
  const int64_t C = last ? x.shape.back() : x.shape[1];
  const int64_t image = x.numel() / (N * C);
  const float scale = sx / (sy * float(image));
  for (int64_t ni = 0; ni < N; ++ni)
    for (int64_t c = 0; c < C; ++c) {
      int64_t acc = -int64_t(zx) * image;
      for (int64_t p = 0; p < image; ++p)
        acc += qget(x, last ? (ni * image + p) * C + c : (ni * C + c) * image + p);
      qset(y, ni * C + c, requantize(acc, scale, zy, y.dtype));
    }
}

}  // namespace

// For the fused int8 block's composition (eval_fused.cpp).
void qlinear_conv_eval(const Node& n, const Inputs& in, Tensor& y) { qlinear_conv(n, in, y); }
void qlinear_add_eval(const Node& n, const Inputs& in, Tensor& y) { qlinear_add(n, in, y); }

void register_quant_ops(EvalRegistry& r) {
  r.add({"QuantizeLinear", "reference quantize_linear (ORT rounding)", quantize_linear});
  r.add({"DequantizeLinear", "reference dequantize_linear", dequantize_linear});
  r.add({"QLinearConv", "reference qlinear_conv (integer accumulation, ORT requantization)", qlinear_conv});
  r.add({"QLinearMatMul", "reference qlinear_matmul (integer accumulation, ORT requantization)", qlinear_matmul});
  r.add({op_key(kMicrosoftDomain, "QLinearAdd"), "reference qlinear_add (ORT AVX2 rounding)", qlinear_add});
  r.add({op_key(kMicrosoftDomain, "QLinearGlobalAveragePool"), "reference qlinear_global_average_pool",
         qlinear_global_average_pool});
}

}  // namespace locus::eval::detail
