// f32_conv_direct_avx2: direct-convolution micro-kernel (conv_direct.h), compiled with -mavx2 -mfma.
// Per 32-channel block R = 3 pixels x 4 ymm (per 16-wide block R = 6 x 2), 12 accumulators; per
// tap k: NV weight loads, R broadcasts, R x NV FMAs. Remaining pixels one at a time. Channels past
// OC in the last block are computed (zero weights) but not stored (masked store).
#include <immintrin.h>

#include <algorithm>

#include "kernels/native/conv_direct.h"
#include "kernels/native/epilogue_vec.h"

namespace locus::kernels {
namespace {

template <int R, int NV>
__attribute__((always_inline)) inline void tile(int64_t KH, int64_t kc, const float* const* rows, int64_t off,
                                                int64_t step, const float* __restrict w, const float* __restrict bias,
                                                float* __restrict out, int64_t ldo, int64_t n, bool clamp,
                                                __m256 lo, __m256 hi, const Epilogue* post) {
  __m256 acc[R][NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __m256 b = _mm256_loadu_ps(bias + 8 * v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (int64_t kh = 0; kh < KH; ++kh) {
    const float* a = rows[kh] + off;
    const float* wk = w + kh * kc * 8 * NV;
    for (int64_t k = 0; k < kc; ++k) {
      __m256 wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = _mm256_loadu_ps(wk + k * 8 * NV + 8 * v);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 x = _mm256_broadcast_ss(a + r * step + k);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(x, wv[v], acc[r][v]);
      }
    }
  }
  if (clamp) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc[r][v]));  // NaN stays (y second)
  }
  if (post) epi_post_tile(&acc[0][0], R * NV, *post);
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m256 y = acc[r][v];
      const int64_t lanes = n - 8 * v;
      if (lanes >= 8)
        _mm256_storeu_ps(out + r * ldo + 8 * v, y);
      else if (lanes > 0)
        _mm256_maskstore_ps(out + r * ldo + 8 * v, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(lanes)), idx), y);
    }
}

template <int R, int NV>
void block(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows, int64_t step,
           const float* w, const float* bias, float* out, int64_t n, bool clamp, __m256 lo, __m256 hi,
           const Epilogue* post) {
  int64_t p = 0;
  for (; p + R <= npix; p += R) tile<R, NV>(KH, kc, rows, p * step, step, w, bias, out + p * OC, OC, n, clamp, lo, hi, post);
  for (; p < npix; ++p) tile<1, NV>(KH, kc, rows, p * step, step, w, bias, out + p * OC, OC, n, clamp, lo, hi, post);
}

}  // namespace

void f32_conv_direct_avx2(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows,
                          int64_t step, const float* w, const float* bias, float* out, const Epilogue* ep) {
  const bool clamp = ep && ep->clamp;
  const __m256 lo = _mm256_set1_ps(clamp ? ep->lo : 0.f), hi = _mm256_set1_ps(clamp ? ep->hi : 0.f);
  const Epilogue* post = ep && ep->post != ActKind::None ? ep : nullptr;  // HardSigmoid / HardSwish / Sigmoid
  for (int64_t o0 = 0; o0 < OC; o0 += kConvDirectBlock) {
    const int64_t n = std::min(kConvDirectBlock, OC - o0);  // channels stored, 1..32
    const float* blk = w + o0 * KH * kc;
    if (n > 16)
      block<3, 4>(npix, OC, KH, kc, rows, step, blk, bias + o0, out + o0, n, clamp, lo, hi, post);
    else
      block<6, 2>(npix, OC, KH, kc, rows, step, blk, bias + o0, out + o0, n, clamp, lo, hi, post);
  }
}

}  // namespace locus::kernels
