// Reference kernels of the ops of mobile CNNs (MobileNetV3, PP-OCR), NCHW / row-major, float
// arithmetic in double: HardSigmoid, HardSwish, Sigmoid, Sqrt, Pow, ReduceMean, Cast (between the catalogue's dtypes),
// Slice (any rank, negative steps), Transpose, Resize (nearest and linear along every axis), ConvTranspose
// (2-D, groups, strides, dilations, pads, output padding; with the fused activation of a Conv).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "graph/eval/eval_internal.h"
#include "graph/ops.h"

namespace locus::eval::detail {
namespace {

double hard_sigmoid_of(double x, double alpha, double beta) { return std::max(0.0, std::min(1.0, alpha * x + beta)); }

void hard_sigmoid(const Node& n, const Inputs& in, Tensor& y) {
  const double alpha = n.f("alpha", 0.2f), beta = n.f("beta", 0.5f);
  const float* xd = in[0]->data<float>();
  float* yd = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i)
    yd[i] = std::isnan(xd[i]) ? xd[i] : float(hard_sigmoid_of(xd[i], alpha, beta));
}

void hard_swish(const Node& n, const Inputs& in, Tensor& y) {
  const float* xd = in[0]->data<float>();
  float* yd = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double x = xd[i];
    yd[i] = std::isnan(xd[i]) ? xd[i] : float(x * hard_sigmoid_of(x, 1.0 / 6.0, 0.5));
  }
}

void sigmoid(const Node& n, const Inputs& in, Tensor& y) {
  const float* xd = in[0]->data<float>();
  float* yd = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) yd[i] = float(1.0 / (1.0 + std::exp(-double(xd[i]))));
}

bool is_float(DType t) { return t == DType::F32 || t == DType::F64; }

// An integer of type T from a double, truncated toward zero and saturated (NaN -> 0): C++ leaves
// out-of-range conversions undefined.
template <class T>
T saturate(double v) {
  if (std::isnan(v)) return T(0);
  v = std::trunc(v);
  if (v <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return T(v);
}

void cast(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const bool from_float = is_float(x.dtype);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double v = from_float ? x.get(i) : double(x.get_int(i));
    const int64_t iv = from_float ? 0 : x.get_int(i);
    switch (y.dtype) {
      case DType::F32: y.data<float>()[i] = float(v); break;
      case DType::F64: y.data<double>()[i] = v; break;
      case DType::Bool: y.data<uint8_t>()[i] = v != 0.0; break;
      // integer -> integer wraps (two's complement), as a C cast; float -> integer truncates
      case DType::I64: y.data<int64_t>()[i] = from_float ? saturate<int64_t>(v) : iv; break;
      case DType::I32: y.data<int32_t>()[i] = from_float ? saturate<int32_t>(v) : int32_t(uint32_t(uint64_t(iv))); break;
      case DType::I8: y.data<int8_t>()[i] = from_float ? saturate<int8_t>(v) : int8_t(uint8_t(uint64_t(iv))); break;
      case DType::U8: y.data<uint8_t>()[i] = from_float ? saturate<uint8_t>(v) : uint8_t(uint64_t(iv)); break;
      default: throw Unsupported(cat("node '", n.name, "' (Cast): dtype ", dtype_name(y.dtype)));
    }
  }
}

void slice(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const std::vector<int64_t> first = n.ints("locus.starts"), step = n.ints("locus.steps");
  const std::vector<int64_t> xs = strides_of(x.shape);
  const size_t esize = dtype_size(x.dtype), r = y.shape.size();
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (size_t d = r; d-- > 0;) {
      off += (first[d] + (rem % y.shape[d]) * step[d]) * xs[d];
      rem /= y.shape[d];
    }
    std::memcpy(y.bytes.data() + size_t(i) * esize, x.bytes.data() + size_t(off) * esize, esize);
  }
}

void sqrt_of(const Node& n, const Inputs& in, Tensor& y) {
  const float* xd = in[0]->data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = float(std::sqrt(double(xd[i])));
}

void pow_of(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const Tensor& e = *in[1];
  const auto se = broadcast_strides(e.shape, y.shape);
  for (int64_t i = 0; i < y.numel(); ++i)
    y.data<float>()[i] = float(std::pow(double(x.data<float>()[i]), e.get(broadcast_offset(i, y.shape, se))));
}

void reduce_mean(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const std::vector<int64_t> axes = n.ints("axes");
  std::vector<bool> reduced(x.shape.size(), false);
  for (int64_t a : axes) reduced[size_t(a)] = true;
  // each input element adds to the output element with its reduced coordinates at 0
  Shape kept = x.shape;
  int64_t count = 1;
  for (size_t d = 0; d < kept.size(); ++d)
    if (reduced[d]) count *= kept[d], kept[d] = 1;
  const std::vector<int64_t> ks = strides_of(kept);
  std::vector<double> acc(size_t(y.numel()), 0.0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (size_t d = x.shape.size(); d-- > 0;) {
      if (!reduced[d]) off += (rem % x.shape[d]) * ks[d];
      rem /= x.shape[d];
    }
    acc[size_t(off)] += x.data<float>()[i];
  }
  for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] = float(acc[size_t(i)] / double(count));
}

void transpose(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const std::vector<int64_t> perm = n.ints("perm");
  const std::vector<int64_t> xs = strides_of(x.shape);
  const size_t esize = dtype_size(x.dtype), r = y.shape.size();
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (size_t d = r; d-- > 0;) {  // output axis d is input axis perm[d]
      off += (rem % y.shape[d]) * xs[size_t(perm[d])];
      rem /= y.shape[d];
    }
    std::memcpy(y.bytes.data() + size_t(i) * esize, x.bytes.data() + size_t(off) * esize, esize);
  }
}

void resize(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const size_t r = x.shape.size();
  const std::vector<float> scales = n.floats("locus.scales");
  std::vector<ResizeTaps> taps;
  for (size_t d = 0; d < r; ++d) taps.push_back(resize_taps(n, x.shape[d], y.shape[d], scales[d]));
  const std::vector<int64_t> xs = strides_of(x.shape);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  std::vector<int64_t> idx(r);
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t rem = i;
    for (size_t d = r; d-- > 0;) {
      idx[d] = rem % y.shape[d];
      rem /= y.shape[d];
    }
    // every corner of the interpolation cell: bit d of `corner` picks i1 on axis d
    double acc = 0;
    for (uint32_t corner = 0; corner < (1u << r); ++corner) {
      double weight = 1;
      int64_t off = 0;
      for (size_t d = 0; d < r && weight != 0; ++d) {
        const ResizeTaps& t = taps[d];
        const size_t o = size_t(idx[d]);
        const bool hi = (corner >> d) & 1u;
        weight *= hi ? double(t.w[o]) : 1.0 - double(t.w[o]);
        off += (hi ? t.i1[o] : t.i0[o]) * xs[d];
      }
      if (weight != 0) acc += weight * double(xd[off]);
    }
    yd[i] = float(acc);
  }
}

void conv_transpose(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const Tensor& w = *in[1];
  const Tensor* b = in.size() > 2 ? in[2] : nullptr;
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = y.shape[1], OH = y.shape[2], OW = y.shape[3];
  const int64_t G = n.i("group", 1), Cg = C / G, OCg = OC / G, KH = w.shape[2], KW = w.shape[3];
  const auto st = n.ints("strides"), dil = n.ints("dilations"), pads = n.ints("pads");
  const std::string act = n.s("locus.activation", "");
  const float lo = n.f("locus.activation_min", -std::numeric_limits<float>::infinity());
  const float hi = n.f("locus.activation_max", std::numeric_limits<float>::infinity());
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  std::vector<double> acc(size_t(OH * OW));
  for (int64_t ni = 0; ni < N; ++ni)
    for (int64_t oc = 0; oc < OC; ++oc) {
      const int64_t g = oc / OCg, ocg = oc % OCg;
      std::fill(acc.begin(), acc.end(), b ? double(b->data<float>()[oc]) : 0.0);
      // every input pixel scatters its kernel window into the output
      for (int64_t icg = 0; icg < Cg; ++icg) {
        const int64_t ic = g * Cg + icg;
        for (int64_t ih = 0; ih < H; ++ih)
          for (int64_t iw = 0; iw < W; ++iw) {
            const double v = xd[((ni * C + ic) * H + ih) * W + iw];
            for (int64_t kh = 0; kh < KH; ++kh) {
              const int64_t oh = ih * st[0] - pads[0] + kh * dil[0];
              if (oh < 0 || oh >= OH) continue;
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ow = iw * st[1] - pads[1] + kw * dil[1];
                if (ow < 0 || ow >= OW) continue;
                acc[size_t(oh * OW + ow)] += v * double(wd[((ic * OCg + ocg) * KH + kh) * KW + kw]);
              }
            }
          }
      }
      float* yd = y.data<float>() + (ni * OC + oc) * OH * OW;
      for (int64_t i = 0; i < OH * OW; ++i) {
        float v = float(acc[size_t(i)]);
        if (act == "relu") v = v < 0.f ? 0.f : v;
        else if (act == "clip") v = std::min(std::max(v, lo), hi);
        else if (!act.empty()) v = mobile_activation(n, act, v);
        yd[i] = v;
      }
    }
}

}  // namespace

void register_mobile_ops(EvalRegistry& r) {
  r.add({"HardSigmoid", "reference hard_sigmoid", hard_sigmoid});
  r.add({"HardSwish", "reference hard_swish", hard_swish});
  r.add({"Sigmoid", "reference sigmoid", sigmoid});
  r.add({"Cast", "reference cast", cast});
  r.add({"Slice", "reference slice (strided copy)", slice});
  r.add({"Transpose", "reference transpose", transpose});
  r.add({"Sqrt", "reference sqrt", sqrt_of});
  r.add({"Pow", "reference pow", pow_of});
  r.add({"ReduceMean", "reference reduce_mean", reduce_mean});
  r.add({"Resize", "reference resize (nearest / linear)", resize});
  r.add({"ConvTranspose", "reference conv_transpose (scatter, double accumulation)", conv_transpose});
}

}  // namespace locus::eval::detail
