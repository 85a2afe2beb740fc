// AVX-512F GEMM micro-kernel (compiled with -mavx512f -mavx2 -mfma; selected at run time by gemm.cpp
// when active_isa() == Isa::Avx512):
//   f32_gemm_12x16_avx512f  12 rows x 16 columns: one zmm per row of a 16-wide panel, 12 zmm
//                           accumulators, 1 B load + 12 broadcasts per k.
// Same structure as the AVX2 kernels (gemm_avx2.cpp): one instantiation per row count 1..12.
// The 8-wide narrow panel uses f32_gemm_12x8_avx2 (every AVX-512F CPU has AVX2 and FMA).
// NOTE: the development machine has no AVX-512, so this file is compiled there but not executed;
// the GEMM tests instantiate it automatically on a CPU that supports it.
// GCC 12's _mm512_max_ps / _mm512_min_ps expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <utility>

#include "kernels/native/epilogue_vec.h"
#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {
namespace {

template <int R>
__attribute__((always_inline)) inline void tile(int64_t kc, const float* __restrict a, int64_t lda,
                                                const float* __restrict w, float* __restrict c,
                                                int64_t ldc, bool load_c, const Epilogue* ep,
                                                int64_t col) {
  static_assert(R >= 1 && R <= 12);
  __m512 acc[R];
  const bool bias_first = !load_c && ep && ep->bias;
  if (load_c) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) acc[i] = _mm512_loadu_ps(c + i * ldc);
  } else {
    const __m512 init = bias_first ? _mm512_loadu_ps(ep->bias + col) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) acc[i] = init;
  }
  const float* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b = _mm512_loadu_ps(w);
    w += kGemmNR;
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(ar[i][k]), b, acc[i]);
  }

  if (ep) {
    if (ep->bias && !bias_first) {
      const __m512 bias = _mm512_loadu_ps(ep->bias + col);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) acc[i] = _mm512_add_ps(acc[i], bias);
    }
    if (ep->clamp) {
      const __m512 lo = _mm512_set1_ps(ep->lo), hi = _mm512_set1_ps(ep->hi);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) acc[i] = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i]));  // NaN stays (gemm_microkernel.h)
    }
    if (ep->post != ActKind::None) epi_post_tile(acc, R, *ep);
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) _mm512_storeu_ps(c + i * ldc, acc[i]);
}

template <int R>
void tiles(int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride, float* c,
           int64_t ldc, bool load_c, const Epilogue* ep) {
  for (int64_t p = 0; p < np; ++p)
    tile<R>(kc, a, lda, w + p * w_stride, c + p * kGemmNR, ldc, load_c, ep, p * kGemmNR);
}

template <int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride,
              float* c, int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tiles<Rs + 1>(np, kc, a, lda, w, w_stride, c, ldc, load_c, ep), true) : false) || ...);
}

}  // namespace

void f32_gemm_12x16_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                            int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  dispatch(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, std::make_integer_sequence<int, 12>{});
}

}  // namespace locus::kernels
