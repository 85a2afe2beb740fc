// f32_conv_direct_avx512f: direct-convolution micro-kernel (conv_direct.h), compiled with -mavx512f
// -mavx2 -mfma. Per 32-channel block R = 12 pixels x 2 zmm (24 accumulators); per 16-wide block
// R = 16 pixels x 1 zmm. Per tap k: NV weight loads, R broadcasts, R x NV FMAs. The pixels left
// over run in tiles of 8, 4, 2 and 1. Channels past OC in the last block are computed (zero
// weights) but not stored (masked store). On the Zen 5 machine of docs/benchmarks.md (full-width
// 512-bit FMAs: 253 GFLOP/s against 128 for ymm FMAs on one core) it replaced the AVX2 kernel under
// Isa::Avx512; on Zen 4 (double-pumped) the AVX2 kernel had measured 4% faster.
// GCC 12's _mm512_max_ps / _mm512_min_ps expand to masked builtins with an undefined pass-through
// operand, which -Wmaybe-uninitialized reports at every instantiation (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "kernels/native/conv_direct.h"
#include "kernels/native/epilogue_vec.h"

namespace locus::kernels {
namespace {

// KC, STEP > 0: kc and step fixed at compile time (the RGB stems), so the R pixels' inputs are one
// base register plus constant displacements and the k loop unrolls; with both run-time GCC keeps R
// row pointers and spilled the weight vectors to the stack (the kernel ran at 35% of the peak).
template <int R, int NV, int KC, int STEP>
__attribute__((always_inline)) inline void tile(int64_t KH, int64_t kc, const float* const* rows, int64_t off,
                                                int64_t step, const float* __restrict w, const float* __restrict bias,
                                                float* __restrict out, int64_t ldo, int64_t n, bool clamp,
                                                float lo_f, float hi_f, const Epilogue* post) {
  if constexpr (KC > 0) kc = KC;
  if constexpr (STEP > 0) step = STEP;
  __m512 acc[R][NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const __m512 b = _mm512_loadu_ps(bias + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t kh = 0; kh < KH; ++kh) {
    const float* a = rows[kh] + off;
    // Opaque to the optimiser: otherwise GCC hoists off + r * step + k for every (r, k) out of the
    // kh loop into stack slots and reloads them (a third of the instructions).
    asm("" : "+r"(a));
    const float* wk = w + kh * kc * 16 * NV;
#pragma GCC unroll 3
    for (int64_t k = 0; k < kc; ++k) {
      __m512 wv[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(wk + k * 16 * NV + 16 * v);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const __m512 x = _mm512_set1_ps(a[r * step + k]);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, wv[v], acc[r][v]);
      }
    }
  }
  if (clamp) {
    const __m512 lo = _mm512_set1_ps(lo_f), hi = _mm512_set1_ps(hi_f);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[r][v]));  // NaN stays (y second)
  }
  if (post) epi_post_tile(&acc[0][0], R * NV, *post);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const int64_t lanes = n - 16 * v;
      if (lanes >= 16)
        _mm512_storeu_ps(out + r * ldo + 16 * v, acc[r][v]);
      else if (lanes > 0)
        _mm512_mask_storeu_ps(out + r * ldo + 16 * v, __mmask16((1u << lanes) - 1), acc[r][v]);
    }
}

template <int R, int NV, int KC, int STEP>
void block(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows, int64_t step,
           const float* w, const float* bias, float* out, int64_t n, bool clamp, float lo, float hi,
           const Epilogue* post) {
  int64_t p = 0;
  auto run = [&](auto rows_per_tile) {
    constexpr int T = decltype(rows_per_tile)::value;
    tile<T, NV, KC, STEP>(KH, kc, rows, p * step, step, w, bias, out + p * OC, OC, n, clamp, lo, hi, post);
    p += T;
  };
  while (p + R <= npix) run(std::integral_constant<int, R>{});
  if (npix - p >= 8) run(std::integral_constant<int, 8>{});
  if (npix - p >= 4) run(std::integral_constant<int, 4>{});
  if (npix - p >= 2) run(std::integral_constant<int, 2>{});
  if (npix - p >= 1) run(std::integral_constant<int, 1>{});
}

}  // namespace

void f32_conv_direct_avx512f(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows,
                             int64_t step, const float* w, const float* bias, float* out, const Epilogue* ep) {
  const bool clamp = ep && ep->clamp;
  const float lo = clamp ? ep->lo : 0.f, hi = clamp ? ep->hi : 0.f;
  const Epilogue* post = ep && ep->post != ActKind::None ? ep : nullptr;  // HardSigmoid / HardSwish / Sigmoid
  // The 3x3 stride-2 RGB stem (kc = 3 x 3, step = 2 x 3: MobileNetV2's) and the 7x7 one (kc = 21,
  // step 6: ResNet-50's) with their sizes compiled in; other shapes with run-time kc and step.
  const bool stem3 = kc == 9 && step == 6, stem7 = kc == 21 && step == 6;
  for (int64_t o0 = 0; o0 < OC; o0 += kConvDirectBlock) {
    const int64_t n = std::min(kConvDirectBlock, OC - o0);  // channels stored, 1..32
    const float* blk = w + o0 * KH * kc;
    const float* b = bias + o0;
    float* o = out + o0;
    if (n > 16) {
      if (stem3) block<12, 2, 9, 6>(npix, OC, KH, kc, rows, step, blk, b, o, n, clamp, lo, hi, post);
      else if (stem7) block<12, 2, 21, 6>(npix, OC, KH, kc, rows, step, blk, b, o, n, clamp, lo, hi, post);
      else block<12, 2, 0, 0>(npix, OC, KH, kc, rows, step, blk, b, o, n, clamp, lo, hi, post);
    } else {
      block<16, 1, 0, 0>(npix, OC, KH, kc, rows, step, blk, b, o, n, clamp, lo, hi, post);
    }
  }
}

}  // namespace locus::kernels
