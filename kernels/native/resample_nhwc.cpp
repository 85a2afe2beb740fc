// resize_nhwc and conv_transpose_nhwc: see resample_nhwc.h. Both are parallel over output rows
// (n, oh) and vectorise over the channels of a pixel.
#include "kernels/native/resample_nhwc.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "graph/error.h"

namespace locus::kernels {
namespace {

// Calls row(r) for every r in [0, rows), in parallel (threads) when the work is large enough.
template <class F>
void for_rows(int64_t rows, int64_t work, int threads, F&& row) {
  if (rows > 1 && threads > 1 && !omp_in_parallel() && work >= (int64_t(1) << 15)) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < rows; ++r) row(r);
  } else {
    for (int64_t r = 0; r < rows; ++r) row(r);
  }
}

}  // namespace

void resize_nhwc(const ResizePlan& p, const float* x, float* y) {
  const int64_t C = p.C;
  for_rows(p.N * p.OH, p.N * p.OH * p.OW * C, omp_get_max_threads(), [&](int64_t r) {
    const int64_t n = p.n_src.empty() ? r / p.OH : p.n_src[size_t(r / p.OH)], oh = r % p.OH;
    float* out = y + r * p.OW * C;
    const float* row0 = x + (n * p.H + p.h0[size_t(oh)]) * p.W * C;
    if (p.nearest) {
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const float* src = row0 + p.w0[size_t(ow)] * C;
        if (p.c_src.empty()) std::memcpy(out + ow * C, src, size_t(C) * sizeof(float));
        else for (int64_t c = 0; c < C; ++c) out[ow * C + c] = src[p.c_src[size_t(c)]];
      }
      return;
    }
    const float* row1 = x + (n * p.H + p.h1[size_t(oh)]) * p.W * C;
    const float b = p.hw[size_t(oh)], a = 1.f - b;
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const float d = p.ww[size_t(ow)], c1 = 1.f - d;
      const float* x00 = row0 + p.w0[size_t(ow)] * C;
      const float* x01 = row0 + p.w1[size_t(ow)] * C;
      const float* x10 = row1 + p.w0[size_t(ow)] * C;
      const float* x11 = row1 + p.w1[size_t(ow)] * C;
      float* o = out + ow * C;
      for (int64_t c = 0; c < C; ++c) o[c] = a * (c1 * x00[c] + d * x01[c]) + b * (c1 * x10[c] + d * x11[c]);
    }
  });
}

PackedConvTranspose pack_conv_transpose(const ConvTransposeShape& s, const float* w, const float* bias,
                                        const Activation& act, int threads) {
  LOCUS_CHECK(s.G >= 1 && s.C % s.G == 0 && s.OC % s.G == 0 && s.SH >= 1 && s.SW >= 1 && s.DH >= 1 && s.DW >= 1,
              "conv_transpose: bad groups, strides or dilations");
  PackedConvTranspose p;
  p.s = s;
  p.act = act;
  p.threads = std::max(1, threads);
  const int64_t Cg = s.C / s.G, OCg = s.OC / s.G, taps = s.KH * s.KW, cols = taps * OCg;
  std::vector<float> wg(size_t(Cg * cols));
  for (int64_t g = 0; g < s.G; ++g) {
    // rows: the group's input channels; columns (kh, kw, o), so that a tap's OCg outputs are contiguous
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t o = 0; o < OCg; ++o)
        for (int64_t t = 0; t < taps; ++t)
          wg[size_t(c * cols + t * OCg + o)] = w[((g * Cg + c) * OCg + o) * taps + t];
    p.b.push_back(pack_b(Cg, cols, wg.data(), cols, false));
  }
  p.bias.assign(size_t(s.OC), 0.f);
  if (bias) std::copy(bias, bias + s.OC, p.bias.begin());
  return p;
}

int64_t conv_transpose_scratch_floats(const PackedConvTranspose& p) {
  const ConvTransposeShape& s = p.s;
  return s.N * s.H * s.W * s.KH * s.KW * (s.OC / s.G);
}

void conv_transpose_nhwc(const PackedConvTranspose& p, const float* x, float* y, float* col) {
  const ConvTransposeShape& s = p.s;
  const int64_t Cg = s.C / s.G, OCg = s.OC / s.G, cols = s.KH * s.KW * OCg, M = s.N * s.H * s.W;
  // bias first, then every group adds its contributions
  for_rows(s.N * s.OH, s.N * s.OH * s.OW * s.OC, p.threads, [&](int64_t r) {
    float* out = y + r * s.OW * s.OC;
    for (int64_t ow = 0; ow < s.OW; ++ow) std::memcpy(out + ow * s.OC, p.bias.data(), size_t(s.OC) * sizeof(float));
  });
  for (int64_t g = 0; g < s.G; ++g) {
    // col[m, (kh, kw, o)] = sum_c x[m, g*Cg + c] * w[g*Cg + c, o, kh, kw]
    gemm_f32(M, x + g * Cg, s.C, p.b[size_t(g)], col, cols, nullptr, {}, false, p.threads);
    // each output pixel gathers the taps that land on it: no two rows write the same place
    for_rows(s.N * s.OH, s.N * s.OH * s.OW * cols / std::max<int64_t>(1, s.SH * s.SW), p.threads, [&](int64_t r) {
      const int64_t n = r / s.OH, oh = r % s.OH;
      float* out = y + r * s.OW * s.OC + g * OCg;
      for (int64_t kh = 0; kh < s.KH; ++kh) {
        const int64_t th = oh + s.PT - kh * s.DH;
        if (th < 0 || th % s.SH != 0 || th / s.SH >= s.H) continue;
        const int64_t ih = th / s.SH;
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          float* o = out + ow * s.OC;
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            const int64_t tw = ow + s.PL - kw * s.DW;
            if (tw < 0 || tw % s.SW != 0 || tw / s.SW >= s.W) continue;
            const float* src = col + ((n * s.H + ih) * s.W + tw / s.SW) * cols + (kh * s.KW + kw) * OCg;
            for (int64_t c = 0; c < OCg; ++c) o[c] += src[c];
          }
        }
      }
    });
  }
  if (p.act.kind != ActKind::None) activation_f32(p.act, y, y, s.N * s.OH * s.OW * s.OC);
}

}  // namespace locus::kernels
