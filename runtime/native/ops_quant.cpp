// The native backend's quantized ops (issue 14): QuantizeLinear, DequantizeLinear, QLinearConv,
// QLinearMatMul, com.microsoft.QLinearAdd and com.microsoft.QLinearGlobalAveragePool, on uint8 /
// int8 values stored like float ones (4-D NHWC, the rest row-major, one byte per element).
//
// Each computes exactly the reference evaluator's integer arithmetic and rounding
// (graph/eval/eval_quant.cpp, ONNX Runtime's; docs/int8.md), so native == reference bit for bit:
// QLinearConv runs 1x1 convolutions through the int8 GEMM (kernels/native/qgemm.h, weights packed
// once here with the zero-point terms folded), depthwise ones through the int8 depthwise kernel
// (qdwconv.h), other ungrouped ones (the RGB stem) through im2col tiles in L1 and the GEMM micro-kernel
// (qconv.h), grouped ones through a u8 im2col padded with the input zero point and the GEMM;
// QLinearMatMul is the GEMM with M = the rows of A. The kernels are u8 x s8: int8
// activations run as uint8 with 128 added to the values and the zero point (x ^ 0x80), uint8
// weights as int8 with 128 taken from both, which leaves every difference (x - zx)(w - zw) as it was.
#include "runtime/native/op_registry.h"

#include <cstring>
#include <memory>
#include <vector>

#include "graph/ops.h"
#include "graph/quant_params.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/qconv.h"
#include "kernels/native/qdwconv.h"
#include "kernels/native/qelementwise.h"
#include "kernels/native/qgemm.h"
#include "kernels/native/qgemm_microkernel.h"

namespace locus::native {
namespace {

using namespace kernels;

// A scale or zero point: shape inference has checked they are constants of the right type and length.
const Tensor& constant_input(NativeContext& c, const Node& n, size_t k, const char* role) {
  const Tensor* t = n.input(k).empty() ? nullptr : c.graph().constant(n.input(k));
  if (!t) throw Unsupported(cat("native backend: ", n.op, " '", n.name, "': ", role, " is not a constant"));
  return *t;
}
const Tensor* optional_constant(NativeContext& c, const Node& n, size_t k, const char* role) {
  if (n.input(k).empty()) return nullptr;
  return &constant_input(c, n, k, role);
}

bool is_s8(DType t) { return t == DType::I8; }

// A value's elements in runs that share one index along `axis`: the layouts here are dense
// permutations (NHWC or row-major), so element offset o has index (o / strides[axis]) % shape[axis]
// and the strides[axis] elements from a multiple of it share it. f(offset, count, index) per run.
struct AxisRuns {
  int64_t total = 0, run = 1, dim = 1;
  AxisRuns(const Shape& shape, const std::vector<int64_t>& strides, size_t axis)
      : total(1), run(strides.at(axis)), dim(shape.at(axis)) {
    for (int64_t d : shape) total *= d;
    LOCUS_CHECK(run > 0 && total % (run * dim) == 0, "per-axis quantization: layout is not dense along axis ", axis);
  }
  template <class F>
  void operator()(F&& f) const {
    for (int64_t off = 0; off < total; off += run) f(off, run, (off / run) % dim);
  }
};

// The per-axis scales and zero points of a QuantizeLinear / DequantizeLinear (scale tensor s, zero
// point z or none: zero), along attribute axis.
struct AxisQParams {
  size_t axis;
  std::vector<float> scales;
  std::vector<int32_t> zeros;
  AxisQParams(const Node& n, const Tensor& s, const Tensor* z)
      : axis(size_t(n.i("axis", 1))), scales(size_t(s.numel())), zeros(scales.size()) {
    for (size_t k = 0; k < scales.size(); ++k) scales[k] = quant_scale_at(s, int64_t(k)), zeros[k] = quant_zero_at(z, int64_t(k));
  }
};

Step build_quantize(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const Tensor& s = constant_input(c, n, 1, "y_scale");
  const Tensor* z = optional_constant(c, n, 2, "y_zero_point");
  const bool s8 = is_s8(y.dtype);
  if (s.numel() == 1) {  // x and y share shape and layout: one flat pass
    const float scale = quant_scale_at(s, 0);
    const int32_t zp = quant_zero_at(z, 0);
    return [cnt = y.numel(), px = x.ptr, py = y.bytes(), scale, zp, s8] { quantize_f32(cnt, px, scale, zp, s8, py); };
  }
  c.set_implementation("quantize_f32 per axis (runs along the axis)");
  AxisQParams q(n, s, z);
  return [px = x.ptr, py = y.bytes(), runs = AxisRuns(x.shape, x.strides(), q.axis), q, s8] {
    runs([&](int64_t off, int64_t cnt, int64_t k) {
      quantize_f32(cnt, px + off, q.scales[size_t(k)], q.zeros[size_t(k)], s8, py + off);
    });
  };
}

Step build_dequantize(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  if (!x.is_byte())
    throw Unsupported(cat("native backend: DequantizeLinear '", n.name, "' of ", dtype_name(x.dtype), " values"));
  const Tensor& s = constant_input(c, n, 1, "x_scale");
  const Tensor* z = optional_constant(c, n, 2, "x_zero_point");
  const bool s8 = is_s8(x.dtype);
  if (s.numel() == 1) {
    const float scale = quant_scale_at(s, 0);
    const int32_t zp = quant_zero_at(z, 0);
    return [cnt = y.numel(), px = x.bytes(), py = y.ptr, scale, zp, s8] { dequantize_f32(cnt, px, s8, scale, zp, py); };
  }
  AxisQParams q(n, s, z);
  return [px = x.bytes(), py = y.ptr, runs = AxisRuns(x.shape, x.strides(), q.axis), q, s8] {
    runs([&](int64_t off, int64_t cnt, int64_t k) {
      dequantize_f32(cnt, px + off, s8, q.scales[size_t(k)], q.zeros[size_t(k)], py + off);
    });
  };
}

// The quantization of a QLinearConv / QLinearMatMul for the u8 x s8 kernels: inputs 1, 2 (x), 4, 5
// (w, per tensor or per output channel), 6, 7 (y). x_s8 / w_u8 shift the zero points as the values are shifted.
QuantParams quant_params(NativeContext& c, const Node& n, bool x_s8, bool w_u8, bool y_s8) {
  QuantParams q;
  q.a_scale = quant_scale_at(constant_input(c, n, 1, "the input scale"), 0);
  q.a_zero = quant_zero_at(optional_constant(c, n, 2, "the input zero point"), 0) + (x_s8 ? 128 : 0);
  const Tensor& ws = constant_input(c, n, 4, "the weight scale");
  const Tensor* wz = optional_constant(c, n, 5, "the weight zero point");
  for (int64_t k = 0; k < ws.numel(); ++k) q.w_scale.push_back(quant_scale_at(ws, k));
  if (wz)
    for (int64_t k = 0; k < wz->numel(); ++k) q.w_zero.push_back(quant_zero_at(wz, k) - (w_u8 ? 128 : 0));
  else if (w_u8)
    q.w_zero.push_back(-128);  // uint8 weights with the default zero point 0
  q.y_scale = quant_scale_at(constant_input(c, n, 6, "the output scale"), 0);
  q.y_zero = quant_zero_at(optional_constant(c, n, 7, "the output zero point"), 0);
  q.s8_out = y_s8;
  // the whole output type: the spec's saturation (ORT's clamp)
  q.qmin = y_s8 ? -128 : 0;
  q.qmax = y_s8 ? 127 : 255;
  return q;
}

// Weights as int8 (uint8 ones shifted by -128).
std::vector<int8_t> weights_s8(const Tensor& w) {
  std::vector<int8_t> r(size_t(w.numel()));
  if (w.dtype == DType::I8) {
    std::copy(w.data<int8_t>(), w.data<int8_t>() + w.numel(), r.begin());
  } else {
    for (int64_t i = 0; i < w.numel(); ++i) r[size_t(i)] = int8_t(int32_t(w.data<uint8_t>()[i]) - 128);
  }
  return r;
}

// The u8 input of a quantized op: x itself, or (int8 x) a step-owned copy with the sign bit flipped
// that `pre` refreshes.
const uint8_t* u8_input(NativeContext& c, const Val& x, const uint8_t* src, Step& pre) {
  if (!is_s8(x.dtype)) return src;
  uint8_t* buf = c.scratch_bytes(x.numel());
  pre = [src, buf, cnt = x.numel()] { flip_sign_u8(cnt, src, buf); };
  return buf;
}

// len (sizeof(W) to 2 sizeof(W)) bytes from src to dst: two overlapping W-sized moves, both loads first.
template <class W>
inline void copy_overlapping(uint8_t* dst, const uint8_t* src, int64_t len) {
  W a, b;
  std::memcpy(&a, src, sizeof(W));
  std::memcpy(&b, src + len - int64_t(sizeof(W)), sizeof(W));
  std::memcpy(dst, &a, sizeof(W));
  std::memcpy(dst + len - int64_t(sizeof(W)), &b, sizeof(W));
}

// len bytes from src to dst without a library call for the short runs im2col copies (the RGB stem's
// are 3 or 9 bytes): overlapping 8- or 4-byte moves.
inline void copy_bytes(uint8_t* dst, const uint8_t* src, int64_t len) {
  if (len >= 16) {
    std::memcpy(dst, src, size_t(len));
  } else if (len >= 8) {
    copy_overlapping<uint64_t>(dst, src, len);
  } else if (len >= 4) {
    copy_overlapping<uint32_t>(dst, src, len);
  } else {
    for (int64_t i = 0; i < len; ++i) dst[i] = src[i];
  }
}

// im2col of an NHWC u8 image for group g: row m = (n, oh, ow), column (kh * KW + kw) * KC + kc; padded
// taps read the zero point. Rows of the output image are split between `threads` threads.
void im2col_u8(const Conv2dShape& s, int64_t g, const uint8_t* x, uint8_t zero, uint8_t* a, int threads) {
  const int64_t KC = s.C / s.G, K = s.KH * s.KW * KC, span = s.KW * KC;
  // a kernel row's KW taps are one contiguous run of the input when G = 1 and DW = 1
  const bool runs = s.G == 1 && s.DW == 1;
  const int64_t rows = s.N * s.OH;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / s.OH, oh = r % s.OH;
    for (int64_t ow = 0; ow < s.OW; ++ow) {
      uint8_t* row = a + (r * s.OW + ow) * K;
      const int64_t iw0 = ow * s.SW - s.PL;
      for (int64_t kh = 0; kh < s.KH; ++kh, row += span) {
        const int64_t ih = oh * s.SH - s.PT + kh * s.DH;
        if (ih < 0 || ih >= s.H) {
          std::memset(row, zero, size_t(span));
          continue;
        }
        const uint8_t* line = x + (n * s.H + ih) * s.W * s.C + g * KC;
        if (runs && iw0 >= 0 && iw0 + s.KW <= s.W) {
          copy_bytes(row, line + iw0 * s.C, span);
          continue;
        }
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t iw = iw0 + kw * s.DW;
          if (iw < 0 || iw >= s.W) std::memset(row + kw * KC, zero, size_t(KC));
          else copy_bytes(row + kw * KC, line + iw * s.C, KC);
        }
      }
    }
  }
}

Step build_qlinear_conv(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const auto [wt, bt] = conv_constants(c, n, 3, 8);
  if (x.shape.size() != 4) throw Unsupported(cat("native backend: QLinearConv '", n.name, "' is not 2-D"));
  const Conv2dShape s = conv2d_shape_of(n, x.shape, y.shape, wt->shape);
  const bool x_s8 = is_s8(x.dtype);
  const QuantParams q = quant_params(c, n, x_s8, wt->dtype == DType::U8, is_s8(y.dtype));
  const std::vector<int8_t> w = weights_s8(*wt);
  const int32_t* bias = bt ? bt->data<int32_t>() : nullptr;
  const int threads = c.threads();
  Step pre;
  const uint8_t* in = u8_input(c, x, x.bytes(), pre);
  uint8_t* out = y.bytes();

  if (s.G == s.C && s.OC == s.C && s.G > 1) {  // depthwise
    auto p = std::make_shared<PackedQDwConv>(pack_qdwconv(s, w.data(), bias, q, threads));
    c.set_implementation(cat("qdwconv_nhwc (", qdwconv_microkernel_name(active_isa()), ")"));
    return [pre, p, in, out] {
      if (pre) pre();
      qdwconv_nhwc(*p, in, out);
    };
  }
  const int64_t M = s.N * s.OH * s.OW;
  const bool pointwise = s.KH == 1 && s.KW == 1 && s.SH == 1 && s.SW == 1 && !(s.PT || s.PL || s.PB || s.PR) &&
                         s.G == 1;
  if (pointwise) {  // the image is A (M x C) as it is
    auto b = std::make_shared<PackedQB>(pack_qgemm_b(s.C, s.OC, w.data(), s.C, /*trans_w=*/true, bias, q));
    c.set_implementation(cat("qgemm_u8s8 pointwise (", qgemm_config(active_isa()).name, ")"));
    const int64_t C = s.C, OC = s.OC;
    return [pre, b, in, out, M, C, OC, threads] {
      if (pre) pre();
      qgemm_u8s8(M, in, C, *b, out, OC, threads);
    };
  }
  if (s.G == 1 && s.KH <= kQConvMaxKH) {  // the RGB stem and any other ungrouped conv: im2col tiles in L1 + the GEMM micro-kernel
    auto p = std::make_shared<PackedQConv>(pack_qconv(s, w.data(), bias, q, threads));
    if (p->kseg > 0 && qgemm_has_seg(active_isa()))
      c.set_implementation(cat("qconv_nhwc (direct: kernel rows read in place, K ", s.KH * s.KW * s.C, " -> ",
                               s.KH * p->kseg, "; border pixels through im2col rows, ", qgemm_config(active_isa()).name,
                               ")"));
    else
      c.set_implementation(cat("qconv_nhwc (im2col tiles of ", p->tile, " pixels, K ", s.KH * s.KW * s.C, " -> ", p->Kp,
                               ", ", qgemm_config(active_isa()).name, ")"));
    return [pre, p, in, out] {
      if (pre) pre();
      qconv_nhwc(*p, in, out);
    };
  }
  // grouped: im2col + GEMM, one per group; group g's weights as [ocg][(kh * KW + kw) * KC + kc]
  const int64_t KC = s.C / s.G, ocg = s.OC / s.G, K = s.KH * s.KW * KC;
  std::vector<std::shared_ptr<PackedQB>> packed;
  std::vector<int8_t> wg(size_t(ocg * K));
  for (int64_t g = 0; g < s.G; ++g) {
    for (int64_t o = 0; o < ocg; ++o)
      for (int64_t kc = 0; kc < KC; ++kc)
        for (int64_t t = 0; t < s.KH * s.KW; ++t)
          wg[size_t(o * K + t * KC + kc)] = w[size_t(((g * ocg + o) * KC + kc) * s.KH * s.KW + t)];
    QuantParams qg = q;
    auto slice = [&](auto& v) {
      if (v.size() > 1) v.assign(v.begin() + g * ocg, v.begin() + (g + 1) * ocg);
    };
    slice(qg.w_scale);
    slice(qg.w_zero);
    packed.push_back(std::make_shared<PackedQB>(
        pack_qgemm_b(K, ocg, wg.data(), K, /*trans_w=*/true, bias ? bias + g * ocg : nullptr, qg)));
  }
  c.set_implementation(cat("qgemm_u8s8 im2col (", qgemm_config(active_isa()).name, ")"));
  c.need_workspace((M * K + 3) / 4);
  const uint8_t zero = uint8_t(q.a_zero);
  const int64_t OC = s.OC;
  return [pre, packed, s, in, out, ws = c.workspace(), zero, M, K, ocg, OC, threads] {
    if (pre) pre();
    uint8_t* a = reinterpret_cast<uint8_t*>(ws->data());
    for (int64_t g = 0; g < s.G; ++g) {
      im2col_u8(s, g, in, zero, a, threads);
      qgemm_u8s8(M, a, K, *packed[size_t(g)], out + g * ocg, OC, threads);
    }
  };
}

Step build_qlinear_matmul(NativeContext& c, const Node& n) {
  const Val& a = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const Tensor* bt = c.graph().constant(n.input(3));
  if (!bt) throw Unsupported(cat("native backend: QLinearMatMul '", n.name, "' with a non-constant B"));
  if (bt->shape.size() != 2) throw Unsupported(cat("native backend: QLinearMatMul '", n.name, "' with a batched B ", shape_str(bt->shape)));
  const int64_t K = bt->shape[0], N = bt->shape[1], M = a.numel() / K;
  const QuantParams q = quant_params(c, n, is_s8(a.dtype), bt->dtype == DType::U8, is_s8(y.dtype));
  const std::vector<int8_t> w = weights_s8(*bt);
  auto b = std::make_shared<PackedQB>(pack_qgemm_b(K, N, w.data(), N, /*trans_w=*/false, nullptr, q));
  c.set_implementation(cat("qgemm_u8s8 (", qgemm_config(active_isa()).name, ")"));
  Step pre_a, flip, post;
  const uint8_t* pa = u8_input(c, a, c.rowmajor_in_bytes(a, pre_a), flip);
  uint8_t* py = c.rowmajor_out_bytes(y, post);
  return [pre_a, flip, post, b, pa, py, M, K, N, threads = c.threads()] {
    if (pre_a) pre_a();
    if (flip) flip();
    qgemm_u8s8(M, pa, K, *b, py, N, threads);
    if (post) post();
  };
}

Step build_qlinear_add(NativeContext& c, const Node& n) {
  const Val& a = c.val(n.input(0));
  const Val& b = c.val(n.input(3));
  const Val& y = c.val(n.outputs[0]);
  const QAddParams p = qadd_params(
      quant_scale_at(constant_input(c, n, 1, "A_scale"), 0), quant_zero_at(optional_constant(c, n, 2, "A_zero_point"), 0),
      quant_scale_at(constant_input(c, n, 4, "B_scale"), 0), quant_zero_at(optional_constant(c, n, 5, "B_zero_point"), 0),
      quant_scale_at(constant_input(c, n, 6, "C_scale"), 0),
      n.num_inputs() > 7 ? quant_zero_at(optional_constant(c, n, 7, "C_zero_point"), 0) : 0, is_s8(y.dtype));
  if (a.shape == y.shape && b.shape == y.shape && a.layout == y.layout && b.layout == y.layout)
    return [p, cnt = y.numel(), pa = a.bytes(), pb = b.bytes(), py = y.bytes()] { qadd_same(p, cnt, pa, pb, py); };
  c.set_implementation("qadd_strided (broadcasting)");
  return [p, shape = y.shape, pa = a.bytes(), sa = broadcast_strides(a, y.shape), pb = b.bytes(),
          sb = broadcast_strides(b, y.shape), py = y.bytes(), sy = y.strides()] {
    qadd_strided(p, shape, pa, sa, pb, sb, py, sy);
  };
}

Step build_qlinear_global_average_pool(NativeContext& c, const Node& n) {
  const Val& x = c.val(n.input(0));
  const Val& y = c.val(n.outputs[0]);
  const float xs = quant_scale_at(constant_input(c, n, 1, "x_scale"), 0), ys = quant_scale_at(constant_input(c, n, 3, "y_scale"), 0);
  const int32_t xz = quant_zero_at(optional_constant(c, n, 2, "x_zero_point"), 0);
  const int32_t yz = quant_zero_at(optional_constant(c, n, 4, "y_zero_point"), 0);
  const bool last = n.i("channels_last", 0) == 1, s8 = is_s8(x.dtype);
  const size_t r = x.shape.size();
  const int64_t N = x.shape[0], C = last ? x.shape[r - 1] : x.shape[1];
  const int64_t pixels = x.numel() / (N * C);
  // x as [N][pixels][C]: the NHWC value itself, or a copy in that order
  Step pre, post;
  const uint8_t* px = x.bytes();
  const bool nhwc = !last && x.layout == Layout::NHWC;
  if (!nhwc) {
    std::vector<int64_t> dst(r);  // strides of [N][pixels][C] per logical dimension
    int64_t sp = C;
    for (size_t d = r; d-- > 1;) {
      const bool channel = last ? d == r - 1 : d == 1;
      if (channel) continue;
      dst[d] = sp;
      sp *= x.shape[d];
    }
    dst[last ? r - 1 : 1] = 1;
    dst[0] = pixels * C;
    uint8_t* buf = c.scratch_bytes(x.numel());
    pre = [x, buf, dst] { copy_strided_u8(x.shape, x.bytes(), x.strides(), buf, dst); };
    px = buf;
  }
  uint8_t* py = c.rowmajor_out_bytes(y, post);  // [N, C, 1...] or [N, 1..., C]: N x C either way
  c.set_implementation(nhwc ? "qglobal_avgpool_nhwc" : "qglobal_avgpool_nhwc (after a copy to channels-last)");
  return [pre, post, N, pixels, C, px, s8, xs, xz, ys, yz, py] {
    if (pre) pre();
    qglobal_avgpool_nhwc(N, pixels, C, px, s8, xs, xz, ys, yz, py);
    if (post) post();
  };
}

}  // namespace

bool handles_dtype(const std::string& op, DType t) {
  if (t == DType::F32) return true;
  if (t != DType::U8 && t != DType::I8) return false;
  if (op.empty()) return true;  // the graph's inputs, which the boundary copies in either size
  const NativeOp* e = native_ops().find(op);
  return e && e->byte_values;  // the registry entry says so
}

void register_quant_ops(NativeOpRegistry& r) {
  r.add({"QuantizeLinear", "quantize_f32", build_quantize, /*byte_values=*/true});
  r.add({"DequantizeLinear", "dequantize_f32", build_dequantize, true});
  r.add({"QLinearConv", "qlinear_conv (qgemm_u8s8 / qdwconv_nhwc)", build_qlinear_conv, true});
  r.add({"QLinearMatMul", "qgemm_u8s8", build_qlinear_matmul, true});
  r.add({op_key(kMicrosoftDomain, "QLinearAdd"), "qadd_same", build_qlinear_add, true});
  r.add({op_key(kMicrosoftDomain, "QLinearGlobalAveragePool"), "qglobal_avgpool_nhwc",
         build_qlinear_global_average_pool, true});
}

}  // namespace locus::native
