// Reference kernels of the compute ops (float32, NCHW, accumulation in double): Conv (with the
// fused relu / clip activation), MaxPool, AveragePool, GlobalAveragePool, BatchNormalization,
// Relu, Clip, Softmax, Gemm, MatMul.
#include <algorithm>
#include <cmath>
#include <limits>

#include "graph/eval/eval_internal.h"

namespace locus::eval::detail {
namespace {

const Tensor* optional_input(const Inputs& in, size_t k) { return k < in.size() ? in[k] : nullptr; }

// Number of taps start + j * step (j < k) inside [lo, hi).
int64_t taps_inside(int64_t start, int64_t k, int64_t step, int64_t lo, int64_t hi) {
  int64_t count = 0;
  for (int64_t j = 0; j < k; ++j) {
    int64_t p = start + j * step;
    count += p >= lo && p < hi;
  }
  return count;
}

}  // namespace

float mobile_activation(const Node& n, const std::string& act, float v) {
  if (std::isnan(v)) return v;
  const double x = v;
  if (act == "hardsigmoid")
    return float(std::max(0.0, std::min(1.0, double(n.f("locus.activation_alpha", 0.2f)) * x +
                                                  double(n.f("locus.activation_beta", 0.5f)))));
  if (act == "hardswish") return float(x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5)));
  if (act == "sigmoid") return float(1.0 / (1.0 + std::exp(-x)));
  throw Unsupported(cat("node '", n.name, "': unknown fused activation '", act, "'"));
}

Window window_of(const Node& n) {
  auto k = n.ints("kernel_shape"), s = n.ints("strides"), p = n.ints("pads");
  auto d = n.ints("dilations", {1, 1});
  return Window{k[0], k[1], s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1]};
}

void conv(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const Tensor& w = *in[1];
  const Tensor* b = optional_input(in, 2);
  // locus.residual: input 3 (the output's shape) is added before the activation, in float as the
  // unfused Add would (the composition conv -> Add -> activation).
  const Tensor* r = n.i("locus.residual", 0) ? optional_input(in, 3) : nullptr;
  const float* rd = r ? r->data<float>() : nullptr;
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = w.shape[0], Cg = w.shape[1];
  const int64_t OH = y.shape[2], OW = y.shape[3];
  const int64_t G = n.i("group", 1), OCg = OC / G;
  const Window g = window_of(n);
  const std::string act = n.s("locus.activation", "");
  const float lo = n.f("locus.activation_min", -std::numeric_limits<float>::infinity());
  const float hi = n.f("locus.activation_max", std::numeric_limits<float>::infinity());
  const float* xd = x.data<float>();
  const float* wd = w.data<float>();
  float* yd = y.data<float>();
  for (int64_t ni = 0; ni < N; ++ni)
    for (int64_t oc = 0; oc < OC; ++oc) {
      const int64_t c0 = (oc / OCg) * Cg;  // first input channel of this output channel's group
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b ? double(b->data<float>()[oc]) : 0.0;
          for (int64_t ic = 0; ic < Cg; ++ic)
            for_each_tap(g, oh, ow, H, W, [&](int64_t kh, int64_t kw, int64_t ih, int64_t iw) {
              acc += double(xd[((ni * C + c0 + ic) * H + ih) * W + iw]) *
                     double(wd[((oc * Cg + ic) * g.kh + kh) * g.kw + kw]);
            });
          float v = float(acc);
          if (rd) v += rd[((ni * OC + oc) * OH + oh) * OW + ow];
          if (act == "relu") v = v < 0.f ? 0.f : v;  // max(0, v), NaN stays NaN
          else if (act == "clip") v = std::min(std::max(v, lo), hi);
          else if (!act.empty()) v = mobile_activation(n, act, v);
          yd[((ni * OC + oc) * OH + oh) * OW + ow] = v;
        }
    }
}

void max_pool(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const int64_t NC = x.shape[0] * x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OH = y.shape[2], OW = y.shape[3];
  const Window g = window_of(n);
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  for (int64_t p = 0; p < NC; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        // A window that holds no input element (possible only with dilation) yields lowest().
        float m = std::numeric_limits<float>::lowest();
        for_each_tap(g, oh, ow, H, W, [&](int64_t, int64_t, int64_t ih, int64_t iw) {
          // NaN propagates: a NaN tap gives NaN, whatever its place in the window (see
          // kernels/native/pool2d_nhwc.cpp for why).
          const float v = xd[(p * H + ih) * W + iw];
          if (std::isnan(v) || std::isnan(m)) m = std::numeric_limits<float>::quiet_NaN();
          else m = std::max(m, v);
        });
        yd[(p * OH + oh) * OW + ow] = m;
      }
}

void average_pool(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const int64_t NC = x.shape[0] * x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OH = y.shape[2], OW = y.shape[3];
  const Window g = window_of(n);
  const bool include_pad = n.i("count_include_pad", 0) != 0;
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t h0 = oh * g.sh - g.pt, w0 = ow * g.sw - g.pl;
      // Divisor: taps inside the input, or with count_include_pad inside the explicitly padded
      // input; taps that ceil_mode adds beyond the pads never count.
      const int64_t count = include_pad ? taps_inside(h0, g.kh, g.dh, -g.pt, H + g.pb) *
                                              taps_inside(w0, g.kw, g.dw, -g.pl, W + g.pr)
                                        : taps_inside(h0, g.kh, g.dh, 0, H) * taps_inside(w0, g.kw, g.dw, 0, W);
      for (int64_t p = 0; p < NC; ++p) {
        double sum = 0;
        for_each_tap(g, oh, ow, H, W, [&](int64_t, int64_t, int64_t ih, int64_t iw) { sum += xd[(p * H + ih) * W + iw]; });
        yd[(p * OH + oh) * OW + ow] = float(sum / double(count));
      }
    }
}

void global_average_pool(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const int64_t NC = x.shape[0] * x.shape[1], HW = x.shape[2] * x.shape[3];
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  for (int64_t p = 0; p < NC; ++p) {
    double sum = 0;
    for (int64_t i = 0; i < HW; ++i) sum += xd[p * HW + i];
    yd[p] = float(sum / double(HW));
  }
}

void batch_norm(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& x = *in[0];
  const float *scale = in[1]->data<float>(), *bias = in[2]->data<float>();
  const float *mean = in[3]->data<float>(), *var = in[4]->data<float>();
  const double eps = n.f("epsilon", 1e-5f);
  const int64_t N = x.shape[0], C = x.shape[1], inner = dims_product(x.shape, 2, x.shape.size());
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  for (int64_t ni = 0; ni < N; ++ni)
    for (int64_t c = 0; c < C; ++c) {
      const double k = double(scale[c]) / std::sqrt(double(var[c]) + eps);
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (ni * C + c) * inner + i;
        yd[at] = float((double(xd[at]) - double(mean[c])) * k + double(bias[c]));
      }
    }
}

void relu(const Node& n, const Inputs& in, Tensor& y) {
  const float* xd = in[0]->data<float>();
  float* yd = y.data<float>();
  // max(0, x) with NaN propagating (as ONNX Runtime): relu(NaN) = NaN, relu(-inf) = 0.
  for (int64_t i = 0; i < y.numel(); ++i) yd[i] = xd[i] < 0.f ? 0.f : xd[i];
}

void clip(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor* tmin = optional_input(in, 1);
  const Tensor* tmax = optional_input(in, 2);
  const float lo = tmin ? tmin->data<float>()[0] : std::numeric_limits<float>::lowest();
  const float hi = tmax ? tmax->data<float>()[0] : std::numeric_limits<float>::max();
  const float* xd = in[0]->data<float>();
  float* yd = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) yd[i] = std::min(std::max(xd[i], lo), hi);
}

void softmax(const Node& n, const Inputs& in, Tensor& y) {
  const Shape& s = in[0]->shape;
  const size_t axis = size_t(n.i("axis", 0));
  // legacy: rows of the 2-D coercion [prod(dims < axis), prod(dims >= axis)];
  // otherwise: vectors along `axis` only, with `inner` elements between consecutive entries.
  const bool legacy = n.i("legacy", 0) != 0;
  const int64_t outer = dims_product(s, 0, axis);
  const int64_t len = legacy ? dims_product(s, axis, s.size()) : s[axis];
  const int64_t inner = legacy ? 1 : dims_product(s, axis + 1, s.size());
  const float* xd = in[0]->data<float>();
  float* yd = y.data<float>();
  std::vector<double> e(size_t(std::max<int64_t>(len, 0)));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * len * inner + i;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < len; ++j) m = std::max(m, double(xd[base + j * inner]));
      double sum = 0;
      for (int64_t j = 0; j < len; ++j) sum += e[size_t(j)] = std::exp(double(xd[base + j * inner]) - m);
      for (int64_t j = 0; j < len; ++j) yd[base + j * inner] = float(e[size_t(j)] / sum);
    }
}

void gemm(const Node& n, const Inputs& in, Tensor& y) {
  const Tensor& a = *in[0];
  const Tensor& b = *in[1];
  const Tensor* c = optional_input(in, 2);
  const bool ta = n.i("transA", 0) != 0, tb = n.i("transB", 0) != 0;
  const double alpha = n.f("alpha", 1.f), beta = n.f("beta", 1.f);
  const int64_t M = y.shape[0], N = y.shape[1], K = ta ? a.shape[0] : a.shape[1];
  const float *ad = a.data<float>(), *bd = b.data<float>();
  std::vector<int64_t> cst = c ? broadcast_strides(c->shape, y.shape) : std::vector<int64_t>{};
  float* yd = y.data<float>();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(ad[ta ? k * M + m : m * K + k]) * double(bd[tb ? j * K + k : k * N + j]);
      double v = alpha * acc;
      if (c) v += beta * double(c->data<float>()[m * cst[0] + j * cst[1]]);
      yd[m * N + j] = float(v);
    }
}

void matmul(const Node& n, const Inputs& in, Tensor& y) {
  Shape as = in[0]->shape, bs = in[1]->shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  // Batch dimensions broadcast; offsets are counted in whole matrices.
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  Shape batch(std::max(a_batch.size(), b_batch.size()), 1);
  for (size_t i = 0; i < batch.size(); ++i) {
    const size_t ia = i + a_batch.size(), ib = i + b_batch.size();  // aligned from the right
    const int64_t da = ia >= batch.size() ? a_batch[ia - batch.size()] : 1;
    const int64_t db = ib >= batch.size() ? b_batch[ib - batch.size()] : 1;
    batch[i] = da == 1 ? db : da;
  }
  const auto sa = broadcast_strides(a_batch, batch), sb = broadcast_strides(b_batch, batch);
  const int64_t batches = dims_product(batch, 0, batch.size());
  const float *ad = in[0]->data<float>(), *bd = in[1]->data<float>();
  float* yd = y.data<float>();
  for (int64_t t = 0; t < batches; ++t) {
    const float* am = ad + broadcast_offset(t, batch, sa) * M * K;
    const float* bm = bd + broadcast_offset(t, batch, sb) * K * N;
    float* ym = yd + t * M * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += double(am[m * K + k]) * double(bm[k * N + j]);
        ym[m * N + j] = float(acc);
      }
  }
}

void register_nn_ops(EvalRegistry& r) {
  r.add({"Conv", "reference conv (direct, double accumulation)", conv});
  r.add({"MaxPool", "reference max_pool", max_pool});
  r.add({"AveragePool", "reference average_pool", average_pool});
  r.add({"GlobalAveragePool", "reference global_average_pool", global_average_pool});
  r.add({"BatchNormalization", "reference batch_norm", batch_norm});
  r.add({"Relu", "reference relu", relu});
  r.add({"Clip", "reference clip", clip});
  r.add({"Softmax", "reference softmax", softmax});
  r.add({"Gemm", "reference gemm", gemm});
  r.add({"MatMul", "reference matmul", matmul});
}

}  // namespace locus::eval::detail
