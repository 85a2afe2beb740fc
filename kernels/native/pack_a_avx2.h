// The A packer of the AVX2 and AVX-512 GEMM kernels (f32_pack_a_6_avx2, f32_pack_a_12_avx512f):
// rows of A k-major, through 8 x 8 transposes of fp32 ymm rows. Include only from translation units
// compiled with -mavx2.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <utility>

namespace locus::kernels {

// t[j] = column j of the 8 x 8 matrix whose rows are r[0..7]: (r[0][j], ..., r[7][j]).
__attribute__((always_inline)) inline void transpose_8x8_ps(const __m256 (&r)[8], __m256 (&t)[8]) {
  const __m256 u0 = _mm256_unpacklo_ps(r[0], r[1]), u1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 u2 = _mm256_unpacklo_ps(r[2], r[3]), u3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 u4 = _mm256_unpacklo_ps(r[4], r[5]), u5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 u6 = _mm256_unpacklo_ps(r[6], r[7]), u7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(u0, u2, 0x44), s1 = _mm256_shuffle_ps(u0, u2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(u1, u3, 0x44), s3 = _mm256_shuffle_ps(u1, u3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(u4, u6, 0x44), s5 = _mm256_shuffle_ps(u4, u6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(u5, u7, 0x44), s7 = _mm256_shuffle_ps(u5, u7, 0xEE);
  t[0] = _mm256_permute2f128_ps(s0, s4, 0x20), t[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  t[2] = _mm256_permute2f128_ps(s2, s6, 0x20), t[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  t[4] = _mm256_permute2f128_ps(s0, s4, 0x31), t[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  t[6] = _mm256_permute2f128_ps(s2, s6, 0x31), t[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// dst[k * R + i] = a[i * lda + k] for i < R <= 12, k < kc: eight k at a time through an 8 x 8
// transpose of rows 0..7 and, for R > 8, a second of rows 8..11 (rows beyond R are not read).
// Writes up to 8 - R floats (R <= 8) or 12 - R (R > 8) past dst[kc * R): the lanes past a column's R
// are overwritten by the next column, or after the last lie in the slack the caller leaves.
template <int R>
inline void pack_a_kmajor(int64_t kc, const float* a, int64_t lda, float* dst) {
  static_assert(R >= 1 && R <= 12);
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    __m256 r[8], t[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) r[i] = i < R ? _mm256_loadu_ps(a + i * lda + k) : _mm256_setzero_ps();
    transpose_8x8_ps(r, t);
    if constexpr (R > 8) {
      __m256 r1[8], t1[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r1[i] = 8 + i < R ? _mm256_loadu_ps(a + (8 + i) * lda + k) : _mm256_setzero_ps();
      transpose_8x8_ps(r1, t1);
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        _mm256_storeu_ps(dst + (k + j) * R, t[j]);
        _mm_storeu_ps(dst + (k + j) * R + 8, _mm256_castps256_ps128(t1[j]));
      }
    } else {
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (k + j) * R, t[j]);
    }
  }
  for (; k < kc; ++k)
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) dst[k * R + i] = a[i * lda + k];
}

// pack_a_kmajor<mr> for a run-time mr in 1..MR.
template <int MR>
inline void pack_a_kmajor_rows(int64_t mr, int64_t kc, const float* a, int64_t lda, float* dst) {
  [&]<int... Rs>(std::integer_sequence<int, Rs...>) {
    (void)((mr == Rs + 1 ? (pack_a_kmajor<Rs + 1>(kc, a, lda, dst), true) : false) || ...);
  }(std::make_integer_sequence<int, MR>{});
}

}  // namespace locus::kernels
