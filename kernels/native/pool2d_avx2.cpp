// maxpool_pixel_avx2: one output pixel of a max pool over all its channels, AVX2 (compiled with
// -mavx2 -mfma; chosen by pool2d_nhwc.cpp when active_isa() == Isa::Avx2). Channels in blocks of 32
// (four ymm), the rest in ymm steps whose last one is masked. NaN propagates as in the baseline
// kernel: vmaxps(acc, x) takes x when x is NaN but would let a later finite x replace it, so each
// block also ORs the lanes where a tap is NaN into a mask and sets them to NaN at the end.
// ResNet-50's 112x112x64 stem pool on one Zen 3 core: 0.59-0.63 ms with the four-float baseline code.
#include <immintrin.h>

#include <cmath>

#include "kernels/native/pool2d_nhwc.h"

namespace locus::kernels {
namespace {

inline __m256i lanes_below(int64_t n) {  // lanes [0, n) set, 0 < n <= 8
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Channels [c0, c0 + 8 * NV); with TAIL the last vector holds only the lanes of `tail`.
template <int NV, bool TAIL>
__attribute__((always_inline)) inline void block(const float* const* taps, int64_t ntaps, int64_t c0, float* o,
                                                 __m256i tail) {
  __m256 acc[NV], nan[NV];
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) acc[v] = neg_inf, nan[v] = _mm256_setzero_ps();
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* x = taps[t] + c0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m256 xv = TAIL && v == NV - 1 ? _mm256_maskload_ps(x + 8 * v, tail) : _mm256_loadu_ps(x + 8 * v);
      acc[v] = _mm256_max_ps(acc[v], xv);
      nan[v] = _mm256_or_ps(nan[v], _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));
    }
  }
  const __m256 qnan = _mm256_set1_ps(NAN);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __m256 r = _mm256_blendv_ps(acc[v], qnan, nan[v]);
    if (TAIL && v == NV - 1)
      _mm256_maskstore_ps(o + c0 + 8 * v, tail, r);
    else
      _mm256_storeu_ps(o + c0 + 8 * v, r);
  }
}

}  // namespace

void maxpool_pixel_avx2(const float* const* taps, int64_t ntaps, int64_t C, float* o) {
  int64_t c = 0;
  for (; c + 32 <= C; c += 32) block<4, false>(taps, ntaps, c, o, __m256i{});
  const int64_t r = C - c;  // 0..31
  if (r == 0) return;
  const __m256i tail = lanes_below(r % 8 ? r % 8 : 8);
  switch ((r + 7) / 8) {
    case 1: return block<1, true>(taps, ntaps, c, o, tail);
    case 2: return block<2, true>(taps, ntaps, c, o, tail);
    case 3: return block<3, true>(taps, ntaps, c, o, tail);
    default: return block<4, true>(taps, ntaps, c, o, tail);
  }
}

}  // namespace locus::kernels
