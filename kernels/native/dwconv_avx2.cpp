// f32_dwconv_avx2: depthwise-convolution micro-kernel for one output pixel, vectorised over
// channels with AVX2+FMA. Compiled with -mavx2 -mfma; selected at run time by conv2d_nhwc.cpp.
//
// 3x3 runs whose taps are three kernel rows of three columns (dwconv3x3_sliding_stride, stride 1 or
// 2) take the sliding form (slide_run): 16 channels x 4 pixels, each input column loaded once per
// kernel row. Other runs of 4 output pixels are computed together per 16- or 8-channel block
// (block_px), so each tap's weights are loaded once per 4 pixels. Single pixels (run remainders,
// borders): the tap sum is a chain of dependent FMAs (4-cycle latency), so each channel block keeps
// at least four independent accumulators: 32 channels use four vectors; 16 and 8 channels split the
// taps into even/odd partial sums; the tail (C % 8) uses masked loads.
// "f32-dwconv-16c4p-avx2" (16 channels x 4 pixels). A register-blocked 3x3 form (8 channels x 4
// pixels, the 9 weights in registers, as AVX-512's rb_run) was tried and measured 7-35% slower
// inside MobileNetV2 (docs/benchmarks.md): its 4 accumulators are 4 dependent FMA chains.
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

// The accumulators of P pixels x NV vectors (channels [c, c + 8 NV), pixel p's output at out + p * C):
// px_start sets them to the bias, or without one to the output (multi-pass accumulation); px_finish
// stores them through the epilogue.
template <int P, int NV>
__attribute__((always_inline)) inline void px_start(__m256 (&acc)[P][NV], int64_t C, int64_t c,
                                                    const float* __restrict bias, const float* __restrict out) {
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[p][v] = _mm256_loadu_ps((bias ? bias : out + p * C) + c + 8 * v);
}
template <int P, int NV, class CL>
__attribute__((always_inline)) inline void px_finish(__m256 (&acc)[P][NV], int64_t C, int64_t c, float* __restrict out,
                                                     const CL& clamp) {
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + p * C + c + 8 * v, clamp(acc[p][v]));
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
  px_start(acc, C, c, bias, out);
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
  px_finish(acc, C, c, out, clamp);
}

// Sliding-window form of a 3x3 kernel whose taps are rows of three columns d floats apart, with
// the pixel step S * d (S = 1 or 2): in each kernel row, input column j of the run serves output
// pixel p = (j - kw) / S for every kw with S | j - kw, so each input vector is loaded once per kernel
// row (P * S + 3 - S loads instead of 3 P) and the row's three weights once per P pixels. For 16
// channels x 4 pixels at stride 1: 6 weight and 12 input loads per 24 FMAs, against block_px's 30.
// The accumulation order per output (kh, then kw ascending) is block_px's: the same results bit for
// bit. Channels [c, c + 8 * NV); registers: P x NV accumulators, 3 x NV weights, NV inputs.
template <int S, int NV, int P, class CL>
__attribute__((always_inline)) inline void slide(int64_t C, int64_t c, int64_t off, int64_t d,
                                                 const float* const* taps, const float* __restrict w,
                                                 const float* __restrict bias, float* __restrict out,
                                                 const CL& clamp) {
  constexpr int K = 3, J = P * S + K - S;  // input columns per kernel row
  __m256 acc[P][NV];
  px_start(acc, C, c, bias, out);
#pragma GCC unroll 3
  for (int kh = 0; kh < K; ++kh) {
    const float* xp = taps[kh * K] + off + c;
    __m256 wv[K][NV];
#pragma GCC unroll 3
    for (int kw = 0; kw < K; ++kw)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) wv[kw][v] = _mm256_loadu_ps(w + (kh * K + kw) * C + c + 8 * v);
#pragma GCC unroll 12
    for (int j = 0; j < J; ++j) {
      __m256 x[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) x[v] = _mm256_loadu_ps(xp + 8 * v);
      // One running pointer per kernel row (as the AVX-512 slide form: GCC would otherwise keep every
      // row + j * d in a register or on the stack).
      xp += d;
      asm("" : "+r"(xp));
#pragma GCC unroll 3
      for (int kw = 0; kw < K; ++kw) {
        const int q = j - kw;
        if (q < 0 || q % S != 0 || q / S >= P) continue;
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[q / S][v] = _mm256_fmadd_ps(x[v], wv[kw][v], acc[q / S][v]);
      }
    }
  }
  px_finish(acc, C, c, out, clamp);
}

// All C channels of P pixels in the sliding form: 16-channel blocks, an 8-channel block, then the
// C % 8 tail pixel by pixel (masked, as block_px leaves it).
template <int S, int P, class CL>
void slide_pixels(int64_t C, int64_t off, int64_t d, const float* const* taps, const float* w, const float* bias,
                  float* out, const CL& clamp) {
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) slide<S, 2, P>(C, c, off, d, taps, w, bias, out, clamp);
  if (c + 8 <= C) slide<S, 1, P>(C, c, off, d, taps, w, bias, out, clamp), c += 8;
  if (c < C)
    for (int64_t p = 0; p < P; ++p) tail(C, c, off + p * S * d, taps, 9, w, bias, out + p * C, clamp);
}

template <int NT, class CL>
void dwconv_with(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps, int64_t step,
                 const float* w, const float* bias, float* out, const CL& clamp) {
  constexpr int64_t P = 4;
  int64_t i = 0;
  // 3x3 runs of 4 pixels in the sliding form (dwconv3x3_forms); the last npix % 4 pixels one at a
  // time below, as before (the same results bit for bit). Paired against block_px inside
  // MobileNetV2 on a Zen 3 core, the whole network took 0.972-0.978 of the time at 1 thread,
  // 0.970-0.983 at 2, 0.974-0.975 at batch 8.
  if constexpr (NT == 9) {
    const int S = C >= 8 && dwconv3x3_forms() ? dwconv3x3_sliding_stride(taps, ntaps, step, npix) : 0;
    if (S == 1)
      for (; i + P <= npix; i += P, out += P * C) slide_pixels<1, P>(C, i * step, step, taps, w, bias, out, clamp);
    else if (S == 2)
      for (; i + P <= npix; i += P, out += P * C) slide_pixels<2, P>(C, i * step, step / 2, taps, w, bias, out, clamp);
  }
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
