// AVX2 + FMA GEMM micro-kernels (compiled with -mavx2 -mfma; selected at run time by gemm.cpp):
//   f32_gemm_6x16_avx2         6 rows x 16 columns: 12 ymm accumulators, 2 B loads + 6 broadcasts per k
//   f32_gemm_6x16_packa_avx2   the same tile reading A packed k-major (f32_pack_a_6_avx2): every
//                              broadcast is one pointer plus a constant offset
//   f32_gemm_6x16_prefetch_avx2  the strided tile prefetching (GemmPrefetch) the next tile's rows of
//                              A and of C, and another B block
//   f32_gemm_6x16_packa_prefetch_avx2  the packed tile whose first 6 rows also prefetch another B
//                              block into L2, a line per k (the next chunk of a B streamed from memory),
//                              and which can prefetch the next tile's rows of C
//   f32_gemm_12x8_avx2         12 rows x 8 columns: 12 ymm accumulators, 1 B load + 12 broadcasts per k
//   f32_gemm_4x24_avx2         4 rows x (16 + 8) columns, a 16-wide panel beside the 8-wide last one:
//                              12 ymm accumulators, 3 B loads + 4 broadcasts per k
// Each is one template, instantiated for every row count 1..MR, so a ragged last row tile costs
// in proportion to its rows (no rows are computed twice).
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "kernels/native/epilogue_vec.h"
#include "kernels/native/gemm_microkernel.h"
#include "kernels/native/pack_a_avx2.h"

namespace locus::kernels {
namespace {

// A register tile's accumulators acc[R][V] (R rows of V ymm columns, C columns [col, col + 8 V) of
// the epilogue's bias and residual): start loads them from C (load_c), or sets them to the bias
// (returns true: the epilogue then skips its adds) or zero; finish applies the epilogue (bias,
// residual, clamp, post activation) and stores them.
template <int R, int V>
__attribute__((always_inline)) inline bool start(__m256 (&acc)[R][V], const float* c, int64_t ldc, bool load_c,
                                                 const Epilogue* ep, int64_t col) {
  if (load_c) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_loadu_ps(c + i * ldc + 8 * v);
    return false;
  }
  const bool bias_first = ep && ep->bias;
  __m256 init[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) init[v] = bias_first ? _mm256_loadu_ps(ep->bias + col + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = init[v];
  return bias_first;
}

template <int R, int V>
__attribute__((always_inline)) inline void finish(__m256 (&acc)[R][V], float* c, int64_t ldc, const Epilogue* ep,
                                                  int64_t col, bool bias_first) {
  if (ep) {
    if (ep->bias && !bias_first) {
      __m256 bias[V];
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) bias[v] = _mm256_loadu_ps(ep->bias + col + 8 * v);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[i][v] = _mm256_add_ps(acc[i][v], bias[v]);
    }
    if (ep->residual) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v)
          acc[i][v] = _mm256_add_ps(acc[i][v], _mm256_loadu_ps(ep->residual + i * ep->ldr + col + 8 * v));
    }
    if (ep->clamp) {
      const __m256 lo = _mm256_set1_ps(ep->lo), hi = _mm256_set1_ps(ep->hi);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[i][v] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc[i][v]));  // NaN stays
    }
    if (ep->post != ActKind::None) epi_post_tile(&acc[0][0], R * V, *ep);
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
}

// C[R x 8*V] (row stride ldc) = (load_c ? C : 0) + A[R x kc] . W[kc x 8*V] (+ epilogue).
// W is a K-major panel of width 8*V (8*V floats per k). A is R rows at stride lda or, when Packed,
// k-major (R floats per k, lda unused). All loops have compile-time bounds and are fully unrolled,
// so acc[][] lives in registers (R*V <= 12 accumulators).
template <int R, int V, bool Packed = false, bool PF = false>
__attribute__((always_inline)) inline void tile(int64_t kc, const float* __restrict a, int64_t lda,
                                                const float* __restrict w, float* __restrict c,
                                                int64_t ldc, bool load_c, const Epilogue* ep,
                                                int64_t col, const float* pf = nullptr) {
  static_assert(R * V <= 12 && V >= 1 && V <= 2);
  __m256 acc[R][V];
  // Without load_c, the accumulators start from the bias (saving the epilogue's adds).
  const bool bias_first = start(acc, c, ldc, load_c, ep, col);

  const float* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) b[v] = _mm256_loadu_ps(w + 8 * v);
    w += 8 * V;
    if constexpr (PF) _mm_prefetch(reinterpret_cast<const char*>(pf + 8 * V * k), _MM_HINT_T1);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m256 x = _mm256_broadcast_ss(Packed ? a + k * R + i : ar[i] + k);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(x, b[v], acc[i][v]);
    }
  }

  finish(acc, c, ldc, ep, col, bias_first);
}

// np panels side by side: panel p's weights at w + p * w_stride, its C columns and bias entries
// start at p * 8 * V.
// PF: also prefetching (into L2) one line of pf + p * w_stride per k of panel p (the next chunk's B).
template <int R, int V, bool Packed, bool PF = false>
void tiles(int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride, float* c,
           int64_t ldc, bool load_c, const Epilogue* ep, const float* pf = nullptr) {
  for (int64_t p = 0; p < np; ++p)
    tile<R, V, Packed, PF>(kc, a, lda, w + p * w_stride, c + p * 8 * V, ldc, load_c, ep, p * 8 * V,
                           PF ? pf + p * w_stride : nullptr);
}

template <int V, bool Packed = false, int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride,
              float* c, int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  // Calls tiles<mr, V> for the runtime mr (1..sizeof(Rs)).
  (void)((mr == Rs + 1 ? (tiles<Rs + 1, V, Packed>(np, kc, a, lda, w, w_stride, c, ldc, load_c, ep), true) : false) ||
         ...);
}

// C[R x 24] = (load_c ? C : 0) + A[R x kc] . [W16 | W8] (+ epilogue): a 16-wide panel (16 floats per
// k) and the 8-wide last panel (8 per k) in one register tile, so that a B of N = 16 j + 8 columns
// is not finished by a second pass over A with the broadcast-bound 12x8 tile. The epilogue's bias
// and residual columns run on from the wide panel's (col).
template <int R>
__attribute__((always_inline)) inline void tile_16_8(int64_t kc, const float* __restrict a, int64_t lda,
                                                     const float* __restrict w16, const float* __restrict w8,
                                                     float* __restrict c, int64_t ldc, bool load_c,
                                                     const Epilogue* ep) {
  static_assert(R >= 1 && R <= 4);
  __m256 acc[R][3];  // ymm columns [0, 8), [8, 16) from w16, [16, 24) from w8
  const bool bias_first = start(acc, c, ldc, load_c, ep, 0);
  const float* ar[R];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(w16 + 16 * k), b1 = _mm256_loadu_ps(w16 + 16 * k + 8);
    const __m256 b2 = _mm256_loadu_ps(w8 + 8 * k);
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const __m256 x = _mm256_broadcast_ss(ar[i] + k);
      acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
      acc[i][2] = _mm256_fmadd_ps(x, b2, acc[i][2]);
    }
  }
  finish(acc, c, ldc, ep, 0, bias_first);
}

template <int... Rs>
void dispatch_16_8(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8, float* c,
                   int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tile_16_8<Rs + 1>(kc, a, lda, w16, w8, c, ldc, load_c, ep), true) : false) || ...);
}

// Rows beyond 6 (the driver's run of whole tiles, GemmConfig::multi_tile; gemm_tile_runs): 6-row
// tiles down the rows, A advancing 6 rows (strided) or 6 x kc floats (packed: tile after tile), then
// the last mr <= 6 rows as one tile. pf: GemmPrefetch (pf.a only for strided A).
template <bool Packed>
void rows_6x16(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride,
               float* c, int64_t ldc, bool load_c, const Epilogue* ep, const GemmPrefetch& pf = {}) {
  gemm_tile_runs<6>(
      mr, np, kc, a, lda, Packed ? 6 * kc : 6 * lda, c, ldc, ep, {pf.b, pf.c, !Packed && pf.a},
      [&](const float* at, float* ct, const Epilogue* e, const float* pb) {
        if (pb)
          tiles<6, 2, Packed, true>(np, kc, at, lda, w, w_stride, ct, ldc, load_c, e, pb);
        else
          tiles<6, 2, Packed>(np, kc, at, lda, w, w_stride, ct, ldc, load_c, e);
      },
      [&](int64_t m, const float* at, float* ct, const Epilogue* e) {
        dispatch<2, Packed>(m, np, kc, at, lda, w, w_stride, ct, ldc, load_c, e, std::make_integer_sequence<int, 6>{});
      });
}

}  // namespace

void f32_gemm_6x16_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                        int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  rows_6x16<false>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep);
}

void f32_gemm_6x16_prefetch_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                                 int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep,
                                 const GemmPrefetch& pf) {
  rows_6x16<false>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, pf);
}

void f32_gemm_6x16_packa_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                              int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  rows_6x16<true>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep);
}

void f32_gemm_6x16_packa_prefetch_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
                                      const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c,
                                      const Epilogue* ep, const GemmPrefetch& pf) {
  rows_6x16<true>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, pf);
}

void f32_pack_a_6_avx2(int64_t mr, int64_t kc, const float* a, int64_t lda, float* dst) {
  pack_a_kmajor_rows<6>(mr, kc, a, lda, dst);
}

void f32_gemm_4x24_avx2(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8,
                        float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  gemm_tile_runs<4>(
      mr, 1, kc, a, lda, 4 * lda, c, ldc, ep, {},
      [&](const float* at, float* ct, const Epilogue* e, const float*) {
        tile_16_8<4>(kc, at, lda, w16, w8, ct, ldc, load_c, e);
      },
      [&](int64_t m, const float* at, float* ct, const Epilogue* e) {
        dispatch_16_8(m, kc, at, lda, w16, w8, ct, ldc, load_c, e, std::make_integer_sequence<int, 4>{});
      });
}

void f32_gemm_12x8_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                        int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  dispatch<1>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, std::make_integer_sequence<int, 12>{});
}

}  // namespace locus::kernels
