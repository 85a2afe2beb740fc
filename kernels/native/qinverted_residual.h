// The fused int8 inverted-residual kernel (the int8 counterpart of inverted_residual.h): QLinearConv
// 1x1 expand -> QLinearConv depthwise KxK (any stride) -> QLinearConv 1x1 project [-> com.microsoft
// QLinearAdd of the block input], on NHWC u8 / s8 activations, without materialising the expanded
// tensor. Either 1x1 stage may be absent. Every stage rounds exactly as the unfused kernels do (it
// calls them: qgemm_u8s8_rows, qdepthwise_row, qadd_same), so the result is bit-identical to the
// unfused composition. The expand stage may also be a dense KxK conv (QInvertedResidualShape::
// xconv: MobileNetV2's 3x3 stride-2 stem in front of its first block), computed row by row into the
// band's expanded rows (qconv_row), so its 112 x 112 x 32 output never exists in memory either.
//
// Schedule (schedule/fused_block_planner.h, "filtered band", sizes in bytes): the output of each
// image is cut into bands of output rows, the E expanded channels into chunks (multiples of 16).
// Per band, for each chunk (Scan: alternate directions from band to band): expand the band's input
// rows (its halo rows included: halo rows are recomputed by both neighbouring bands, no ring) with
// the requantizing GEMM into the u8 chunk buffer, whose rows carry PL + PR padding columns of the
// depthwise input zero point (so each output row is one depthwise call, border pixels included),
// filter them depthwise (u8 out) straight into the chunk's columns of the band's filtered buffer
// (rows x OW x E bytes, output pixel stride E: no copy per chunk); then project the whole band once
// (the ordinary requantizing GEMM, K = E, lda = E) into the output rows, or into the band's P tile
// followed by the QLinearAdd residual on the band's rows. No s32 partial-output tile.
// Threads split the bands (contiguous stretches, each thread with its own buffers) or, with fewer
// bands than threads (plan.split_chunks), the chunks of each band (disjoint columns of the shared
// filtered buffer), then the rows of the band's projection and residual.
//
// Signedness: the u8 x s8 kernels run s8 activations as u8 with 128 added (ops_quant.cpp). The
// caller passes the block input as u8 (flipped when s8, its zero point + 128); the expanded and
// filtered intermediates are always u8 (an s8 intermediate as u8 with its zero point + 128, the same
// values shifted); the projection writes the output's (or, with the residual, P's) real type, and the
// residual reads the block input in its real type, as the unfused QLinearAdd does.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/qconv.h"
#include "kernels/native/qdwconv.h"
#include "kernels/native/qelementwise.h"
#include "kernels/native/qgemm.h"
#include "schedule/fused_block_planner.h"

namespace locus::kernels {

// The expand stage as a dense conv (group 1, dilation 1): its kernel, strides and pads, and the
// block input's height and width (the conv's input; H and W of the shape are then its output, the
// depthwise input).
struct QExpandConv {
  bool on = false;
  int64_t XH = 0, XW = 0;
  int64_t KH = 1, KW = 1, SH = 1, SW = 1, PT = 0, PL = 0, PB = 0, PR = 0;
};

struct QInvertedResidualShape {
  int64_t N = 1, H = 0, W = 0, C = 0;  // block input (with xconv: H, W are the depthwise input's)
  int64_t E = 0;                       // expanded channels (= C if !expand)
  int64_t OC = 0;                      // output channels (= E if !project)
  int64_t KH = 3, KW = 3, SH = 1, SW = 1, PT = 1, PL = 1, PB = 1, PR = 1;
  bool expand = true, project = true, residual = false;
  QExpandConv xconv;  // with expand: the expand stage is this conv, not a 1x1 (one chunk: E)
  int64_t OH() const { return (H + PT + PB - KH) / SH + 1; }
  int64_t OW() const { return (W + PL + PR - KW) / SW + 1; }
  schedule::FusedBlockShape block() const;  // sizes in bytes, filtered band
};

// The stages' weights (s8, ONNX order), s32 biases (nullable) and quantization (QuantParams as
// ops_quant.cpp builds them for the u8 x s8 kernels: a_zero of a u8-run input, w_zero of s8 weights).
// expand_q and dw_q must write u8 (their outputs are the intermediates); project_q writes the output
// (no residual) or P (residual) in its real type.
struct QInvertedResidualWeights {
  const int8_t* expand = nullptr;  // [E, C] (with xconv: [E, C, KH, KW])
  const int32_t* expand_bias = nullptr;
  QuantParams expand_q;
  const int8_t* dw = nullptr;  // [E, KH * KW]
  const int32_t* dw_bias = nullptr;
  QuantParams dw_q;
  const int8_t* project = nullptr;  // [OC, E]
  const int32_t* project_bias = nullptr;
  QuantParams project_q;
  // residual: Y = QLinearAdd(A, B) with (A, B) = (X, P) when x_first, else (P, X); add.s8 is the
  // type of X, P and Y.
  QAddParams add;
  bool x_first = false;
};

struct PackedQInvertedResidual {
  QInvertedResidualShape s;
  schedule::FusedBlockPlan plan;
  std::vector<PackedQB> expand_chunks;    // chunk i: B = C x chunk
  PackedQConv expand_conv;                // with s.xconv: the whole expand stage (one chunk)
  std::vector<PackedQDwConv> dw_chunks;   // chunk i: the chunk's channels (pixel stride = its width)
  PackedQB project;                       // B = E x OC
  QAddParams add;
  bool x_first = false;
  // Per-thread scratch bytes (each part rounded up to 64): the expanded chunk rows (with their
  // padding columns), the band's filtered rows and the band's P tile.
  // With xconv, scratch_exp ends with qconv_row's buffer, at conv_buf.
  int64_t scratch_exp = 0, scratch_filt = 0, scratch_p = 0, conv_buf = 0;
};

// S: the buffer in bytes (the caller applies any safety fraction). threads: how many it runs with.
// room: bytes of memory free beside the block (the arena's, runtime/native): a band buffer beyond it
// is priced (FusedPlannerOptions::buffer_price), one within it is free; a negative room: no price.
// Throws locus::Error (one line) on inconsistent shapes, bad quantization or when no band fits in S.
PackedQInvertedResidual pack_qinverted_residual(const QInvertedResidualShape& s, const QInvertedResidualWeights& w,
                                                int64_t S, int threads = 1, int64_t room = -1);

// Scratch bytes qinverted_residual_nhwc needs (for exactly p.plan.threads threads).
int64_t qinverted_residual_scratch_bytes(const PackedQInvertedResidual& p);

// out[N, OH, OW, OC] from in[N, H, W, C] (u8: the block input as run, see "Signedness"); x_res: the
// block input in its real type (read by the residual only; may equal in). out must not alias in.
void qinverted_residual_nhwc(const PackedQInvertedResidual& p, const uint8_t* in, const uint8_t* x_res, uint8_t* out,
                             uint8_t* scratch);

}  // namespace locus::kernels
