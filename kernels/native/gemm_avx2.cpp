// AVX2 + FMA GEMM micro-kernels (compiled with -mavx2 -mfma; selected at run time by gemm.cpp):
//   f32_gemm_6x16_avx2  6 rows x 16 columns: 12 ymm accumulators, 2 B loads + 6 broadcasts per k
//   f32_gemm_12x8_avx2  12 rows x 8 columns: 12 ymm accumulators, 1 B load + 12 broadcasts per k
// Both are one template, instantiated for every row count 1..MR, so a ragged last row tile costs
// in proportion to its rows (no rows are computed twice).
#include <immintrin.h>

#include <utility>

#include "kernels/native/epilogue_vec.h"
#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {
namespace {

// C[R x 8*V] (row stride ldc) = (load_c ? C : 0) + A[R x kc] . W[kc x 8*V] (+ epilogue).
// W is a K-major panel of width 8*V (8*V floats per k). All loops have compile-time bounds and are
// fully unrolled, so acc[][] lives in registers (R*V <= 12 accumulators).
template <int R, int V>
__attribute__((always_inline)) inline void tile(int64_t kc, const float* __restrict a, int64_t lda,
                                                const float* __restrict w, float* __restrict c,
                                                int64_t ldc, bool load_c, const Epilogue* ep,
                                                int64_t col) {
  static_assert(R * V <= 12 && V >= 1 && V <= 2);
  __m256 acc[R][V];
  // Without load_c, the accumulators start from the bias (saving the epilogue's adds).
  const bool bias_first = !load_c && ep && ep->bias;
  if (load_c) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_loadu_ps(c + i * ldc + 8 * v);
  } else {
    __m256 init[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) init[v] = bias_first ? _mm256_loadu_ps(ep->bias + col + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = init[v];
  }

  const float* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) b[v] = _mm256_loadu_ps(w + 8 * v);
    w += 8 * V;
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m256 x = _mm256_broadcast_ss(ar[i] + k);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(x, b[v], acc[i][v]);
    }
  }

  if (ep) {
    if (ep->bias && !bias_first) {
      __m256 bias[V];
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) bias[v] = _mm256_loadu_ps(ep->bias + col + 8 * v);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[i][v] = _mm256_add_ps(acc[i][v], bias[v]);
    }
    if (ep->residual) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v)
          acc[i][v] = _mm256_add_ps(acc[i][v], _mm256_loadu_ps(ep->residual + i * ep->ldr + col + 8 * v));
    }
    if (ep->clamp) {
      const __m256 lo = _mm256_set1_ps(ep->lo), hi = _mm256_set1_ps(ep->hi);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[i][v] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc[i][v]));  // NaN stays
    }
    if (ep->post != ActKind::None) epi_post_tile(&acc[0][0], R * V, *ep);
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
}

// np panels side by side: panel p's weights at w + p * w_stride, its C columns and bias entries
// start at p * 8 * V.
template <int R, int V>
void tiles(int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride, float* c,
           int64_t ldc, bool load_c, const Epilogue* ep) {
  for (int64_t p = 0; p < np; ++p) tile<R, V>(kc, a, lda, w + p * w_stride, c + p * 8 * V, ldc, load_c, ep, p * 8 * V);
}

template <int V, int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride,
              float* c, int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  // Calls tiles<mr, V> for the runtime mr (1..sizeof(Rs)).
  (void)((mr == Rs + 1 ? (tiles<Rs + 1, V>(np, kc, a, lda, w, w_stride, c, ldc, load_c, ep), true) : false) || ...);
}

}  // namespace

void f32_gemm_6x16_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                        int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  dispatch<2>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, std::make_integer_sequence<int, 6>{});
}

void f32_gemm_12x8_avx2(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                        int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  dispatch<1>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, std::make_integer_sequence<int, 12>{});
}

}  // namespace locus::kernels
