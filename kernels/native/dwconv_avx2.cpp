// f32_dwconv_avx2: depthwise-convolution micro-kernel for one output pixel, vectorised over
// channels with AVX2+FMA. Compiled with -mavx2 -mfma; selected at run time by conv2d_nhwc.cpp.
//
// Runs of 4 output pixels are computed together per 16- or 8-channel block (block_px), so each
// tap's weights are loaded once per 4 pixels. Single pixels (run remainders, borders): the tap sum
// is a chain of dependent FMAs (4-cycle latency), so each channel block keeps at least four
// independent accumulators: 32 channels use four vectors; 16 and 8 channels split the taps into
// even/odd partial sums; the tail (C % 8) uses masked loads.
// "f32-dwconv-16c4p-avx2" (block_px: 16 channels x 4 pixels). A register-blocked 3x3 form (8
// channels x 4 pixels, the 9 weights in registers, as AVX-512's rb_run) was tried and measured 7-35%
// slower inside MobileNetV2 (docs/benchmarks.md), so there is none here.
#include <immintrin.h>

#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/epilogue_vec.h"

namespace locus::kernels {
namespace {

inline __m256i tail_mask(int64_t n) {  // lanes [0, n) set, 0 < n < 8
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), idx);
}

// The epilogue on one vector: the clamp, then (POST) the post activation (epilogue_vec.h). The
// kernels are instantiated for both, so the clamp-only path carries no post code (its constants
// and branches cost the slide form about 10%).
template <bool POST>
struct Clamp {
  bool on;
  __m256 lo, hi;
  ActKind post = ActKind::None;
  float alpha = 0.f, beta = 0.f;
  // v second: max/min return their second operand when either is NaN, so NaN passes through.
  __m256 operator()(__m256 v) const {
    v = on ? _mm256_min_ps(hi, _mm256_max_ps(lo, v)) : v;
    if constexpr (POST) v = epi_post(v, post, alpha, beta);
    return v;
  }
};

// Channels [c, c + 8 * NV). NT > 0 fixes the tap count at compile time (loop fully unrolled).
template <int NT, int NV, class CL>
inline void block(int64_t C, int64_t c, int64_t off, const float* const* taps, int64_t ntaps,
                  const float* __restrict w, const float* __restrict bias, float* __restrict out,
                  const CL& clamp) {
  if constexpr (NT > 0) ntaps = NT;
  constexpr int NP = NV >= 4 ? 1 : 2;  // partial sums per vector
  __m256 acc[NP][NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    acc[0][v] = _mm256_loadu_ps((bias ? bias : out) + c + 8 * v);
    if constexpr (NP == 2) acc[1][v] = _mm256_setzero_ps();
  }
  int64_t t = 0;
#pragma GCC unroll 32
  for (; t + NP <= ntaps; t += NP) {
#pragma GCC unroll 2
    for (int p = 0; p < NP; ++p) {
      const float* x = taps[t + p] + off + c;
      const float* wp = w + (t + p) * C + c;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        acc[p][v] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * v), _mm256_loadu_ps(wp + 8 * v),
                                    acc[p][v]);
    }
  }
  if (NP == 2 && t < ntaps) {
    const float* x = taps[t] + off + c;
    const float* wp = w + t * C + c;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[0][v] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * v), _mm256_loadu_ps(wp + 8 * v),
                                  acc[0][v]);
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    __m256 r = acc[0][v];
    if constexpr (NP == 2) r = _mm256_add_ps(r, acc[1][v]);
    _mm256_storeu_ps(out + c + 8 * v, clamp(r));
  }
}

// Channels [c, C) with C - c < 8, through masked loads and stores.
template <class CL>
inline void tail(int64_t C, int64_t c, int64_t off, const float* const* taps, int64_t ntaps,
                 const float* __restrict w, const float* __restrict bias, float* __restrict out,
                 const CL& clamp) {
  const __m256i m = tail_mask(C - c);
  __m256 a0 = _mm256_maskload_ps((bias ? bias : out) + c, m), a1 = _mm256_setzero_ps();
  int64_t t = 0;
  for (; t + 2 <= ntaps; t += 2) {
    a0 = _mm256_fmadd_ps(_mm256_maskload_ps(taps[t] + off + c, m),
                         _mm256_maskload_ps(w + t * C + c, m), a0);
    a1 = _mm256_fmadd_ps(_mm256_maskload_ps(taps[t + 1] + off + c, m),
                         _mm256_maskload_ps(w + (t + 1) * C + c, m), a1);
  }
  if (t < ntaps)
    a0 = _mm256_fmadd_ps(_mm256_maskload_ps(taps[t] + off + c, m),
                         _mm256_maskload_ps(w + t * C + c, m), a0);
  _mm256_maskstore_ps(out + c, m, clamp(_mm256_add_ps(a0, a1)));
}

// P output pixels (pixel p's taps at taps[t] + off + p * step, its output at out + p * C) for
// channels [c, c + 8 * NV): each tap's weights are loaded once for the P pixels (1.25 loads per FMA
// for P = 4 instead of 2), and the P x NV accumulators are independent chains.
template <int NT, int NV, int P, class CL>
inline void block_px(int64_t C, int64_t c, int64_t off, int64_t step, const float* const* taps, int64_t ntaps,
                     const float* __restrict w, const float* __restrict bias, float* __restrict out,
                     const CL& clamp) {
  if constexpr (NT > 0) ntaps = NT;
  __m256 acc[P][NV];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[p][v] = _mm256_loadu_ps((bias ? bias : out + p * C) + c + 8 * v);
#pragma GCC unroll 25
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* x = taps[t] + off + c;
    __m256 wv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) wv[v] = _mm256_loadu_ps(w + t * C + c + 8 * v);
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[p][v] = _mm256_fmadd_ps(_mm256_loadu_ps(x + p * step + 8 * v), wv[v], acc[p][v]);
  }
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + p * C + c + 8 * v, clamp(acc[p][v]));
}

template <int NT, class CL>
void dwconv_with(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps, int64_t step,
                 const float* w, const float* bias, float* out, const CL& clamp) {
  constexpr int64_t P = 4;
  int64_t i = 0;
  // Runs of 4 pixels: 16- and 8-channel blocks share each tap's weights across the pixels.
  for (; i + P <= npix && C >= 8; i += P, out += P * C) {
    const int64_t off = i * step;
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) block_px<NT, 2, P>(C, c, off, step, taps, ntaps, w, bias, out, clamp);
    if (c + 8 <= C) block_px<NT, 1, P>(C, c, off, step, taps, ntaps, w, bias, out, clamp), c += 8;
    if (c < C)
      for (int64_t p = 0; p < P; ++p) tail(C, c, off + p * step, taps, ntaps, w, bias, out + p * C, clamp);
  }
  for (; i < npix; ++i, out += C) {
    const int64_t off = i * step;
    int64_t c = 0;
    for (; c + 32 <= C; c += 32) block<NT, 4>(C, c, off, taps, ntaps, w, bias, out, clamp);
    if (c + 16 <= C) block<NT, 2>(C, c, off, taps, ntaps, w, bias, out, clamp), c += 16;
    if (c + 8 <= C) block<NT, 1>(C, c, off, taps, ntaps, w, bias, out, clamp), c += 8;
    if (c < C) tail(C, c, off, taps, ntaps, w, bias, out, clamp);
  }
}

template <int NT>
void dwconv(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps, int64_t step,
            const float* w, const float* bias, float* out, const Epilogue* ep) {
  const __m256 lo = _mm256_set1_ps(ep ? ep->lo : 0.f), hi = _mm256_set1_ps(ep ? ep->hi : 0.f);
  if (ep && ep->post != ActKind::None)
    return dwconv_with<NT>(C, npix, taps, ntaps, step, w, bias, out,
                           Clamp<true>{ep->clamp, lo, hi, ep->post, ep->alpha, ep->beta});
  dwconv_with<NT>(C, npix, taps, ntaps, step, w, bias, out, Clamp<false>{ep && ep->clamp, lo, hi});
}

}  // namespace

void f32_dwconv_avx2(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps,
                     int64_t step, const float* w, const float* bias, float* out,
                     const Epilogue* ep) {
  switch (ntaps) {
    case 9: return dwconv<9>(C, npix, taps, ntaps, step, w, bias, out, ep);
    case 25: return dwconv<25>(C, npix, taps, ntaps, step, w, bias, out, ep);
    default: return dwconv<0>(C, npix, taps, ntaps, step, w, bias, out, ep);
  }
}

}  // namespace locus::kernels
