// Direct convolution for small input depth (the RGB stem): no im2col, the micro-kernel reads the
// taps straight from the NHWC input. Chosen by pack_conv2d (ConvPath::Direct) for G = 1, dilation
// 1 and a small K = C * KH * KW (conv_direct_fits), any stride and padding, except unpadded 1x1.
//
// Micro-kernel contract (XNNPACK-style names f32_conv_direct_<isa>): for pixel p in [0, npix) and
// output channel o in [0, OC):
//   out[p * OC + o] = ep(bias[o] + sum_{kh < KH} sum_{k < kc} rows[kh][p * step + k] * W(kh, k, o))
// rows[kh] points at the kc = KW * C contiguous input floats of kernel row kh for pixel 0 (the taps
// (kw, c), c fastest); pixel p reads step = SW * C floats further on. ep (nullable) applies its clamp
// and post activation (epilogue.h), never its bias; the bias (packed, see below) is always added.
// Weights are packed per block of output channels: blocks of 32, the last one 16 wide when at most
// 16 channels remain; block b of width wb starts at b * 32 * KH * kc floats and holds
// [kh][k][wb] (zero-padded beyond OC). The bias is padded the same way (round up to 16).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/aligned_vector.h"
#include "kernels/native/cpu_features.h"
#include "kernels/native/gemm_microkernel.h"

namespace locus::kernels {

inline constexpr int64_t kConvDirectMaxK = 160;   // C * KH * KW, at most (the RGB stems' bound below)
// The direct path takes K = C * KH * KW <= 64 at any depth, and up to kConvDirectMaxK when C <= 4
// (the RGB stems: ResNet-50's 7x7 has K = 147; as direct it took 1.14 ms against im2col + GEMM's
// 1.34, one thread, docs/benchmarks.md).
inline bool conv_direct_fits(int64_t C, int64_t KH, int64_t KW) {
  const int64_t K = C * KH * KW;
  return K <= 64 || (C <= 4 && K <= kConvDirectMaxK);
}
inline constexpr int64_t kConvDirectBlock = 32;   // output channels per packed block

using ConvDirectMicroKernel = void (*)(int64_t npix, int64_t OC, int64_t KH, int64_t kc,
                                       const float* const* rows, int64_t step, const float* w,
                                       const float* bias, float* out, const Epilogue* ep);

// AVX2 + FMA: 3 pixels x 32 channels (6 x 16 for a 16-wide block) in 12 ymm accumulators.
void f32_conv_direct_avx2(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows,
                          int64_t step, const float* w, const float* bias, float* out, const Epilogue* ep);

// AVX-512F (only call if active_isa() == Isa::Avx512): 12 pixels x 32 channels in 24 zmm
// accumulators (16 x 16 for a 16-wide block), masked stores. On Zen 4 (512-bit FMAs double-pumped)
// an 8 x 32 AVX-512F form had measured 4% slower than the AVX2 kernel on the 224x224 RGB stem; on
// Zen 5 (full-width 512-bit FMAs, twice the ymm rate) this one is the faster (docs/benchmarks.md).
void f32_conv_direct_avx512f(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows,
                             int64_t step, const float* w, const float* bias, float* out, const Epilogue* ep);

// Portable C++.
void f32_conv_direct_generic(int64_t npix, int64_t OC, int64_t KH, int64_t kc, const float* const* rows,
                             int64_t step, const float* w, const float* bias, float* out, const Epilogue* ep);

// The direct micro-kernel for an ISA (the active one: conv_direct_microkernel_for(active_isa())).
inline ConvDirectMicroKernel conv_direct_microkernel_for(Isa isa) {
  return isa == Isa::Avx512 ? f32_conv_direct_avx512f : has_avx2(isa) ? f32_conv_direct_avx2 : f32_conv_direct_generic;
}

// Packs ONNX weights [OC][C][KH][KW] into the block layout above (ceil(OC / 32) * 32 * KH * KW * C floats).
AlignedVector<float> pack_conv_direct(int64_t OC, int64_t C, int64_t KH, int64_t KW, const float* w_oihw);

// OC rounded up to a multiple of 16 (the padded bias length).
inline int64_t conv_direct_padded_oc(int64_t OC) { return (OC + 15) / 16 * 16; }

}  // namespace locus::kernels
