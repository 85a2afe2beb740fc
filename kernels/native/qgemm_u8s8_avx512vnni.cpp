// qu8s8_gemm_12x32_avx512vnni: the AVX-512 VNNI int8 GEMM micro-kernel (compiled with -mavx512vnni
// -mavx512bw; selected by qgemm_config when the CPU has VNNI and the active ISA is Avx512).
// One zmm accumulator per row of a 16-column panel (16 s32 lanes), up to 12 rows, two panels at a time
// (12 x 32, "qu8s8-gemm-12x32-avx512vnni": 24 accumulators); per group of 4 k, one 64-byte load of W
// (16 columns x 4 k) per panel and per row one broadcast of A's 4 bytes feeding one vpdpbusd per panel
// (u8 x s8, 4 products summed into each s32 lane, no intermediate saturation), so A is read once per
// two panels. An odd last panel runs alone. One instantiation per row count 1..12. The epilogue requantizes lane-wise exactly as requantize.h (cvtdq2ps, vmulps,
// max/min, cvtps2dq, + zero point) and stores 16 bytes per row with vpmovdb; when the clamp is the
// whole output type and the multipliers are below 1 (QEpilogue::sat_narrow), four rows at a time are
// narrowed with saturating packs instead (requantize_avx512.h).
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
#include "kernels/native/requantize_avx512.h"

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

// One group of 4 k for R rows x NP panels: W's group at w (panel 0) and w1 (panel 1), row i's 4 bytes
// of A at ar[i] + off, broadcast once for both panels.
// PF (the _stream kernel): also prefetch each panel kStreamAhead bytes (64 groups) ahead, for W
// streamed from beyond L2 past few rows (qgemm.cpp says when).
constexpr int64_t kStreamAhead = 64 * kQGemmKU * kQGemmNR;
template <int R, int NP, bool PF = false>
__attribute__((always_inline)) inline void group(__m512i (&acc)[NP][R], const uint8_t* const* ar, int64_t off,
                                                 const int8_t* w, const int8_t* w1) {
  if (PF) {
    _mm_prefetch(reinterpret_cast<const char*>(w + kStreamAhead), _MM_HINT_T0);
    if (NP == 2) _mm_prefetch(reinterpret_cast<const char*>(w1 + kStreamAhead), _MM_HINT_T0);
  }
  const __m512i b0 = _mm512_loadu_si512(w);
  const __m512i b1 = NP == 2 ? _mm512_loadu_si512(w1) : b0;
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    const __m512i av = _mm512_set1_epi32(load4(ar[i] + off));
    acc[0][i] = _mm512_dpbusd_epi32(acc[0][i], av, b0);
    if (NP == 2) acc[NP - 1][i] = _mm512_dpbusd_epi32(acc[NP - 1][i], av, b1);
  }
}

// R rows x NP (1 or 2) panels: NP * R accumulators; per group of 4 k, NP 64-byte loads of W and per
// row one broadcast of A's 4 bytes shared by the NP vpdpbusd.
// SEG (qu8s8_gemm_12x32_avx512vnni_seg): row i's K bytes are K / kseg segments of kseg (a multiple
// of 4) bytes, segment j at a + i * lda + j * ldseg.
template <int R, int NP, bool SEG = false, bool PF = false>
__attribute__((always_inline)) inline void tile(int64_t K, const uint8_t* __restrict a, int64_t lda,
                                                const int8_t* __restrict w, int64_t w_stride, uint8_t* __restrict y,
                                                int64_t ldy, const QEpilogue& ep, int64_t col, __mmask16 mlast,
                                                int64_t kseg = 0, int64_t ldseg = 0) {
  static_assert(R >= 1 && R <= 12 && (NP == 1 || NP == 2));
  __m512i acc[NP][R];
#pragma GCC unroll 2
  for (int p = 0; p < NP; ++p) {
    const __m512i bias = _mm512_loadu_si512(ep.bias + col + p * kQGemmNR);  // the accumulators start from the bias
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) acc[p][i] = bias;
  }
  const uint8_t* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;
  const int8_t* w1 = w + (NP == 2 ? w_stride : 0);

  const int64_t full = K / kQGemmKU * kQGemmKU;
  int64_t k = 0;
  if constexpr (SEG) {
    for (int64_t s0 = 0; s0 < K; s0 += kseg, k += ldseg) {  // k: the segment's offset in a row of A
#pragma GCC unroll 4
      for (int64_t kk = 0; kk < kseg; kk += kQGemmKU) {
        group<R, NP>(acc, ar, k + kk, w, w1);
        w += kQGemmKU * kQGemmNR;
        w1 += kQGemmKU * kQGemmNR;
      }
    }
    k = full;  // every group done
  }
  if constexpr (R <= 4 && NP == 1 && !SEG) {
    // few rows: a second set of accumulators for the odd groups, so that the dependent vpdpbusd
    // chains (one per row) are twice as many and their latency is hidden (M = 1 FC layers: 1.6x)
    __m512i acc2[R];
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) acc2[i] = _mm512_setzero_si512();
    for (; k + 2 * kQGemmKU <= full; k += 2 * kQGemmKU) {
      if (PF) _mm_prefetch(reinterpret_cast<const char*>(w + kStreamAhead), _MM_HINT_T0);
      const __m512i b0 = _mm512_loadu_si512(w), b1 = _mm512_loadu_si512(w + kQGemmKU * kQGemmNR);
      w += 2 * kQGemmKU * kQGemmNR;
#pragma GCC unroll 4
      for (int i = 0; i < R; ++i) {
        acc[0][i] = _mm512_dpbusd_epi32(acc[0][i], _mm512_set1_epi32(load4(ar[i] + k)), b0);
        acc2[i] = _mm512_dpbusd_epi32(acc2[i], _mm512_set1_epi32(load4(ar[i] + k + kQGemmKU)), b1);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) acc[0][i] = _mm512_add_epi32(acc[0][i], acc2[i]);
  }
#pragma GCC unroll 2
  for (; k < full; k += kQGemmKU) {
    group<R, NP, PF>(acc, ar, k, w, w1);
    w += kQGemmKU * kQGemmNR;
    w1 += kQGemmKU * kQGemmNR;
  }
  if (full < K) {
    const __m512i b0 = _mm512_loadu_si512(w);
    const __m512i b1 = NP == 2 ? _mm512_loadu_si512(w1) : b0;
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512i av = _mm512_set1_epi32(load_partial(ar[i] + full, K - full));
      acc[0][i] = _mm512_dpbusd_epi32(acc[0][i], av, b0);
      if (NP == 2) acc[NP - 1][i] = _mm512_dpbusd_epi32(acc[NP - 1][i], av, b1);
    }
  }

  const __m512 lo = _mm512_set1_ps(ep.lo), hi = _mm512_set1_ps(ep.hi);
  const __m512i zp = _mm512_set1_epi32(ep.y_zero);
  const __m512i zp16 = _mm512_set1_epi16(static_cast<int16_t>(ep.y_zero));
  // two whole panels, saturating: groups of four rows stored 32 bytes per row (requantize_avx512.h)
  const bool pairs = NP == 2 && ep.sat_narrow && mlast == 0xFFFF;
  if (NP == 2 && pairs && R >= 4) {
    if (ep.row_sums) {
#pragma GCC unroll 2
      for (int p = 0; p < NP; ++p) {
        const __m512i wz = _mm512_loadu_si512(ep.w_zero + col + p * kQGemmNR);
#pragma GCC unroll 16
        for (int i = 0; i < R / 4 * 4; ++i)
          acc[p][i] = _mm512_sub_epi32(acc[p][i], _mm512_mullo_epi32(_mm512_set1_epi32(ep.row_sums[i]), wz));
      }
    }
    const __m512 s0 = _mm512_loadu_ps(ep.scale + col), s1 = _mm512_loadu_ps(ep.scale + col + kQGemmNR);
#pragma GCC unroll 3
    for (int g = 0; g + 4 <= R; g += 4)
      store4x2_saturating(&acc[0][g], &acc[NP - 1][g], s0, s1, zp16, ep.s8_out, y + g * ldy, ldy);
  }
  const int done = pairs ? R / 4 * 4 : 0;  // rows stored above (their row-sum term applied)
#pragma GCC unroll 2
  for (int p = 0; p < NP; ++p) {
    const int64_t c = col + p * kQGemmNR;
    const __m512 scale = _mm512_loadu_ps(ep.scale + c);
    const __mmask16 m = p == NP - 1 ? mlast : __mmask16(0xFFFF);  // the columns stored
    if (ep.row_sums) {
      const __m512i wz = _mm512_loadu_si512(ep.w_zero + c);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        if (i < done) continue;
        acc[p][i] = _mm512_sub_epi32(acc[p][i], _mm512_mullo_epi32(_mm512_set1_epi32(ep.row_sums[i]), wz));
      }
    }
    int i0 = done;
    if (ep.sat_narrow && !pairs) {  // groups of four rows narrowed with saturation (requantize_avx512.h)
#pragma GCC unroll 3
      for (int g = 0; g + 4 <= R; g += 4)
        store4_saturating(&acc[p][g], scale, zp16, ep.s8_out, m, y + g * ldy + p * kQGemmNR, ldy);
      i0 = R / 4 * 4;
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      if (i < i0) continue;
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[p][i]), scale);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), zp);  // round to nearest even (MXCSR default)
      // q is inside the output type already (clamped), so truncating to bytes is exact for u8 and s8
      _mm_mask_storeu_epi8(y + i * ldy + p * kQGemmNR, m, _mm512_cvtepi32_epi8(q));
    }
  }
}

// Pairs of panels (12 x 32 tiles: each A broadcast feeds two vpdpbusd), then a single last one; the
// call's last panel stores the columns of ep.last_mask.
template <int R, bool SEG = false, bool PF = false>
void tiles(int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w, int64_t w_stride, uint8_t* y,
           int64_t ldy, const QEpilogue& ep, int64_t kseg = 0, int64_t ldseg = 0) {
  int64_t p = 0;
  for (; p + 2 <= np; p += 2)
    tile<R, 2, SEG, PF>(K, a, lda, w + p * w_stride, w_stride, y + p * kQGemmNR, ldy, ep, p * kQGemmNR,
                        p + 2 == np ? __mmask16(ep.last_mask) : __mmask16(0xFFFF), kseg, ldseg);
  if (p < np)
    tile<R, 1, SEG, PF>(K, a, lda, w + p * w_stride, w_stride, y + p * kQGemmNR, ldy, ep, p * kQGemmNR,
                        ep.last_mask, kseg, ldseg);
}

template <bool SEG, bool PF, int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w, int64_t w_stride,
              uint8_t* y, int64_t ldy, const QEpilogue& ep, int64_t kseg, int64_t ldseg,
              std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tiles<Rs + 1, SEG, PF>(np, K, a, lda, w, w_stride, y, ldy, ep, kseg, ldseg), true)
                       : false) ||
         ...);
}

}  // namespace

void qu8s8_gemm_12x32_avx512vnni(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda, const int8_t* w,
                                 int64_t w_stride, uint8_t* y, int64_t ldy, const QEpilogue& ep) {
  dispatch<false, false>(mr, np, K, a, lda, w, w_stride, y, ldy, ep, 0, 0, std::make_integer_sequence<int, 12>{});
}

void qu8s8_gemm_12x32_stream_avx512vnni(int64_t mr, int64_t np, int64_t K, const uint8_t* a, int64_t lda,
                                        const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy,
                                        const QEpilogue& ep) {
  dispatch<false, true>(mr, np, K, a, lda, w, w_stride, y, ldy, ep, 0, 0, std::make_integer_sequence<int, 12>{});
}

void qu8s8_gemm_12x32_avx512vnni_seg(int64_t mr, int64_t np, int64_t K, int64_t kseg, int64_t ldseg, const uint8_t* a,
                                     int64_t lda, const int8_t* w, int64_t w_stride, uint8_t* y, int64_t ldy,
                                     const QEpilogue& ep) {
  dispatch<true, false>(mr, np, K, a, lda, w, w_stride, y, ldy, ep, kseg, ldseg,
                        std::make_integer_sequence<int, 12>{});
}

}  // namespace locus::kernels
