// Upsampling kernels on NHWC activations (mobile CNNs' FPN necks): Resize along H and W (nearest
// and bilinear, from per-row / per-column taps computed once at compile time) and the 2-D
// transposed convolution (GEMM of the input pixels by the packed weights, then a conflict-free
// gather of each output row's contributions).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/activation.h"
#include "kernels/native/gemm.h"

namespace locus::kernels {

// Resize of x [N, H, W, C] to y [N, OH, OW, C]. Output row oh reads input rows h0[oh] and h1[oh]
// with weights (1 - hw[oh], hw[oh]), output column ow columns w0[ow], w1[ow] with (1 - ww[ow],
// ww[ow]); nearest: h0 == h1, weights 0. Nearest may also remap the batch and the channels (n_src,
// c_src: the source of each output image / channel; empty for the identity).
struct ResizePlan {
  int64_t N = 1, C = 0, H = 0, W = 0, OH = 0, OW = 0;
  std::vector<int64_t> h0, h1, w0, w1, n_src, c_src;
  std::vector<float> hw, ww;
  bool nearest = true;
};
void resize_nhwc(const ResizePlan& p, const float* x, float* y);

// ConvTranspose, 2-D: x [N, H, W, C] -> y [N, OH, OW, OC], weights [C, OC/G, KH, KW] (ONNX),
// y[n, ih*SH - PT + kh*DH, iw*SW - PL + kw*DW, g*OCg + o] += x[n, ih, iw, g*Cg + c] * w[g*Cg + c, o, kh, kw]
// plus bias, then act.
struct ConvTransposeShape {
  int64_t N = 1, C = 0, H = 0, W = 0, OC = 0, OH = 0, OW = 0;
  int64_t KH = 1, KW = 1, SH = 1, SW = 1, DH = 1, DW = 1, PT = 0, PL = 0;
  int64_t G = 1;
};
struct PackedConvTranspose {
  ConvTransposeShape s;
  std::vector<PackedB> b;     // per group: [C/G, KH*KW*OC/G], columns (kh, kw, o)
  std::vector<float> bias;    // OC (zeros when absent)
  Activation act;
  int threads = 1;
};
PackedConvTranspose pack_conv_transpose(const ConvTransposeShape& s, const float* w, const float* bias,
                                        const Activation& act, int threads);
// Floats of scratch conv_transpose_nhwc needs (the GEMM's column buffer of one group).
int64_t conv_transpose_scratch_floats(const PackedConvTranspose& p);
void conv_transpose_nhwc(const PackedConvTranspose& p, const float* x, float* y, float* scratch);

}  // namespace locus::kernels
