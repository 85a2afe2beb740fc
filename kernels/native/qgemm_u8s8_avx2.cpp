// qu8s8_gemm_4x16_avx2: the AVX2 int8 GEMM micro-kernel (compiled with -mavx2 -mfma; selected by
// qgemm_config for Avx2, and for Avx512 on CPUs without VNNI).
//
// Why not vpmaddubsw: it multiplies u8 x s8 pairs and adds adjacent pairs into an s16 with
// saturation, and 255 * 127 + 255 * 127 = 64770 (or 255 * -128 * 2 = -65280) does not fit in s16, so
// full-range weights give wrong sums (the "u8s8 saturation" ORT works around with 7-bit weights,
// reduce_range). Instead both operands are widened to s16 (A zero-extended, W sign-extended) and
// multiplied with vpmaddwd, whose products (<= 255 * 128) and pair sums (<= 65280) are exact in s32:
// the result is bit-exact for every input, at about half the multiply rate of vpmaddubsw.
//
// Layout: a 16-column panel is done as two halves of 8 columns; for one group of 4 k a half is 32
// bytes of W (8 columns x 4 k), widened into two ymm of 4 columns x 4 k (s16). A row's 4 bytes are
// widened to 4 s16 and broadcast to every 64-bit element, so vpmaddwd leaves per column two s32
// partial sums (k0 + k1, k2 + k3) in adjacent lanes; the epilogue adds them (vphaddd + a 64-bit
// permute restores column order). 4 rows x 2 ymm accumulators per half, one instantiation per row
// count 1..4.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/native/qgemm.h"
#include "kernels/native/qgemm_microkernel.h"

namespace locus::kernels {
namespace {

// A's 4 bytes at p (rem < 4: only rem of them, the rest 0) as 4 s16 broadcast to all 64-bit elements.
inline __m256i broadcast_a(const uint8_t* p, int64_t rem) {
  int32_t v = 0;
  if (rem >= 4) {
    std::memcpy(&v, p, 4);
  } else {
    uint8_t b[4] = {0, 0, 0, 0};
    for (int64_t i = 0; i < rem; ++i) b[i] = p[i];
    std::memcpy(&v, b, 4);
  }
  return _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(v)));
}

template <int R>
__attribute__((always_inline)) inline void half(int64_t K, const uint8_t* __restrict a, int64_t lda,
                                                const int8_t* __restrict w, uint8_t* __restrict y, int64_t ldy,
                                                const QEpilogue& ep, int64_t col) {
  static_assert(R >= 1 && R <= 4);
  __m256i acc[R][2];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  for (int64_t k = 0; k < K; k += kQGemmKU) {
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
    w += kQGemmKU * kQGemmNR;
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const __m256i x = broadcast_a(a + i * lda + k, K - k);
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(x, w0));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(x, w1));
    }
  }
  const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.bias + col));
  const __m256 scale = _mm256_loadu_ps(ep.scale + col);
  const __m256 lo = _mm256_set1_ps(ep.lo), hi = _mm256_set1_ps(ep.hi);
  const __m256i zp = _mm256_set1_epi32(ep.y_zero);
  const __m256i wz = ep.row_sums ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.w_zero + col))
                                 : _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
    // columns 0..7 in order: hadd gives (c0 c1 c4 c5 | c2 c3 c6 c7), the permute swaps the middle
    __m256i v = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[i][0], acc[i][1]), 0xD8);
    v = _mm256_add_epi32(v, bias);
    if (ep.row_sums) v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_set1_epi32(ep.row_sums[i]), wz));
    __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(v), scale);
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);  // round to nearest even
    // q is inside the output type (clamped): the saturating packs are exact
    const __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i b8 = ep.s8_out ? _mm_packs_epi16(s16, s16) : _mm_packus_epi16(s16, s16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i * ldy), b8);
  }
}

template <int R>
void tiles(int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w, int64_t w_stride, uint8_t* y,
           int64_t ldy, const QEpilogue& ep) {
  for (int64_t p = 0; p < np; ++p) {
    const int8_t* wp = w + p * w_stride;
    const int64_t col = p * kQGemmNR;
    half<R>(K, a, lda, wp, y + col, ldy, ep, col);
    half<R>(K, a, lda, wp + 32, y + col + 8, ldy, ep, col + 8);
  }
}

template <int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w, int64_t w_stride,
              uint8_t* y, int64_t ldy, const QEpilogue& ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tiles<Rs + 1>(np, K, a, lda, w, w_stride, y, ldy, ep), true) : false) || ...);
}

}  // namespace

void qu8s8_gemm_4x16_avx2(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w,
                          int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep) {
  // rows beyond 4 (a caller with a larger MR) run as further 4-row groups
  for (int64_t i0 = 0; i0 < mr; i0 += 4) {
    QEpilogue e = ep;
    if (e.row_sums) e.row_sums += i0;
    dispatch(std::min<int64_t>(4, mr - i0), np, K, a + i0 * lda, lda, w, w_stride, y + i0 * ldy, ldy, e,
             std::make_integer_sequence<int, 4>{});
  }
}

}  // namespace locus::kernels
