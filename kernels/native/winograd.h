// Winograd F(4x4, 3x3) and F(2x2, 3x3) convolution on NHWC activations (3x3, stride 1, dilation 1,
// group 1, any pads), the output tile m (4 or 2) the planner's: weights transformed once
// (U = G g G^T: a^2 matrices C x OC, a = m + 2, each packed for the GEMM micro-kernel, pack_b), then
// per block of m x m output tiles: input transform (a^2 matrices tiles x C), a^2 GEMMs
// (gemm_f32_tile), output transform with bias, residual and activation fused (the epilogue). The
// tile block is the Winograd planner's (schedule/winograd_planner.h). F(2x2, 3x3) does 16
// multiplications per 4 outputs (2.25x fewer than direct) with 16/9 the weights, F(4x4, 3x3) 36 per
// 16 (4x fewer) with 4x the weights: the smaller tile wins where the transformed weights stream from
// memory (ResNet-50's 7x7 layers at batch 1).
//
// Accuracy: F(4x4, 3x3)'s transforms multiply by constants up to 8 (A^T) and 5 (B^T) and G has
// entries 1/24..1/4, so the fp32 result differs from the direct sum by more than rounding alone
// (F(2x2, 3x3)'s constants are 1 and 1/2: close to direct); the tests bound it as
// |y - y_ref| <= 64 * eps * sum_k |w_k| |x_k| (eps = 2^-23) per output plus |bias| and |residual|
// (tests/winograd_test.cpp), and docs/winograd.md reports the error on every ResNet-50 layer.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/activation.h"
#include "kernels/native/epilogue.h"
#include "kernels/native/gemm.h"
#include "schedule/winograd_planner.h"

namespace locus::kernels {

// One input tile for the transform micro-kernel of F(m x m, 3x3): a^2 source pointers (row-major
// a x a, a = m + 2, each to `channels` floats; out-of-image positions point at zeros) and the
// destination (value xi of channel c at dst + xi * xi_stride + c).
struct WinogradInputTile {
  int m = 4;
  const float* src[36];
  float* dst;
  int64_t xi_stride, channels;
};
// One output tile: the a^2 products (value xi of channel c at src + xi * xi_stride + c), the m^2
// destinations (row-major m x m; nullptr outside the output), residuals (same positions, nullptr
// for none), bias (nullable) and the clamp (ep nullable; its bias is not read).
struct WinogradOutputTile {
  int m = 4;
  const float* src;
  int64_t xi_stride, channels;
  float* dst[16];
  const float* residual[16];
  const float* bias;
  const Epilogue* ep;
};

using WinogradInputFn = void (*)(const WinogradInputTile&);
using WinogradOutputFn = void (*)(const WinogradOutputTile&);
// Per ISA (only call the avx2 / avx512f ones when active_isa() allows): 16, 8 and 4 channels per
// vector, channel tails one at a time.
void winograd_input_tile_avx512f(const WinogradInputTile& t);
void winograd_output_tile_avx512f(const WinogradOutputTile& t);
void winograd_input_tile_avx2(const WinogradInputTile& t);
void winograd_output_tile_avx2(const WinogradOutputTile& t);
void winograd_input_tile_generic(const WinogradInputTile& t);
void winograd_output_tile_generic(const WinogradOutputTile& t);

struct WinogradConv {
  int64_t N = 1, H = 0, W = 0, C = 0, OC = 0, OH = 0, OW = 0, PT = 0, PL = 0;
  schedule::WinogradPlan plan;
  Activation act;
  int threads = 1;
  std::vector<float> bias;     // OC
  std::vector<PackedB> u;      // a^2 packed C x OC matrices (a = plan.m + 2)
  std::vector<float> zeros;    // C zeros, read for out-of-image input positions
};

// w_oihw: [OC, C, 3, 3]; bias nullable. The plan must be the planner's for this shape (block > 0,
// m 4 or 2); its `use` is not checked (tests run Winograd on any shape).
WinogradConv pack_winograd(int64_t N, int64_t H, int64_t W, int64_t C, int64_t OC, int64_t PT, int64_t PL,
                           int64_t OH, int64_t OW, const float* w_oihw, const float* bias, const Activation& act,
                           const schedule::WinogradPlan& plan, int threads);

int64_t winograd_scratch_floats(const WinogradConv& p);

// Whether x[0..n) holds no infinity and no NaN. Winograd is exact algebra only for finite inputs: a
// transform mixes the 36 values of an input tile (inf - inf = NaN, inf * 0 = NaN), so an infinity
// or NaN would spread to outputs whose 3x3 window does not hold it. The native backend checks each
// input and runs such a call on the im2col path instead (IEEE propagation as the reference's).
bool all_finite_f32(const float* x, int64_t n);

// out[N, OH, OW, OC] = act(conv(in) + bias (+ residual[N, OH, OW, OC] when non-null)).
void winograd_conv_nhwc(const WinogradConv& p, const float* in, const float* residual, float* out, float* scratch);

}  // namespace locus::kernels
