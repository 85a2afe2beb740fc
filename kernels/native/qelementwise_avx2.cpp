// The AVX2 + FMA int8 element-wise kernels (compiled with -mavx2 -mfma; qelementwise.cpp dispatches
// to them): QuantizeLinear and QLinearAdd, 8 elements per ymm, the same operations as the scalar
// formulas in qelementwise.h (vdivps, vmaxps/vminps with the value first so that NaN gives the bound,
// vfmadd, vcvtps2dq: round half to even), so the bits are the same. Tails go through the portable
// scalar code in qelementwise.cpp, compiled without FMA contraction.
#include <immintrin.h>

#include "kernels/native/qelementwise.h"

namespace locus::kernels {
namespace {

// 8 int32 lanes, each already in [-128, 255], to 8 bytes (u8 or s8) at p.
inline void store8(__m256i v, bool s8, uint8_t* p) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b = s8 ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b);
}

inline __m256 load8(const uint8_t* p, bool s8) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(s8 ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b));
}

}  // namespace

void quantize_f32_avx2(int64_t n, const float* x, float scale, int32_t zp, bool s8_out, void* y) {
  const int32_t qmin = s8_out ? -128 : 0, qmax = s8_out ? 127 : 255;
  const __m256 vs = _mm256_set1_ps(scale), lo = _mm256_set1_ps(float(qmin - zp)), hi = _mm256_set1_ps(float(qmax - zp));
  const __m256i vz = _mm256_set1_epi32(zp);
  uint8_t* out = static_cast<uint8_t*>(y);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
    v = _mm256_max_ps(v, lo);  // NaN -> lo (the second operand)
    v = _mm256_min_ps(v, hi);
    store8(_mm256_add_epi32(_mm256_cvtps_epi32(v), vz), s8_out, out + i);
  }
  if (i < n) quantize_f32_generic(n - i, x + i, scale, zp, s8_out, out + i);
}

void qadd_same_avx2(const QAddParams& p, int64_t n, const uint8_t* a, const uint8_t* b, uint8_t* c) {
  const __m256 ra = _mm256_set1_ps(p.ra), rb = _mm256_set1_ps(p.rb), fixed = _mm256_set1_ps(p.fixed);
  const __m256 lo = _mm256_set1_ps(p.s8 ? -128.f : 0.f), hi = _mm256_set1_ps(p.s8 ? 127.f : 255.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_fmadd_ps(load8(a + i, p.s8), ra, _mm256_fmadd_ps(load8(b + i, p.s8), rb, fixed));
    v = _mm256_max_ps(v, lo);
    v = _mm256_min_ps(v, hi);
    store8(_mm256_cvtps_epi32(v), p.s8, c + i);
  }
  for (; i < n; ++i) {
    const int32_t av = p.s8 ? int32_t(int8_t(a[i])) : int32_t(a[i]);
    const int32_t bv = p.s8 ? int32_t(int8_t(b[i])) : int32_t(b[i]);
    c[i] = uint8_t(qadd_value(p, av, bv));
  }
}

}  // namespace locus::kernels
