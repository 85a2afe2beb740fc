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
// Its name: "f32-dwconv-16c8p-avx512f" (Avx512: its register-blocked 3x3 form, below),
// "f32-dwconv-16c4p-avx2" (Avx2: 16 channels x 4 pixels per pass, sliding along 3x3 runs),
// "f32-dwconv-generic".
const char* dwconv_microkernel_name(Isa isa);

// The 3x3 forms each ISA dispatches where the 9 taps of a run are three kernel rows of three
// columns d floats apart (dwconv3x3_sliding_stride):
// - AVX-512, register-blocked: at stride 1 with at least kDwRegisterBlockedMinC channels, a
//   16-channel block's 9 weights stay in registers for a chunk of 16 pixels, 8 pixels per pass, each
//   input column loaded once per kernel row. Elsewhere (stride 2, fewer channels) it measured slower
//   inside MobileNetV2 than the 32-channel sliding form (docs/benchmarks.md), which runs there.
// - AVX2, sliding: at stride 1 and 2, 16 channels x 4 pixels, each input column loaded once per
//   kernel row and a row's three weights once per 4 pixels (18 loads per 24 FMAs at stride 1,
//   against 30 tap by tap).
// Both keep the accumulation order of the forms before them (bias, then the taps in order): the
// same results bit for bit. On by default; off (tests, before/after benchmarks) runs the forms
// before them: AVX-512's sliding form everywhere, AVX2's tap-by-tap block_px.
inline constexpr int64_t kDwRegisterBlockedMinC = 512;
void set_dwconv3x3_forms(bool on);
bool dwconv3x3_forms();

// Whether the 9 taps are three kernel rows of three columns d = taps[1] - taps[0] > 0 floats apart
// and the pixel step is d (returns 1: stride 1) or 2 d (returns 2: stride 2); 0 otherwise, and for
// runs of fewer than 2 pixels.
int dwconv3x3_sliding_stride(const float* const* taps, int64_t ntaps, int64_t step, int64_t npix);

}  // namespace locus::kernels
