// Depthwise-convolution micro-kernels (one output pixel, all channels), XNNPACK-style names.
//
//   out[c] = init[c] + sum_t taps[t][c] * w[t * C + c]     for c in [0, C), t in [0, ntaps)
// where init is bias[c] if bias is non-null, else the current out[c] (multi-pass accumulation for
// kernels with many taps). If ep is non-null the result is clamped to [ep->lo, ep->hi]. Each tap
// points at C contiguous input channels (or at a zero row for a padded position).
#pragma once

#include <cstdint>

#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {

// Max taps per micro-kernel call; larger kernels take several passes.
inline constexpr int64_t kDwMaxTaps = 32;

using DwConvMicroKernel = void (*)(int64_t C, const float* const* taps, int64_t ntaps,
                                   const float* w, const float* bias, float* out,
                                   const GemmEpilogue* ep);

// AVX2 + FMA: 16 channels per step, then 8, then a masked tail.
void f32_dwconv_avx2(int64_t C, const float* const* taps, int64_t ntaps, const float* w,
                     const float* bias, float* out, const GemmEpilogue* ep);

// Portable C++: 8-channel blocks the compiler vectorises, scalar tail.
void f32_dwconv_generic(int64_t C, const float* const* taps, int64_t ntaps, const float* w,
                        const float* bias, float* out, const GemmEpilogue* ep);

}  // namespace locus::kernels
