// Int8 depthwise convolution on NHWC data (QLinearConv with G = C = OC): u8 input with a zero point,
// s8 per-channel weights, s32 bias, requantized u8 / s8 output (requantize.h, ONNX Runtime's rounding).
//   y[oh][ow][c] = requant_c( sum_taps (x[ih][iw][c] - x_zero) * (w[c][kh][kw] - w_zero[c]) + bias[c] )
// Padded taps read the input zero point, so they contribute 0. Any KH x KW, stride, dilation and
// padding. The x_zero and w_zero terms are folded at pack time: the taps multiply raw bytes and
//   bias'[c] = bias[c] - x_zero * sum_t w[c][t] + ntaps * x_zero * w_zero[c]
// with the remaining - w_zero[c] * sum_t x[t][c] added per pixel only when some w_zero[c] != 0.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/qgemm.h"
#include "kernels/native/requantize.h"

namespace locus::kernels {

inline constexpr int64_t kQDwChannelBlock = 16;  // weights / bias / scale padded to a multiple of it

struct PackedQDwConv {
  Conv2dShape s;                  // s.G == s.C == s.OC
  int64_t Cp = 0;                 // C rounded up to kQDwChannelBlock
  std::vector<int32_t> w;         // [KH*KW][Cp], sign-extended s8
  std::vector<int32_t> bias;      // folded, [Cp]
  std::vector<float> scale;       // [Cp]
  std::vector<int32_t> w_zero;    // [Cp]; empty when all are 0
  std::vector<uint8_t> pad;       // (W + PL + PR) * C bytes of x_zero: the padded taps
  float lo = 0.f, hi = 255.f;
  int32_t y_zero = 0;
  bool s8_out = false;
  int threads = 1;
};

// w: ONNX order [C][1][KH][KW]; bias nullable (C entries). Throws locus::Error (one line) on a shape
// that is not depthwise or bad quantization parameters.
PackedQDwConv pack_qdwconv(const Conv2dShape& s, const int8_t* w, const int32_t* bias, const QuantParams& q,
                           int threads = 1);

// out[N, OH, OW, C] (u8, or s8 if s8_out) from in[N, H, W, C] (u8), p.threads threads (1 inside a
// parallel region).
void qdwconv_nhwc(const PackedQDwConv& p, const uint8_t* in, void* out);

// The micro-kernel: npix output pixels, all C channels. Pixel i's tap t reads C bytes at
// taps[t] + i * step; w is [ntaps][Cp]; ep's per-channel pointers start at channel 0; ep.row_sums is
// unused (the w_zero term is computed from the taps when ep.w_zero is non-null). out: npix * C bytes.
using QDwConvMicroKernel = void (*)(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps,
                                    int64_t step, const int32_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out);
void qu8s8_dwconv_generic(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                          const int32_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out);
// AVX-512 (only if has_avx512vnni()): 16 channels per zmm (vpmovzxbd + vpdpwssd), masked tail.
void qu8s8_dwconv_avx512vnni(int64_t C, int64_t npix, const uint8_t* const* taps, int64_t ntaps, int64_t step,
                             const int32_t* w, int64_t Cp, const QEpilogue& ep, uint8_t* out);

// The depthwise micro-kernel for an ISA and its name ("qu8s8-dwconv-16c-avx512vnni",
// "qu8s8-dwconv-generic"); AVX2 runs the generic one.
QDwConvMicroKernel qdwconv_microkernel_for(Isa isa);
const char* qdwconv_microkernel_name(Isa isa);

}  // namespace locus::kernels
