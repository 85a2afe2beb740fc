// AVX-512F GEMM micro-kernel (compiled with -mavx512f -mavx2 -mfma; selected at run time by gemm.cpp
// when active_isa() == Isa::Avx512):
//   f32_gemm_12x32_avx512f  12 rows x 32 columns: two 16-wide panels side by side, one zmm per row
//                           and panel, 24 zmm accumulators, 2 B loads + 12 broadcasts per k (each
//                           broadcast feeds two FMAs). An odd last panel runs as 12 x 16.
//   f32_gemm_12x32_stream_avx512f  the same, prefetching each panel kStreamAhead k rows ahead: for
//                           B streamed from memory past few rows (gemm.cpp, gemm_stream_b).
// One instantiation per row count 1..12. The 12x16-only form ran ResNet-50's GEMM shapes at 170-210
// GFLOP/s on one Zen 4 core (peak 265); the 12x32 form at 215-250 (bench/kernels_bench BM_Gemm).
// The 8-wide narrow panel uses f32_gemm_12x8_avx2 (every AVX-512F CPU has AVX2 and FMA).
// GCC 12's _mm512_max_ps / _mm512_min_ps expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <utility>

#include "kernels/native/epilogue_vec.h"
#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {
namespace {

// The _stream kernel prefetches B this many k rows (64-byte lines) ahead of the row it multiplies:
// 4 KiB per panel, about the bytes a 100 ns DRAM latency covers at the rate one core consumes B
// when few rows share it.
constexpr int64_t kStreamAhead = 64;

// PF: prefetch B kStreamAhead rows ahead of the k loop (the _stream kernel; gemm.cpp says when).
template <int R, bool PF>
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
    if (PF) _mm_prefetch(reinterpret_cast<const char*>(w + kStreamAhead * kGemmNR), _MM_HINT_T0);
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
    if (ep->residual) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) acc[i] = _mm512_add_ps(acc[i], _mm512_loadu_ps(ep->residual + i * ep->ldr + col));
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

// Two panels side by side (R x 32, 2R accumulators): each broadcast of A feeds two FMAs, so a k step
// issues R + 2 loads for 2R FMAs instead of R + 1 for R.
template <int R, bool PF>
__attribute__((always_inline)) inline void tile2(int64_t kc, const float* __restrict a, int64_t lda,
                                                 const float* __restrict w0, const float* __restrict w1,
                                                 float* __restrict c, int64_t ldc, bool load_c,
                                                 const Epilogue* ep, int64_t col) {
  static_assert(R >= 1 && R <= 12);
  __m512 acc0[R], acc1[R];
  const bool bias_first = !load_c && ep && ep->bias;
  if (load_c) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      acc0[i] = _mm512_loadu_ps(c + i * ldc);
      acc1[i] = _mm512_loadu_ps(c + i * ldc + kGemmNR);
    }
  } else {
    const __m512 init0 = bias_first ? _mm512_loadu_ps(ep->bias + col) : _mm512_setzero_ps();
    const __m512 init1 = bias_first ? _mm512_loadu_ps(ep->bias + col + kGemmNR) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      acc0[i] = init0;
      acc1[i] = init1;
    }
  }
  const float* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;

#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    if (PF) {
      _mm_prefetch(reinterpret_cast<const char*>(w0 + (k + kStreamAhead) * kGemmNR), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w1 + (k + kStreamAhead) * kGemmNR), _MM_HINT_T0);
    }
    const __m512 b0 = _mm512_loadu_ps(w0 + k * kGemmNR);
    const __m512 b1 = _mm512_loadu_ps(w1 + k * kGemmNR);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(ar[i][k]);
      acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
    }
  }

  if (ep) {
    if (ep->bias && !bias_first) {
      const __m512 bias0 = _mm512_loadu_ps(ep->bias + col), bias1 = _mm512_loadu_ps(ep->bias + col + kGemmNR);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        acc0[i] = _mm512_add_ps(acc0[i], bias0);
        acc1[i] = _mm512_add_ps(acc1[i], bias1);
      }
    }
    if (ep->residual) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const float* r = ep->residual + i * ep->ldr + col;
        acc0[i] = _mm512_add_ps(acc0[i], _mm512_loadu_ps(r));
        acc1[i] = _mm512_add_ps(acc1[i], _mm512_loadu_ps(r + kGemmNR));
      }
    }
    if (ep->clamp) {
      const __m512 lo = _mm512_set1_ps(ep->lo), hi = _mm512_set1_ps(ep->hi);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        acc0[i] = _mm512_min_ps(hi, _mm512_max_ps(lo, acc0[i]));  // NaN stays (gemm_microkernel.h)
        acc1[i] = _mm512_min_ps(hi, _mm512_max_ps(lo, acc1[i]));
      }
    }
    if (ep->post != ActKind::None) {
      epi_post_tile(acc0, R, *ep);
      epi_post_tile(acc1, R, *ep);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc0[i]);
    _mm512_storeu_ps(c + i * ldc + kGemmNR, acc1[i]);
  }
}

// A 16-wide panel and the 8-wide narrow last panel side by side (R x 24: a zmm and a ymm per row):
// each A broadcast feeds both FMAs. N = 24 (MobileNetV2's projections) otherwise ran a 12 x 16 tile
// and then a 12 x 8 AVX2 one with their own broadcasts, slower than N = 32 in one 12 x 32 tile.
template <int R>
void tile16_8(int64_t kc, const float* __restrict a, int64_t lda, const float* __restrict w16,
              const float* __restrict w8, float* __restrict c, int64_t ldc, bool load_c, const Epilogue* ep) {
  static_assert(R >= 1 && R <= 12);
  __m512 acc0[R];
  __m256 acc1[R];
  const bool bias_first = !load_c && ep && ep->bias;
  if (load_c) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      acc0[i] = _mm512_loadu_ps(c + i * ldc);
      acc1[i] = _mm256_loadu_ps(c + i * ldc + kGemmNR);
    }
  } else {
    const __m512 init0 = bias_first ? _mm512_loadu_ps(ep->bias) : _mm512_setzero_ps();
    const __m256 init1 = bias_first ? _mm256_loadu_ps(ep->bias + kGemmNR) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      acc0[i] = init0;
      acc1[i] = init1;
    }
  }
  const float* ar[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) ar[i] = a + i * lda;
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(w16 + k * kGemmNR);
    const __m256 b1 = _mm256_loadu_ps(w8 + k * kGemmNarrowNR);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(ar[i][k]);
      acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(_mm512_castps512_ps256(av), b1, acc1[i]);
    }
  }
  if (ep) {
    if (ep->bias && !bias_first) {
      const __m512 bias0 = _mm512_loadu_ps(ep->bias);
      const __m256 bias1 = _mm256_loadu_ps(ep->bias + kGemmNR);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        acc0[i] = _mm512_add_ps(acc0[i], bias0);
        acc1[i] = _mm256_add_ps(acc1[i], bias1);
      }
    }
    if (ep->residual) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const float* r = ep->residual + i * ep->ldr;
        acc0[i] = _mm512_add_ps(acc0[i], _mm512_loadu_ps(r));
        acc1[i] = _mm256_add_ps(acc1[i], _mm256_loadu_ps(r + kGemmNR));
      }
    }
    if (ep->clamp) {
      const __m512 lo = _mm512_set1_ps(ep->lo), hi = _mm512_set1_ps(ep->hi);
      const __m256 lo1 = _mm256_set1_ps(ep->lo), hi1 = _mm256_set1_ps(ep->hi);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        acc0[i] = _mm512_min_ps(hi, _mm512_max_ps(lo, acc0[i]));  // NaN stays (gemm_microkernel.h)
        acc1[i] = _mm256_min_ps(hi1, _mm256_max_ps(lo1, acc1[i]));
      }
    }
    if (ep->post != ActKind::None) {
      epi_post_tile(acc0, R, *ep);
      epi_post_tile(acc1, R, *ep);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc0[i]);
    _mm256_storeu_ps(c + i * ldc + kGemmNR, acc1[i]);
  }
}

template <int... Rs>
void dispatch16_8(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8, float* c,
                  int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tile16_8<Rs + 1>(kc, a, lda, w16, w8, c, ldc, load_c, ep), true) : false) || ...);
}

template <int R, bool PF>
void tiles(int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride, float* c,
           int64_t ldc, bool load_c, const Epilogue* ep) {
  int64_t p = 0;
  for (; p + 2 <= np; p += 2)
    tile2<R, PF>(kc, a, lda, w + p * w_stride, w + (p + 1) * w_stride, c + p * kGemmNR, ldc, load_c, ep, p * kGemmNR);
  for (; p < np; ++p)
    tile<R, PF>(kc, a, lda, w + p * w_stride, c + p * kGemmNR, ldc, load_c, ep, p * kGemmNR);
}

template <bool PF, int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride,
              float* c, int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tiles<Rs + 1, PF>(np, kc, a, lda, w, w_stride, c, ldc, load_c, ep), true) : false) || ...);
}

}  // namespace

void f32_gemm_12x32_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                            int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  dispatch<false>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, std::make_integer_sequence<int, 12>{});
}

void f32_gemm_12x24_avx512f(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8,
                            float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  dispatch16_8(mr, kc, a, lda, w16, w8, c, ldc, load_c, ep, std::make_integer_sequence<int, 12>{});
}

void f32_gemm_12x32_stream_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                                   int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  dispatch<true>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, std::make_integer_sequence<int, 12>{});
}

}  // namespace locus::kernels
