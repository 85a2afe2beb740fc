// The AVX-512 int8 element-wise kernels (compiled with the *_avx512vnni.cpp flags; qelementwise.cpp
// dispatches to them under Isa::Avx512 on a VNNI CPU, as the int8 GEMM): QuantizeLinear and
// QLinearAdd, 16 elements per zmm, lane for lane the operations of the AVX2 kernels
// (qelementwise_avx2.cpp: vdivps, vmaxps / vminps with the value first so that NaN gives the bound,
// vfmadd in the same order, vcvtps2dq: round half to even), so the bits are the same; the last
// 1..15 elements run masked.
// GCC 12's AVX-512 min/max/convert intrinsics expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "kernels/native/qelementwise.h"

namespace locus::kernels {
namespace {

inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

// 16 bytes (u8 or s8, lanes of m) as floats.
inline __m512 load16(__mmask16 m, const uint8_t* p, bool s8) {
  const __m128i b = _mm_maskz_loadu_epi8(m, p);
  return _mm512_cvtepi32_ps(s8 ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
}

}  // namespace

void quantize_f32_avx512(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y) {
  const int32_t qmin = s8_out ? -128 : 0, qmax = s8_out ? 127 : 255;
  const __m512 vs = _mm512_set1_ps(scale), lo = _mm512_set1_ps(float(qmin - zp)), hi = _mm512_set1_ps(float(qmax - zp));
  const __m512i vz = _mm512_set1_epi32(zp);
  uint8_t* out = static_cast<uint8_t*>(y);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
    v = _mm512_max_ps(v, lo);  // NaN -> lo (the second operand)
    v = _mm512_min_ps(v, hi);
    // inside [qmin, qmax] after the zero point: the low byte is the u8 / s8 value
    _mm512_mask_cvtepi32_storeu_epi8(out + i, m, _mm512_add_epi32(_mm512_cvtps_epi32(v), vz));
  }
}

void qadd_same_avx512(const QAddParams& p, int64_t n, const uint8_t* a, const uint8_t* b, uint8_t* c) {
  const __m512 ra = _mm512_set1_ps(p.ra), rb = _mm512_set1_ps(p.rb), fixed = _mm512_set1_ps(p.fixed);
  const __m512 lo = _mm512_set1_ps(p.s8 ? -128.f : 0.f), hi = _mm512_set1_ps(p.s8 ? 127.f : 255.f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __m512 v = _mm512_fmadd_ps(load16(m, a + i, p.s8), ra, _mm512_fmadd_ps(load16(m, b + i, p.s8), rb, fixed));
    v = _mm512_max_ps(v, lo);
    v = _mm512_min_ps(v, hi);
    _mm512_mask_cvtepi32_storeu_epi8(c + i, m, _mm512_cvtps_epi32(v));
  }
}

}  // namespace locus::kernels
