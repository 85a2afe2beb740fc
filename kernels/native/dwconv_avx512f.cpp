// f32_dwconv_avx512f: depthwise-convolution micro-kernel for a run of output pixels, vectorised over
// channels with AVX-512F (compiled with -mavx512f -mavx2 -mfma; selected at run time when
// active_isa() == Isa::Avx512). Same contract as f32_dwconv_avx2 (dwconv_microkernel.h).
//
// Channels go in blocks of 64 (four zmm), then one block of 16, 32, 48 or 64 for the rest whose last
// vector is masked (__mmask16), so there is no scalar tail and no load outside [0, C) of any row.
// Pixels go in groups of P sharing each tap's weight loads (as block_px in dwconv_avx2.cpp): P = 8
// when C <= 32 (8 or 16 accumulators), else 4 (up to 16 accumulators + 4 weight vectors); the rest
// of a run in groups of 4, 2 and 1. A single pixel with fewer than four vectors splits the taps into
// even/odd partial sums so at least two FMA chains are in flight.
// "f32-dwconv-16c8p-avx512f": 3x3 runs of stride 1 with at least kDwRegisterBlockedMinC channels
// (dwconv3x3_sliding_stride) take the register-blocked form (rb_run below: 16 channels x 8 pixels per
// pass, the 9 weights in registers for a chunk of the run) unless set_dwconv3x3_forms(false);
// other 3x3 runs keep the 32-channel sliding form (slide_run), measured faster there.
// GCC 12's _mm512_max_ps / _mm512_min_ps expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/native/dwconv_microkernel.h"
#include "kernels/native/epilogue_vec.h"

namespace locus::kernels {
namespace {

// The epilogue on one vector: the clamp, then (POST) the post activation (epilogue_vec.h). The
// kernels are instantiated for both, so the clamp-only path carries no post code (its constants
// and branches cost the slide form about 10%).
template <bool POST>
struct Clamp {
  bool on;
  __m512 lo, hi;
  ActKind post = ActKind::None;
  float alpha = 0.f, beta = 0.f;
  // v second: max/min return their second operand when either is NaN, so NaN passes through.
  __m512 operator()(__m512 v) const {
    v = on ? _mm512_min_ps(hi, _mm512_max_ps(lo, v)) : v;
    if constexpr (POST) v = epi_post(v, post, alpha, beta);
    return v;
  }
};

// Vector v of a block of NV: the last one is masked when the block is the channel tail.
template <bool TAIL, int NV>
__attribute__((always_inline)) inline __m512 ld(const float* p, int v, __mmask16 m) {
  if (TAIL && v == NV - 1) return _mm512_maskz_loadu_ps(m, p);
  return _mm512_loadu_ps(p);
}
template <bool TAIL, int NV>
__attribute__((always_inline)) inline void st(float* p, int v, __mmask16 m, __m512 x) {
  if (TAIL && v == NV - 1)
    _mm512_mask_storeu_ps(p, m, x);
  else
    _mm512_storeu_ps(p, x);
}

// P output pixels (pixel p's taps at taps[t] + off + p * step, its output at out + p * C), channels
// [c, c + 16 * NV) (the last vector limited to mask m when TAIL). NT > 0 fixes the tap count.
template <int NT, int NV, int P, bool TAIL, class CL>
__attribute__((always_inline)) inline void block(int64_t C, int64_t c, int64_t off, int64_t step,
                                                 const float* const* taps, int64_t ntaps,
                                                 const float* __restrict w, const float* __restrict bias,
                                                 float* __restrict out, __mmask16 m, const CL& clamp) {
  if constexpr (NT > 0) ntaps = NT;
  constexpr int NP = P * NV >= 4 ? 1 : 2;  // partial sums (tap parity) per accumulator
  __m512 acc[NP][P][NV];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      acc[0][p][v] = ld<TAIL, NV>((bias ? bias : out + p * C) + c + 16 * v, v, m);
      if constexpr (NP == 2) acc[1][p][v] = _mm512_setzero_ps();
    }
  int64_t t = 0;
#pragma GCC unroll 25
  for (; t + NP <= ntaps; t += NP) {
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q) {
      const float* x = taps[t + q] + off + c;
      const float* wp = w + (t + q) * C + c;
      __m512 wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = ld<TAIL, NV>(wp + 16 * v, v, m);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          acc[q][p][v] = _mm512_fmadd_ps(ld<TAIL, NV>(x + p * step + 16 * v, v, m), wv[v], acc[q][p][v]);
    }
  }
  if constexpr (NP == 2) {
    if (t < ntaps) {
      const float* x = taps[t] + off + c;
      const float* wp = w + t * C + c;
      __m512 wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = ld<TAIL, NV>(wp + 16 * v, v, m);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          acc[0][p][v] = _mm512_fmadd_ps(ld<TAIL, NV>(x + p * step + 16 * v, v, m), wv[v], acc[0][p][v]);
    }
  }
  // A local copy: its bounds load once into registers (with x second, see Clamp, the bounds can
  // no longer be folded into vmaxps/vminps as memory operands, and the reference would reload them
  // per vector).
  const CL cl = clamp;
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512 r = acc[0][p][v];
      if constexpr (NP == 2) r = _mm512_add_ps(r, acc[1][p][v]);
      st<TAIL, NV>(out + p * C + c + 16 * v, v, m, cl(r));
    }
}

// All C channels of P pixels: 64-channel blocks, then one masked block of 16, 32, 48 or 64.
template <int NT, int P, class CL>
void pixels(int64_t C, int64_t off, int64_t step, const float* const* taps, int64_t ntaps, const float* w,
            const float* bias, float* out, const CL& clamp) {
  int64_t c = 0;
  for (; c + 64 < C; c += 64) block<NT, 4, P, false>(C, c, off, step, taps, ntaps, w, bias, out, 0, clamp);
  const int64_t r = C - c;  // 1..64
  const __mmask16 m = r % 16 ? __mmask16((1u << (r % 16)) - 1) : __mmask16(0xFFFF);
  switch ((r + 15) / 16) {
    case 1: return block<NT, 1, P, true>(C, c, off, step, taps, ntaps, w, bias, out, m, clamp);
    case 2: return block<NT, 2, P, true>(C, c, off, step, taps, ntaps, w, bias, out, m, clamp);
    case 3: return block<NT, 3, P, true>(C, c, off, step, taps, ntaps, w, bias, out, m, clamp);
    default: return block<NT, 4, P, true>(C, c, off, step, taps, ntaps, w, bias, out, m, clamp);
  }
}

template <int NT, int PM, class CL>
void run(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps, int64_t step, const float* w,
         const float* bias, float* out, const CL& clamp) {
  int64_t i = 0;
  for (; i + PM <= npix; i += PM) pixels<NT, PM>(C, i * step, step, taps, ntaps, w, bias, out + i * C, clamp);
  if constexpr (PM > 4) {
    if (i + 4 <= npix) pixels<NT, 4>(C, i * step, step, taps, ntaps, w, bias, out + i * C, clamp), i += 4;
  }
  if (i + 2 <= npix) pixels<NT, 2>(C, i * step, step, taps, ntaps, w, bias, out + i * C, clamp), i += 2;
  if (i < npix) pixels<NT, 1>(C, i * step, step, taps, ntaps, w, bias, out + i * C, clamp);
}

// Sliding-window form for a K x K kernel whose taps are rows of K columns d floats apart, with the
// pixel step S * d (S = 1 or 2; the interior runs of a stride-1 or stride-2 conv): in each kernel
// row, input column j of the run serves output pixel p = (j - kw) / S for every kw with S | j - kw,
// so each input vector is loaded once per kernel row (P * S + K - S loads instead of P * K). The
// accumulation order per output (kh, then kw ascending) is that of the per-tap form. Channels
// [c, c + 16 * NV), the last vector masked when TAIL.
template <int K, int S, int NV, int P, bool TAIL, class CL>
__attribute__((always_inline)) inline void slide(int64_t C, int64_t c, int64_t off, int64_t d,
                                                 const float* const* taps, const float* __restrict w,
                                                 const float* __restrict bias, float* __restrict out, __mmask16 m,
                                                 const CL& clamp) {
  constexpr int J = P * S + K - S;  // input columns per kernel row
  __m512 acc[P][NV];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[p][v] = ld<TAIL, NV>((bias ? bias : out + p * C) + c + 16 * v, v, m);
#pragma GCC unroll 5
  for (int kh = 0; kh < K; ++kh) {
    const float* xp = taps[kh * K] + off + c;
    __m512 wv[K][NV];
#pragma GCC unroll 5
    for (int kw = 0; kw < K; ++kw)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) wv[kw][v] = ld<TAIL, NV>(w + (kh * K + kw) * C + c + 16 * v, v, m);
#pragma GCC unroll 24
    for (int j = 0; j < J; ++j) {
      __m512 x[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) x[v] = ld<TAIL, NV>(xp + 16 * v, v, m);
      // One running pointer per kernel row, advanced by d per column: left to itself GCC computes
      // every row + j * d up front and spills them (two loads per input vector).
      xp += d;
      asm("" : "+r"(xp));
#pragma GCC unroll 5
      for (int kw = 0; kw < K; ++kw) {
        const int q = j - kw;
        if (q < 0 || q % S != 0 || q / S >= P) continue;
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[q / S][v] = _mm512_fmadd_ps(x[v], wv[kw][v], acc[q / S][v]);
      }
    }
  }
  const CL cl = clamp;  // bounds in registers (see block)
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) st<TAIL, NV>(out + p * C + c + 16 * v, v, m, cl(acc[p][v]));
}

// All C channels of P pixels in the sliding form: 32-channel blocks, then one masked block of 16 or 32.
template <int K, int S, int P, class CL>
void slide_pixels(int64_t C, int64_t off, int64_t d, const float* const* taps, const float* w, const float* bias,
                  float* out, const CL& clamp) {
  int64_t c = 0;
  for (; c + 32 < C; c += 32) slide<K, S, 2, P, false>(C, c, off, d, taps, w, bias, out, 0, clamp);
  const int64_t r = C - c;  // 1..32
  const __mmask16 m = r % 16 ? __mmask16((1u << (r % 16)) - 1) : __mmask16(0xFFFF);
  if (r > 16)
    slide<K, S, 2, P, true>(C, c, off, d, taps, w, bias, out, m, clamp);
  else
    slide<K, S, 1, P, true>(C, c, off, d, taps, w, bias, out, m, clamp);
}

template <int K, int S, class CL>
void slide_run(int64_t C, int64_t npix, const float* const* taps, int64_t d, const float* w, const float* bias,
               float* out, const CL& clamp) {
  constexpr int64_t PM = S == 1 ? 8 : 4;
  const int64_t step = S * d;
  int64_t i = 0;
  for (; i + PM <= npix; i += PM) slide_pixels<K, S, PM>(C, i * step, d, taps, w, bias, out + i * C, clamp);
  if (PM > 4 && i + 4 <= npix) slide_pixels<K, S, 4>(C, i * step, d, taps, w, bias, out + i * C, clamp), i += 4;
  if (i + 2 <= npix) slide_pixels<K, S, 2>(C, i * step, d, taps, w, bias, out + i * C, clamp), i += 2;
  if (i < npix) slide_pixels<K, S, 1>(C, i * step, d, taps, w, bias, out + i * C, clamp);
}

// ---- f32-dwconv-16c8p-avx512f: the register-blocked 3x3 (dispatched at stride 1, C >= 512) -------
// For the sliding form's taps (K = 3, see slide) the channel blocks of 16 go outermost: a block's 9
// tap weights and its bias load into registers once per chunk of 16 pixels, then passes of 8
// output pixels (the rest in passes of 4, 2 and 1) hold 8 accumulators and load each input column
// once per kernel row: 3 x (8 S + 3 - S) loads for 72 FMAs (30 at stride 1, 51 at stride 2), no weight
// loads, against 94 (stride 1) and 80 per 72 FMAs in the 32-channel slide form. The accumulation
// order per output (bias, then kh, then kw ascending) is that of the other forms: the same results
// bit for bit. The last channel block is masked. The run goes in chunks of 16 pixels (rb_run).
template <int S, int P, bool TAIL, class CL>
__attribute__((always_inline)) inline void rb_pass(int64_t C, int64_t c, int64_t off, int64_t d,
                                                   const float* const* taps, const __m512 (&wv)[9], __m512 b,
                                                   bool has_bias, float* __restrict out, __mmask16 m,
                                                   const CL& cl) {
  constexpr int J = P * S + 3 - S;  // input columns per kernel row
  __m512 acc[P];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) acc[p] = has_bias ? b : ld<TAIL, 1>(out + p * C + c, 0, m);
#pragma GCC unroll 3
  for (int kh = 0; kh < 3; ++kh) {
    const float* xp = taps[kh * 3] + off + c;
#pragma GCC unroll 17
    for (int j = 0; j < J; ++j) {
      const __m512 x = ld<TAIL, 1>(xp, 0, m);
      xp += d;  // a running pointer (see slide)
      asm("" : "+r"(xp));
#pragma GCC unroll 3
      for (int kw = 0; kw < 3; ++kw) {
        const int q = j - kw;
        if (q < 0 || q % S != 0 || q / S >= P) continue;
        acc[q / S] = _mm512_fmadd_ps(x, wv[kh * 3 + kw], acc[q / S]);
      }
    }
  }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) st<TAIL, 1>(out + p * C + c, 0, m, cl(acc[p]));
}

// Channels [c, c + 16) of npix pixels from input offset off0 (pixel 0 of the chunk).
template <int S, bool TAIL, class CL>
void rb_channels(int64_t C, int64_t c, int64_t off0, int64_t npix, const float* const* taps, int64_t d,
                 const float* w, const float* bias, float* out, __mmask16 m, const CL& clamp) {
  __m512 wv[9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) wv[t] = ld<TAIL, 1>(w + t * C + c, 0, m);
  const __m512 b = bias ? ld<TAIL, 1>(bias + c, 0, m) : _mm512_setzero_ps();
  const bool has_bias = bias != nullptr;
  const CL cl = clamp;  // bounds in registers (see block)
  const int64_t step = S * d;
  int64_t i = 0;
  for (; i + 8 <= npix; i += 8)
    rb_pass<S, 8, TAIL>(C, c, off0 + i * step, d, taps, wv, b, has_bias, out + i * C, m, cl);
  if (i + 4 <= npix) rb_pass<S, 4, TAIL>(C, c, off0 + i * step, d, taps, wv, b, has_bias, out + i * C, m, cl), i += 4;
  if (i + 2 <= npix) rb_pass<S, 2, TAIL>(C, c, off0 + i * step, d, taps, wv, b, has_bias, out + i * C, m, cl), i += 2;
  if (i < npix) rb_pass<S, 1, TAIL>(C, c, off0 + i * step, d, taps, wv, b, has_bias, out + i * C, m, cl);
}

// The run in chunks of kRbChunk pixels, all channel blocks of a chunk before the next (the chunk's
// input stays in L1 / L2 across the channel blocks; the weights reload once per chunk and block).
constexpr int64_t kRbChunk = 16;
template <int S, class CL>
void rb_run(int64_t C, int64_t npix, const float* const* taps, int64_t d, const float* w, const float* bias,
            float* out, const CL& clamp) {
  for (int64_t i0 = 0; i0 < npix; i0 += kRbChunk) {
    const int64_t n = std::min(kRbChunk, npix - i0), off0 = i0 * S * d;
    float* o = out + i0 * C;
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) rb_channels<S, false>(C, c, off0, n, taps, d, w, bias, o, 0, clamp);
    if (c < C) rb_channels<S, true>(C, c, off0, n, taps, d, w, bias, o, __mmask16((1u << (C - c)) - 1), clamp);
  }
}

template <int NT, class CL>
void dwconv_with(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps, int64_t step, const float* w,
                 const float* bias, float* out, const CL& clamp) {
  if constexpr (NT == 9) {
    const int stride = dwconv3x3_sliding_stride(taps, ntaps, step, npix);
    // Register-blocked where it measured faster than the slide form inside MobileNetV2 (stride 1,
    // C >= kDwRegisterBlockedMinC = 512: 2-13% on the 14x14x576 and 7x7x960 layers; up to 11% slower
    // on the others and at stride 2; docs/benchmarks.md)
    if (stride == 1 && C >= kDwRegisterBlockedMinC && dwconv3x3_forms())
      return rb_run<1>(C, npix, taps, step, w, bias, out, clamp);
    switch (stride) {
      case 1: return slide_run<3, 1>(C, npix, taps, step, w, bias, out, clamp);
      case 2: return slide_run<3, 2>(C, npix, taps, step / 2, w, bias, out, clamp);
      default: break;
    }
  }
  if (C <= 32)
    run<NT, 8>(C, npix, taps, ntaps, step, w, bias, out, clamp);
  else
    run<NT, 4>(C, npix, taps, ntaps, step, w, bias, out, clamp);
}

template <int NT>
void dwconv(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps, int64_t step, const float* w,
            const float* bias, float* out, const Epilogue* ep) {
  if (C <= 0 || npix <= 0) return;
  const __m512 lo = _mm512_set1_ps(ep ? ep->lo : 0.f), hi = _mm512_set1_ps(ep ? ep->hi : 0.f);
  if (ep && ep->post != ActKind::None)
    return dwconv_with<NT>(C, npix, taps, ntaps, step, w, bias, out,
                           Clamp<true>{ep->clamp, lo, hi, ep->post, ep->alpha, ep->beta});
  dwconv_with<NT>(C, npix, taps, ntaps, step, w, bias, out, Clamp<false>{ep && ep->clamp, lo, hi});
}

}  // namespace

void f32_dwconv_avx512f(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps, int64_t step,
                        const float* w, const float* bias, float* out, const Epilogue* ep) {
  switch (ntaps) {
    case 9: return dwconv<9>(C, npix, taps, ntaps, step, w, bias, out, ep);
    case 25: return dwconv<25>(C, npix, taps, ntaps, step, w, bias, out, ep);
    default: return dwconv<0>(C, npix, taps, ntaps, step, w, bias, out, ep);
  }
}

}  // namespace locus::kernels
