// The fused inverted-residual kernel (docs/method.md section 5): 1x1 expand (+act) -> depthwise KxK
// (+act, any stride) -> 1x1 project (+act) [+ the block input], on NHWC activations, without ever
// materialising the expanded tensor. Either 1x1 stage may be absent (MobileNetV2's first block is
// dw -> 1x1). Schedule: schedule/fused_block_planner.h (bands of output rows x chunks of
// expanded channels, Scan over the chunks, the core's L2 as the buffer).
//
// Pack time: the plan, and every weight cut per chunk in the layout its micro-kernel reads (expand
// and project as packed GEMM panels, depthwise as [tap][channel]).
// Run time, per band (the plan says how its threads split the work: contiguous stretches of
// bands, each walking its bands' chunks in alternating directions; or, when there are fewer bands
// than threads, each thread takes a range of the chunks and the partial outputs are summed): for each chunk, expand the band's input rows (halo included)
// into the chunk buffer (GEMM), filter them (depthwise micro-kernel) into the second chunk buffer and
// accumulate their projection into the band's output rows (GEMM; bias on the band's first chunk,
// activation on its last); then add the block input when `residual`.
//
// A second depthwise stage (the pw -> dw(Kx1) -> dw(1xK) -> pw chains of a 4-way CP decomposition)
// is one more step of the chunk loop: the first stage writes the rows of its output the band needs
// (the second stage's halo included) into a third chunk buffer, the second filters those.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/aligned_vector.h"
#include "kernels/native/activation.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/gemm.h"
#include "kernels/native/gemm_microkernel.h"
#include "schedule/fused_block_planner.h"

namespace locus::kernels {

struct InvertedResidualShape {
  int64_t N = 1, H = 0, W = 0, C = 0;  // block input
  int64_t E = 0;                       // expanded channels (= C if !expand)
  int64_t OC = 0;                      // output channels (= E if !project)
  int64_t KH = 3, KW = 3, SH = 1, SW = 1, PT = 1, PL = 1, PB = 1, PR = 1;
  bool expand = true, project = true, residual = false;
  // Optional second depthwise stage on the first one's output.
  bool dw2 = false;
  int64_t KH2 = 1, KW2 = 1, SH2 = 1, SW2 = 1, PT2 = 0, PL2 = 0, PB2 = 0, PR2 = 0;
  int64_t MH() const { return (H + PT + PB - KH) / SH + 1; }  // first depthwise stage's output
  int64_t MW() const { return (W + PL + PR - KW) / SW + 1; }
  int64_t OH() const { return dw2 ? (MH() + PT2 + PB2 - KH2) / SH2 + 1 : MH(); }
  int64_t OW() const { return dw2 ? (MW() + PL2 + PR2 - KW2) / SW2 + 1 : MW(); }
  schedule::FusedBlockShape block() const;
};

struct InvertedResidualWeights {
  const float* expand = nullptr;   // [E, C, 1, 1] (ONNX OIHW), when shape.expand
  const float* expand_bias = nullptr;  // [E] or null
  Activation expand_act;
  const float* dw = nullptr;       // [E, 1, KH, KW]
  const float* dw_bias = nullptr;  // [E] or null
  Activation dw_act;
  const float* dw2 = nullptr;       // [E, 1, KH2, KW2], when shape.dw2
  const float* dw2_bias = nullptr;  // [E] or null
  Activation dw2_act;
  const float* project = nullptr;  // [OC, E, 1, 1], when shape.project
  const float* project_bias = nullptr;  // [OC] or null
  Activation project_act;
};

struct PackedInvertedResidual {
  InvertedResidualShape s;
  schedule::FusedBlockPlan plan;
  Activation expand_act, dw_act, dw2_act, project_act;
  std::vector<PackedB> expand_chunks;   // chunk i: B = C x chunk (the chunk's expand weights)
  std::vector<AlignedVector<float>> dw_chunks;  // chunk i: [KH*KW][chunk]
  std::vector<AlignedVector<float>> dw2_chunks;  // chunk i: [KH2*KW2][chunk], with a second stage
  std::vector<PackedB> project_chunks;  // chunk i: B = chunk x OC
  std::vector<float> expand_bias, dw_bias, dw2_bias, project_bias;  // full length, zeros if absent
  std::vector<float> zeros;             // a zero input row for padded taps (either stage)
  // Derived once at pack time for the run path:
  Conv2dShape dw_geometry;              // the depthwise stage as a conv (one image, E channels)
  Conv2dShape dw2_geometry;             // the second depthwise stage (MH x MW -> OH x OW)
  Epilogue dw_epilogue, dw2_epilogue;  // the stages' activations as the micro-kernel's clamp
  int64_t ring_rows = 0;                // rows of the expanded ring (halo cache), 0 = linear buffer
  // Without an expand stage the depthwise reads the block input in place: its rows are prefetched
  // when the image does not stay in L2 (dw_input_streams).
  bool prefetch_input = false;
  // Per-thread scratch: expanded rows, first-stage rows (second stage only), filtered chunk, and
  // with plan.split_chunks the thread's partial output of a band (rows x OW x OC).
  int64_t scratch_exp = 0, scratch_mid = 0, scratch_dw = 0, scratch_part = 0;
};

// S: the buffer in entries (floats) the planner may use (the caller applies any safety fraction).
// Throws locus::Error on inconsistent shapes or when no band fits in S.
// threads: how many threads it will run with. The plan (schedule::plan_fused_block_threads, chunks
// multiples of the GEMM micro-kernel's nr) states how they split the work: bands or chunks.
PackedInvertedResidual pack_inverted_residual(const InvertedResidualShape& s, const InvertedResidualWeights& w,
                                              int64_t S, int threads = 1);

// Scratch floats inverted_residual_nhwc needs: per-thread parts for exactly p.plan.threads threads.
int64_t inverted_residual_scratch_floats(const PackedInvertedResidual& p);

// out[N, OH, OW, OC] from in[N, H, W, C] with p.plan.threads threads (1 inside a parallel region),
// whatever the OpenMP setting. out must not alias in.
void inverted_residual_nhwc(const PackedInvertedResidual& p, const float* in, float* out, float* scratch);

}  // namespace locus::kernels
