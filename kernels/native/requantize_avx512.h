// The AVX-512 form of the int8 epilogue's last steps for four rows at once (included only by the
// *_avx512vnni.cpp kernels, which are compiled with AVX-512 BW). When the output clamp is the whole
// output type and every multiplier is below 1 (QEpilogue::sat_narrow), clamping in float before
// rounding equals saturating while narrowing after it:
//   |float(acc) * m| < 2^31 for m < 1, so vcvtps2dq never overflows; vpackssdw saturates to s16,
//   vpaddsw adds the zero point with saturation, vpackuswb / vpacksswb saturate to the type;
//   each saturation is monotone and the bounds are integers, so the result is
//   clamp(round_half_even(v) + y_zero, qmin, qmax) = requantize_value's (requantize.h).
// Four rows cost 4 x (cvtdq2ps, vmulps, cvtps2dq) + 2 packssdw + 2 paddsw + 1 packuswb + 1 vpermd
// instead of 4 x 7 operations.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace locus::kernels {

// Rows v[0..3] (s32, bias and zero-point terms added) times scale, narrowed with saturation around
// zp16 (the zero point in every s16 lane): 128-bit lane L of the result holds, in dword r, row r's
// bytes of columns 4L..4L+3.
__attribute__((always_inline)) inline __m512i pack4_saturating(const __m512i* v, __m512 scale, __m512i zp16, bool s8) {
  __m512i q[4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) q[r] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_cvtepi32_ps(v[r]), scale));
  // per 128-bit lane L: words of q0 (columns 4L..4L+3) then q1; then q2, q3
  const __m512i w01 = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), zp16);
  const __m512i w23 = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), zp16);
  return s8 ? _mm512_packs_epi16(w01, w23) : _mm512_packus_epi16(w01, w23);
}

// Four rows as pack4_saturating, row r's 16 bytes (mask m) stored at out + r * ld.
__attribute__((always_inline)) inline void store4_saturating(const __m512i* v, __m512 scale, __m512i zp16, bool s8,
                                                             __mmask16 m, uint8_t* out, int64_t ld) {
  const __m512i b = pack4_saturating(v, scale, zp16, s8);
  // row r's four dwords to lane r
  const __m512i rows = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), b);
  _mm_mask_storeu_epi8(out, m, _mm512_castsi512_si128(rows));
  _mm_mask_storeu_epi8(out + ld, m, _mm512_extracti32x4_epi32(rows, 1));
  _mm_mask_storeu_epi8(out + 2 * ld, m, _mm512_extracti32x4_epi32(rows, 2));
  _mm_mask_storeu_epi8(out + 3 * ld, m, _mm512_extracti32x4_epi32(rows, 3));
}

// Four rows of two adjacent 16-column panels (v0: columns 0..15, v1: 16..31, each with its scale):
// row r's 32 bytes stored at out + r * ld as one 256-bit store (two cross-panel permutes instead of
// two in-panel ones and six extracts, four stores instead of eight; two when the rows are adjacent).
__attribute__((always_inline)) inline void store4x2_saturating(const __m512i* v0, const __m512i* v1, __m512 scale0,
                                                               __m512 scale1, __m512i zp16, bool s8, uint8_t* out,
                                                               int64_t ld) {
  const __m512i b0 = pack4_saturating(v0, scale0, zp16, s8), b1 = pack4_saturating(v1, scale1, zp16, s8);
  // dword 4L + r of b0 / b1 (index + 16) is row r's columns 4L..4L+3 of panel 0 / 1
  const __m512i r01 = _mm512_permutex2var_epi32(
      b0, _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29), b1);
  const __m512i r23 = _mm512_permutex2var_epi32(
      b0, _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31), b1);
  if (ld == 32) {  // the rows adjacent (32 columns in all): two 512-bit stores
    _mm512_storeu_si512(out, r01);
    _mm512_storeu_si512(out + 2 * ld, r23);
    return;
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_castsi512_si256(r01));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + ld), _mm512_extracti64x4_epi64(r01, 1));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * ld), _mm512_castsi512_si256(r23));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 3 * ld), _mm512_extracti64x4_epi64(r23, 1));
}

}  // namespace locus::kernels
