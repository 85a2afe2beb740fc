// Depthwise-convolution micro-kernels (a run of output pixels, all channels), XNNPACK-style names.
//
// For pixel i in [0, npix), c in [0, C), t in [0, ntaps):
//   out[i * C + c] = init + sum_t taps[t][i * step + c] * w[t * C + c]
// where init is bias[c] if bias is non-null, else the current out value (multi-pass accumulation for
// kernels with many taps). If ep is non-null the result is clamped to [ep->lo, ep->hi] (when ep->clamp),
// then ep->post applied (HardSigmoid / HardSwish / Sigmoid, epilogue_vec.h). Each tap
// points at C contiguous input channels of pixel 0 (or into a zero row for a padded position);
// pixel i reads `step` floats further on (step = stride * C along an output row).
#pragma once

#include <cstdint>

#include "kernels/native/cpu_features.h"
#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {

// Max taps per micro-kernel call; larger kernels take several passes.
inline constexpr int64_t kDwMaxTaps = 32;

using DwConvMicroKernel = void (*)(int64_t C, int64_t npix, const float* const* taps,
                                   int64_t ntaps, int64_t step, const float* w, const float* bias,
                                   float* out, const Epilogue* ep);

// AVX2 + FMA: 16 channels per step, then 8, then a masked tail.
void f32_dwconv_avx2(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps,
                     int64_t step, const float* w, const float* bias, float* out,
                     const Epilogue* ep);

// AVX-512F (only call if active_isa() == Isa::Avx512): 64-channel blocks, then one block of 16, 32,
// 48 or 64 channels whose last vector is masked; runs of 8 (C <= 32) or 4 pixels share weight loads.
void f32_dwconv_avx512f(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps,
                        int64_t step, const float* w, const float* bias, float* out,
                        const Epilogue* ep);

// Portable C++: 8-channel blocks the compiler vectorises, scalar tail.
void f32_dwconv_generic(int64_t C, int64_t npix, const float* const* taps, int64_t ntaps,
                        int64_t step, const float* w, const float* bias, float* out,
                        const Epilogue* ep);

// The depthwise micro-kernel for an ISA (the active one: dwconv_microkernel_for(active_isa())).
inline DwConvMicroKernel dwconv_microkernel_for(Isa isa) {
  return isa == Isa::Avx512 ? f32_dwconv_avx512f : has_avx2(isa) ? f32_dwconv_avx2 : f32_dwconv_generic;
}

}  // namespace locus::kernels
