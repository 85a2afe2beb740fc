// qu8s8_gemm_12x16_avx512vnni: the AVX-512 VNNI int8 GEMM micro-kernel (compiled with -mavx512vnni
// -mavx512bw; selected by qgemm_config when the CPU has VNNI and the active ISA is Avx512).
// One zmm accumulator per row of a 16-column panel (16 s32 lanes), up to 12 rows; per group of 4 k,
// one 64-byte load of W (16 columns x 4 k) and per row one broadcast of A's 4 bytes and one vpdpbusd
// (u8 x s8, 4 products summed into each s32 lane, no intermediate saturation). One instantiation per
// row count 1..12. The epilogue requantizes lane-wise exactly as requantize.h (cvtdq2ps, vmulps,
// max/min, cvtps2dq, + zero point) and stores 16 bytes per row with vpmovdb.
// GCC 12's AVX-512 min/max/convert intrinsics expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <utility>

#include "kernels/native/qgemm.h"
#include "kernels/native/qgemm_microkernel.h"

namespace locus::kernels {
namespace {

inline int32_t load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The last, partial group of a row: rem (1..3) bytes, the rest 0 (never reads past the row).
inline int32_t load_partial(const uint8_t* p, int64_t rem) {
  uint8_t b[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < rem; ++i) b[i] = p[i];
  return load4(b);
}

template <int R>
__attribute__((always_inline)) inline void tile(int64_t K, const uint8_t* __restrict a, int64_t lda,
                                                const int8_t* __restrict w, uint8_t* __restrict y, int64_t ldy,
                                                const QEpilogue& ep, int64_t col) {
  static_assert(R >= 1 && R <= 12);
  __m512i acc[R];
  const __m512i bias = _mm512_loadu_si512(ep.bias + col);  // the accumulators start from the bias
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) acc[i] = bias;
  const uint8_t* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;

  const int64_t full = K / kQGemmKU * kQGemmKU;
  int64_t k = 0;
  if constexpr (R <= 4) {
    // few rows: a second set of accumulators for the odd groups, so that the dependent vpdpbusd
    // chains (one per row) are twice as many and their latency is hidden (M = 1 FC layers: 1.6x)
    __m512i acc2[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) acc2[i] = _mm512_setzero_si512();
    for (; k + 2 * kQGemmKU <= full; k += 2 * kQGemmKU) {
      const __m512i b0 = _mm512_loadu_si512(w), b1 = _mm512_loadu_si512(w + kQGemmKU * kQGemmNR);
      w += 2 * kQGemmKU * kQGemmNR;
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(load4(ar[i] + k)), b0);
        acc2[i] = _mm512_dpbusd_epi32(acc2[i], _mm512_set1_epi32(load4(ar[i] + k + kQGemmKU)), b1);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) acc[i] = _mm512_add_epi32(acc[i], acc2[i]);
  }
#pragma GCC unroll 2
  for (; k < full; k += kQGemmKU) {
    const __m512i b = _mm512_loadu_si512(w);
    w += kQGemmKU * kQGemmNR;
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(load4(ar[i] + k)), b);
  }
  if (full < K) {
    const __m512i b = _mm512_loadu_si512(w);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
      acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(load_partial(ar[i] + full, K - full)), b);
  }

  const __m512 scale = _mm512_loadu_ps(ep.scale + col);
  const __m512 lo = _mm512_set1_ps(ep.lo), hi = _mm512_set1_ps(ep.hi);
  const __m512i zp = _mm512_set1_epi32(ep.y_zero);
  const __m512i wz = ep.row_sums ? _mm512_loadu_si512(ep.w_zero + col) : _mm512_setzero_si512();
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    __m512i v = acc[i];
    if (ep.row_sums) v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_set1_epi32(ep.row_sums[i]), wz));
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), scale);
    f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);  // round to nearest even (MXCSR default)
    // q is inside the output type already (clamped), so truncating to bytes is exact for u8 and s8
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i * ldy), _mm512_cvtepi32_epi8(q));
  }
}

template <int R>
void tiles(int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w, int64_t w_stride, uint8_t* y,
           int64_t ldy, const QEpilogue& ep) {
  for (int64_t p = 0; p < np; ++p)
    tile<R>(K, a, lda, w + p * w_stride, y + p * kQGemmNR, ldy, ep, p * kQGemmNR);
}

template <int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w, int64_t w_stride,
              uint8_t* y, int64_t ldy, const QEpilogue& ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tiles<Rs + 1>(np, K, a, lda, w, w_stride, y, ldy, ep), true) : false) || ...);
}

}  // namespace

void qu8s8_gemm_12x16_avx512vnni(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w,
                                 int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep) {
  dispatch(mr, np, K, a, lda, w, w_stride, y, ldy, ep, std::make_integer_sequence<int, 12>{});
}

}  // namespace locus::kernels
