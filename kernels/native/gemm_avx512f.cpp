// AVX-512F GEMM micro-kernel (compiled with -mavx512f -mavx2 -mfma; selected at run time by gemm.cpp
// when active_isa() == Isa::Avx512):
//   f32_gemm_12x32_avx512f  12 rows x 32 columns: two 16-wide panels side by side, one zmm per row
//                           and panel, 24 zmm accumulators, 2 B loads + 12 broadcasts per k (each
//                           broadcast feeds two FMAs). An odd last panel runs as 12 x 16.
//   f32_gemm_12x32_stream_avx512f  the same, prefetching each panel kStreamAhead k rows ahead (and
//                           kStreamFar into L2): for
//                           B streamed from memory past few rows (gemm.cpp, gemm_stream_b).
// One instantiation per row count 1..12. The 12x16-only form ran ResNet-50's GEMM shapes at 170-210
// GFLOP/s on one Zen 4 core (peak 265); the 12x32 form at 215-250 (bench/kernels_bench BM_Gemm).
// The 8-wide narrow panel uses f32_gemm_12x8_avx2 (every AVX-512F CPU has AVX2 and FMA).
// GCC 12's _mm512_max_ps / _mm512_min_ps expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "kernels/native/epilogue_vec.h"
#include "kernels/native/gemm_microkernel.h"
#include "kernels/native/pack_a_avx2.h"

namespace locus::kernels {
namespace {

// The _stream kernel prefetches B this many k rows (64-byte lines) ahead of the row it multiplies:
// 4 KiB per panel, about the bytes a 100 ns DRAM latency covers at the rate one core consumes B
// when few rows share it.
constexpr int64_t kStreamAhead = 64;
// ... and into L2 (prefetcht1) this many rows (64 KiB per panel) ahead. The L1's few miss buffers
// alone held one core's stream at about 14 GB/s (ResNet-50's 14x14 Winograd layers: 0.70 ms each,
// their 9.4 MB of transformed weights at batch 1); with the far prefetch through L2's deeper queue
// they took 0.57-0.62 ms. 256 rows ahead gained less, 2048 no more.
constexpr int64_t kStreamFar = 1024;

// PF: prefetch B kStreamAhead rows ahead of the k loop (the _stream kernel; gemm.cpp says when).
// Packed: A packed k-major (R floats per k, lda unused: f32_pack_a_12_avx512f), each broadcast one
// pointer plus a constant. PFB: also prefetch into L2 one line per k of pfb, another B block of
// the same panel layout (the driver's next call).
template <int R, bool PF, bool Packed = false, bool PFB = false>
__attribute__((always_inline)) inline void tile(int64_t kc, const float* __restrict a, int64_t lda,
                                                const float* __restrict w, float* __restrict c,
                                                int64_t ldc, bool load_c, const Epilogue* ep,
                                                int64_t col, const float* pfb = nullptr) {
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
    if (PF) {
      _mm_prefetch(reinterpret_cast<const char*>(w + kStreamAhead * kGemmNR), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w + kStreamFar * kGemmNR), _MM_HINT_T1);
    }
    if constexpr (PFB) _mm_prefetch(reinterpret_cast<const char*>(pfb + k * kGemmNR), _MM_HINT_T1);
    const __m512 b = _mm512_loadu_ps(w);
    w += kGemmNR;
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(Packed ? a[k * R + i] : ar[i][k]), b, acc[i]);
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

// The second panel's vector: a zmm for a 16-wide panel (V1 = __m512), a ymm for the 8-wide last one
// (V1 = __m256, whose rows in packed B are 8 floats apart).
template <class V1> struct Lane;
template <> struct Lane<__m512> {
  static constexpr int64_t width = kGemmNR;
  __attribute__((always_inline)) static __m512 load(const float* p) { return _mm512_loadu_ps(p); }
  __attribute__((always_inline)) static void store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
  __attribute__((always_inline)) static __m512 splat(float x) { return _mm512_set1_ps(x); }
  __attribute__((always_inline)) static __m512 zero() { return _mm512_setzero_ps(); }
  __attribute__((always_inline)) static __m512 of(__m512 v) { return v; }  // a zmm broadcast as this lane's vector
  __attribute__((always_inline)) static __m512 fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
  __attribute__((always_inline)) static __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
  __attribute__((always_inline)) static __m512 clip(__m512 x, __m512 lo, __m512 hi) { return _mm512_min_ps(hi, _mm512_max_ps(lo, x)); }
};
template <> struct Lane<__m256> {
  static constexpr int64_t width = kGemmNarrowNR;
  __attribute__((always_inline)) static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  __attribute__((always_inline)) static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
  __attribute__((always_inline)) static __m256 splat(float x) { return _mm256_set1_ps(x); }
  __attribute__((always_inline)) static __m256 zero() { return _mm256_setzero_ps(); }
  __attribute__((always_inline)) static __m256 of(__m512 v) { return _mm512_castps512_ps256(v); }
  __attribute__((always_inline)) static __m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
  __attribute__((always_inline)) static __m256 add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
  __attribute__((always_inline)) static __m256 clip(__m256 x, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, x)); }
};

// A 16-wide panel and a second panel side by side (R x 32 with V1 = __m512: 2R zmm accumulators;
// R x 24 with V1 = __m256 for the 8-wide last panel): each A broadcast feeds both FMAs, so a k step
// issues R + 2 loads for 2R FMAs instead of R + 1 for R. Panel 0's B rows at w0 (16 floats per k),
// panel 1's at w1 (Lane<V1>::width per k); C columns, bias and residual at col and col + 16. N = 24
// (MobileNetV2's projections) otherwise ran a 12 x 16 tile and then a 12 x 8 AVX2 one with their own
// broadcasts, slower than N = 32 in one 12 x 32 tile.
// Packed and PFB as for tile (pfb0 and pfb1: the other B block's two panels).
template <int R, class V1, bool PF, bool Packed = false, bool PFB = false>
__attribute__((always_inline)) inline void tile_pair(int64_t kc, const float* __restrict a, int64_t lda,
                                                     const float* __restrict w0, const float* __restrict w1,
                                                     float* __restrict c, int64_t ldc, bool load_c,
                                                     const Epilogue* ep, int64_t col, const float* pfb0 = nullptr,
                                                     const float* pfb1 = nullptr) {
  static_assert(R >= 1 && R <= 12);
  using L = Lane<V1>;
  constexpr int64_t w1_step = L::width;
  __m512 acc0[R];
  V1 acc1[R];
  const bool bias_first = !load_c && ep && ep->bias;
  if (load_c) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      acc0[i] = _mm512_loadu_ps(c + i * ldc);
      acc1[i] = L::load(c + i * ldc + kGemmNR);
    }
  } else {
    const __m512 init0 = bias_first ? _mm512_loadu_ps(ep->bias + col) : _mm512_setzero_ps();
    const V1 init1 = bias_first ? L::load(ep->bias + col + kGemmNR) : L::zero();
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
      _mm_prefetch(reinterpret_cast<const char*>(w1 + (k + kStreamAhead) * w1_step), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w0 + (k + kStreamFar) * kGemmNR), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(w1 + (k + kStreamFar) * w1_step), _MM_HINT_T1);
    }
    if constexpr (PFB) {
      _mm_prefetch(reinterpret_cast<const char*>(pfb0 + k * kGemmNR), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(pfb1 + k * w1_step), _MM_HINT_T1);
    }
    const __m512 b0 = _mm512_loadu_ps(w0 + k * kGemmNR);
    const V1 b1 = L::load(w1 + k * w1_step);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(Packed ? a[k * R + i] : ar[i][k]);
      acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
      acc1[i] = L::fma(L::of(av), b1, acc1[i]);
    }
  }

  if (ep) {
    if (ep->bias && !bias_first) {
      const __m512 bias0 = _mm512_loadu_ps(ep->bias + col);
      const V1 bias1 = L::load(ep->bias + col + kGemmNR);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        acc0[i] = _mm512_add_ps(acc0[i], bias0);
        acc1[i] = L::add(acc1[i], bias1);
      }
    }
    if (ep->residual) {
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const float* r = ep->residual + i * ep->ldr + col;
        acc0[i] = _mm512_add_ps(acc0[i], _mm512_loadu_ps(r));
        acc1[i] = L::add(acc1[i], L::load(r + kGemmNR));
      }
    }
    if (ep->clamp) {
      const __m512 lo = _mm512_set1_ps(ep->lo), hi = _mm512_set1_ps(ep->hi);
      const V1 lo1 = L::splat(ep->lo), hi1 = L::splat(ep->hi);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        acc0[i] = _mm512_min_ps(hi, _mm512_max_ps(lo, acc0[i]));  // NaN stays (gemm_microkernel.h)
        acc1[i] = L::clip(acc1[i], lo1, hi1);
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
    L::store(c + i * ldc + kGemmNR, acc1[i]);
  }
}

template <int... Rs>
void dispatch16_8(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8, float* c,
                  int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tile_pair<Rs + 1, __m256, false>(kc, a, lda, w16, w8, c, ldc, load_c, ep, 0), true)
                       : false) ||
         ...);
}

template <int R, bool PF, bool Packed = false, bool PFB = false>
void tiles(int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride, float* c,
           int64_t ldc, bool load_c, const Epilogue* ep, const float* pfb = nullptr) {
  int64_t p = 0;
  for (; p + 2 <= np; p += 2)
    tile_pair<R, __m512, PF, Packed, PFB>(kc, a, lda, w + p * w_stride, w + (p + 1) * w_stride, c + p * kGemmNR,
                                          ldc, load_c, ep, p * kGemmNR, PFB ? pfb + p * w_stride : nullptr,
                                          PFB ? pfb + (p + 1) * w_stride : nullptr);
  for (; p < np; ++p)
    tile<R, PF, Packed, PFB>(kc, a, lda, w + p * w_stride, c + p * kGemmNR, ldc, load_c, ep, p * kGemmNR,
                             PFB ? pfb + p * w_stride : nullptr);
}

template <bool PF, bool Packed, int... Rs>
void dispatch(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride,
              float* c, int64_t ldc, bool load_c, const Epilogue* ep, std::integer_sequence<int, Rs...>) {
  (void)((mr == Rs + 1 ? (tiles<Rs + 1, PF, Packed>(np, kc, a, lda, w, w_stride, c, ldc, load_c, ep), true)
                       : false) ||
         ...);
}

// Rows beyond 12 (the driver's run of whole tiles, GemmConfig::multi_tile; gemm_tile_runs): 12-row
// tiles down the rows, A advancing 12 rows (strided) or 12 x kc floats (packed: tile after tile),
// then the last mr <= 12 rows as one tile. pf: GemmPrefetch (pf.a only for strided A).
template <bool PF, bool Packed>
void rows_12x32(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w, int64_t w_stride,
                float* c, int64_t ldc, bool load_c, const Epilogue* ep, const GemmPrefetch& pf = {}) {
  gemm_tile_runs<12>(
      mr, np, kc, a, lda, Packed ? 12 * kc : 12 * lda, c, ldc, ep, {pf.b, pf.c, !Packed && pf.a},
      [&](const float* at, float* ct, const Epilogue* e, const float* pb) {
        if (pb)
          tiles<12, PF, Packed, true>(np, kc, at, lda, w, w_stride, ct, ldc, load_c, e, pb);
        else
          tiles<12, PF, Packed>(np, kc, at, lda, w, w_stride, ct, ldc, load_c, e);
      },
      [&](int64_t m, const float* at, float* ct, const Epilogue* e) {
        dispatch<PF, Packed>(m, np, kc, at, lda, w, w_stride, ct, ldc, load_c, e, std::make_integer_sequence<int, 12>{});
      });
}

}  // namespace

void f32_gemm_12x32_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                            int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  rows_12x32<false, false>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep);
}

void f32_gemm_12x32_prefetch_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
                                     const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c,
                                     const Epilogue* ep, const GemmPrefetch& pf) {
  rows_12x32<false, false>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, pf);
}

void f32_gemm_12x32_packa_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                                  int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  rows_12x32<false, true>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep);
}

void f32_gemm_12x32_packa_prefetch_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda,
                                           const float* w, int64_t w_stride, float* c, int64_t ldc, bool load_c,
                                           const Epilogue* ep, const GemmPrefetch& pf) {
  rows_12x32<false, true>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep, pf);
}

void f32_pack_a_12_avx512f(int64_t mr, int64_t kc, const float* a, int64_t lda, float* dst) {
  pack_a_kmajor_rows<12>(mr, kc, a, lda, dst);
}

void f32_gemm_12x24_avx512f(int64_t mr, int64_t kc, const float* a, int64_t lda, const float* w16, const float* w8,
                            float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  gemm_tile_runs<12>(
      mr, 1, kc, a, lda, 12 * lda, c, ldc, ep, {},
      [&](const float* at, float* ct, const Epilogue* e, const float*) {
        tile_pair<12, __m256, false>(kc, at, lda, w16, w8, ct, ldc, load_c, e, 0);
      },
      [&](int64_t m, const float* at, float* ct, const Epilogue* e) {
        dispatch16_8(m, kc, at, lda, w16, w8, ct, ldc, load_c, e, std::make_integer_sequence<int, 12>{});
      });
}

void f32_gemm_12x32_stream_avx512f(int64_t mr, int64_t np, int64_t kc, const float* a, int64_t lda, const float* w,
                                   int64_t w_stride, float* c, int64_t ldc, bool load_c, const Epilogue* ep) {
  rows_12x32<true, false>(mr, np, kc, a, lda, w, w_stride, c, ldc, load_c, ep);
}

}  // namespace locus::kernels
