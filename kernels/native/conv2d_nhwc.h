// 2-D convolution on NHWC activations. Weights arrive in ONNX order [OC, C/G, KH, KW] and are
// packed once (pack_conv2d) for the path the shape selects:
//   pointwise  (1x1, stride 1, no padding, G = 1)      -> one GEMM over all pixels, or the
//                                                           cache-planned pointwise_scan_f32
//   depthwise  (G = C = OC)                              -> direct loop vectorised over channels
//   direct     (G = 1, no dilation, small C*KH*KW,      -> direct conv, taps read from the input
//               not an unpadded 1x1; e.g. the RGB stem)     (conv_direct.h), no im2col
//   general    (anything else, incl. grouped)            -> im2col per group + GEMM; unpadded 1x1
//                                                           with stride: GEMM per output row, or
//                                                           (G = 1, planned) rows gathered + scan
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/native/aligned_vector.h"
#include "kernels/native/activation.h"
#include "kernels/native/gemm.h"
#include "kernels/native/pointwise_scan.h"

namespace locus::kernels {

struct Conv2dShape {
  int64_t N = 1, H = 0, W = 0, C = 0;  // input
  int64_t OH = 0, OW = 0, OC = 0;      // output
  int64_t KH = 1, KW = 1, SH = 1, SW = 1;
  int64_t PT = 0, PL = 0, PB = 0, PR = 0;  // pads: top, left, bottom, right
  int64_t DH = 1, DW = 1, G = 1;
};

enum class ConvPath : uint8_t { Pointwise, Depthwise, General, Direct };

struct PackedConv2d {
  Conv2dShape s;
  ConvPath path = ConvPath::General;
  Activation act;
  int threads = 1;                  // the threads it runs with (pack_conv2d), whatever OpenMP says
  std::vector<float> bias;          // OC entries (zeros if the model had none)
  AlignedVector<float> dw_weights;    // depthwise: [KH*KW][C]
  std::vector<PackedB> group_b;     // pointwise / general: one packed B per group (empty if scan)
  // Pointwise, or unpadded strided 1x1 with G = 1, with a cache plan (pack_conv2d got buffer_entries > 0):
  // B packed per N strip of the plan, run by pointwise_scan_f32 in the plan's tile order (M =
  // N*OH*OW) instead of gemm_f32. Strided convs gather their pixels into scratch first.
  std::shared_ptr<const PointwiseScan> scan;
  std::vector<float> zeros;         // depthwise, direct: (W + PL + PR) * C zeros, read for padded taps
  bool dw_prefetch = false;         // depthwise: its input streams from beyond L2 (dw_input_streams)
  AlignedVector<float> direct_w;      // direct: weights in conv_direct.h's block layout
  std::vector<float> direct_bias;   // direct: bias padded with zeros to a multiple of 16
};

// buffer_entries: the on-chip buffer S (in floats) for the pointwise path's tiling planner, safety
// fraction already applied by the caller; 0 keeps the plain gemm_f32 over all pixels. `order` is
// the order family the planner may choose from. Planned (p.scan set when buffer_entries > 0): every
// unpadded 1x1 conv with G = 1, strided or not, unless the planner finds no tile for buffer_entries
// (then plain gemm_f32, p.scan null); grouped 1x1 convs keep one gemm_f32 per group.
PackedConv2d pack_conv2d(const Conv2dShape& s, const float* w_oihw, const float* bias,
                         const Activation& act, int64_t buffer_entries = 0,
                         schedule::TileOrder order = schedule::TileOrder::Scan, int threads = 1);

// Scratch (in floats) that conv2d_nhwc needs for this conv; the caller provides it. conv2d_nhwc
// runs with p.threads threads (1 when called inside a parallel region) whatever the OpenMP setting,
// and the scratch is sized for exactly those. Needs scratch: the general path with a kernel larger
// than 1x1 or with padding (per thread), and a planned strided 1x1 (N*OH*OW*C floats for its
// gathered pixels, any thread count).
int64_t conv2d_scratch_floats(const PackedConv2d& p);

// Whether conv2d_nhwc can take its residual in `out` (in place): a pointwise conv (1x1, stride 1,
// unpadded, one group; packed without an activation of its own, as every conv with a residual is).
// The native backend's memory plan gives such a conv's output the residual's memory when nothing
// reads the residual after it (runtime/native/in_place.h).
bool conv_can_write_over_residual(const Conv2dShape& s);

// out[N, OH, OW, OC] = act(conv(in[N, H, W, C]) + bias).
// With a residual (non-null, [N, OH, OW, OC]): out = post_act(conv(in) + bias + residual), where the
// conv runs with p.act (pack it with no activation) and post_act is applied after the residual:
// the im2col path adds it per block of pixels right after the block's GEMM (while the block is in
// cache), the other paths in one pass after the conv. (The Winograd path, winograd.h, adds it in its
// output transform.)
// The residual may be `out` itself when conv_can_write_over_residual(p.s): the GEMM then starts from the
// residual already in out and adds the conv to it, so out is read once and written once (no second
// activation is read, no fresh output lines are fetched before they are written).
void conv2d_nhwc(const PackedConv2d& p, const float* in, float* out, float* scratch,
                 const float* residual = nullptr, const Activation& post_act = {});

}  // namespace locus::kernels
