// f32_dwconv_avx2: depthwise-convolution micro-kernel for one output pixel, vectorised over
// channels with AVX2+FMA. Compiled with -mavx2 -mfma; selected at run time by conv2d_nhwc.cpp.
#include <immintrin.h>

#include "kernels/native/dwconv_microkernel.h"

namespace locus::kernels {
namespace {

inline __m256 tail_mask(int64_t n) {  // lanes [0, n) set, 0 < n < 8
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), idx));
}

}  // namespace

void f32_dwconv_avx2(int64_t C, const float* const* taps, int64_t ntaps, const float* __restrict w,
                     const float* __restrict bias, float* __restrict out, const GemmEpilogue* ep) {
  const bool clamp = ep && ep->clamp;
  const __m256 lo = _mm256_set1_ps(clamp ? ep->lo : 0.f);
  const __m256 hi = _mm256_set1_ps(clamp ? ep->hi : 0.f);
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    __m256 acc0 = bias ? _mm256_loadu_ps(bias + c) : _mm256_loadu_ps(out + c);
    __m256 acc1 = bias ? _mm256_loadu_ps(bias + c + 8) : _mm256_loadu_ps(out + c + 8);
    const float* wp = w + c;
    for (int64_t t = 0; t < ntaps; ++t, wp += C) {
      const float* x = taps[t] + c;
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(wp), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(wp + 8), acc1);
    }
    if (clamp) {
      acc0 = _mm256_min_ps(_mm256_max_ps(acc0, lo), hi);
      acc1 = _mm256_min_ps(_mm256_max_ps(acc1, lo), hi);
    }
    _mm256_storeu_ps(out + c, acc0);
    _mm256_storeu_ps(out + c + 8, acc1);
  }
  for (; c + 8 <= C; c += 8) {
    __m256 acc = bias ? _mm256_loadu_ps(bias + c) : _mm256_loadu_ps(out + c);
    const float* wp = w + c;
    for (int64_t t = 0; t < ntaps; ++t, wp += C)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(taps[t] + c), _mm256_loadu_ps(wp), acc);
    if (clamp) acc = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
    _mm256_storeu_ps(out + c, acc);
  }
  if (c < C) {
    const __m256i m = _mm256_castps_si256(tail_mask(C - c));
    __m256 acc = bias ? _mm256_maskload_ps(bias + c, m) : _mm256_maskload_ps(out + c, m);
    const float* wp = w + c;
    for (int64_t t = 0; t < ntaps; ++t, wp += C)
      acc = _mm256_fmadd_ps(_mm256_maskload_ps(taps[t] + c, m), _mm256_maskload_ps(wp, m), acc);
    if (clamp) acc = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
    _mm256_maskstore_ps(out + c, m, acc);
  }
}

}  // namespace locus::kernels
