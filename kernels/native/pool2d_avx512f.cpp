// maxpool_pixel_avx512f: one output pixel of a max pool over all its channels, AVX-512F (compiled
// with -mavx512f -mavx2 -mfma; chosen by pool2d_nhwc.cpp when active_isa() == Isa::Avx512).
// Channels in blocks of 64 (four zmm), the rest in zmm steps whose last one is masked. NaN
// propagates as in the baseline kernel: vmaxps(acc, x) takes x when x is NaN but would let a later
// finite x replace it, so each block also ORs the lanes where a tap is NaN into a mask and sets them
// to NaN at the end. ResNet-50's 112x112x64 stem pool: 0.24 ms with the four-float baseline code.
#include <immintrin.h>

#include <cmath>

#include "kernels/native/pool2d_nhwc.h"

namespace locus::kernels {
namespace {

template <int NV, bool TAIL>
__attribute__((always_inline)) inline void block(const float* const* taps, int64_t ntaps, int64_t c0, float* o,
                                                 __mmask16 tail) {
  __m512 acc[NV];
  __mmask16 nan[NV];
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) acc[v] = neg_inf, nan[v] = 0;
  for (int64_t t = 0; t < ntaps; ++t) {
    const float* x = taps[t] + c0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m512 xv = TAIL && v == NV - 1 ? _mm512_maskz_loadu_ps(tail, x + 16 * v) : _mm512_loadu_ps(x + 16 * v);
      acc[v] = _mm512_max_ps(acc[v], xv);
      nan[v] = _kor_mask16(nan[v], _mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q));
    }
  }
  const __m512 qnan = _mm512_set1_ps(NAN);
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const __m512 r = _mm512_mask_mov_ps(acc[v], nan[v], qnan);
    if (TAIL && v == NV - 1)
      _mm512_mask_storeu_ps(o + c0 + 16 * v, tail, r);
    else
      _mm512_storeu_ps(o + c0 + 16 * v, r);
  }
}

}  // namespace

void maxpool_pixel_avx512f(const float* const* taps, int64_t ntaps, int64_t C, float* o) {
  int64_t c = 0;
  for (; c + 64 <= C; c += 64) block<4, false>(taps, ntaps, c, o, 0);
  const int64_t r = C - c;  // 0..63
  if (r == 0) return;
  const __mmask16 tail = r % 16 ? __mmask16((1u << (r % 16)) - 1) : __mmask16(0xFFFF);
  switch ((r + 15) / 16) {
    case 1: return block<1, true>(taps, ntaps, c, o, tail);
    case 2: return block<2, true>(taps, ntaps, c, o, tail);
    case 3: return block<3, true>(taps, ntaps, c, o, tail);
    default: return block<4, true>(taps, ntaps, c, o, tail);
  }
}

}  // namespace locus::kernels
