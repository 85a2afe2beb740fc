// qu8s8_dwconv_avx512vnni: the AVX-512 int8 depthwise micro-kernel (qdwconv.h; compiled with
// -mavx512vnni -mavx512bw; selected when has_avx512vnni()). 16 channels per zmm: the input bytes are
// zero-extended to s32 lanes (vpmovzxbd) and the weights are stored sign-extended to s32, so one
// vpdpwssd (s16 pairs: low halves x * w, high halves 0 * sign = 0) adds x * w exactly per lane. Runs
// of 4 pixels share each weight load; the last channel block is masked. The epilogue requantizes as
// requantize.h (cvtdq2ps, vmulps, max/min, cvtps2dq, + zero point).
// GCC 12's AVX-512 min/max/convert intrinsics expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "kernels/native/qdwconv.h"

namespace locus::kernels {
namespace {

constexpr int kPix = 4;

template <int P>
__attribute__((always_inline)) inline void block(int64_t c0, __mmask16 m, const uint8_t* const* taps, int64_t ntaps,
                                                 int64_t off, int64_t step, const int32_t* w, int64_t Cp,
                                                 const QEpilogue& ep, uint8_t* out, int64_t C) {
  __m512i acc[P], xs[P];
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) acc[i] = xs[i] = _mm512_setzero_si512();
  const bool zw = ep.w_zero != nullptr;
  for (int64_t t = 0; t < ntaps; ++t) {
    const __m512i wv = _mm512_loadu_si512(w + t * Cp + c0);
    const uint8_t* base = taps[t] + off + c0;
#pragma GCC unroll 4
    for (int i = 0; i < P; ++i) {
      const __m512i x = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, base + i * step));
      acc[i] = _mm512_dpwssd_epi32(acc[i], x, wv);
      if (zw) xs[i] = _mm512_add_epi32(xs[i], x);
    }
  }
  const __m512i bias = _mm512_loadu_si512(ep.bias + c0);
  const __m512 scale = _mm512_loadu_ps(ep.scale + c0);
  const __m512 lo = _mm512_set1_ps(ep.lo), hi = _mm512_set1_ps(ep.hi);
  const __m512i zp = _mm512_set1_epi32(ep.y_zero);
  const __m512i wz = zw ? _mm512_loadu_si512(ep.w_zero + c0) : _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i) {
    __m512i v = _mm512_add_epi32(acc[i], bias);
    if (zw) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(xs[i], wz));
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);  // round to nearest even
    _mm_mask_storeu_epi8(out + i * C + c0, m, _mm512_cvtepi32_epi8(q));
  }
}

}  // namespace

void qu8s8_dwconv_avx512vnni(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                             const int32_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out) {
  for (int64_t c0 = 0; c0 < C; c0 += 16) {
    const int64_t nc = std::min<int64_t>(16, C - c0);
    const __mmask16 m = static_cast<__mmask16>(nc == 16 ? 0xFFFF : (1u << nc) - 1);
    int64_t i = 0;
    for (; i + kPix <= npix; i += kPix) block<kPix>(c0, m, taps, ntaps, i * step, step, w, Cp, ep, out + i * C, C);
    for (; i < npix; ++i) block<1>(c0, m, taps, ntaps, i * step, step, w, Cp, ep, out + i * C, C);
  }
}

}  // namespace locus::kernels
