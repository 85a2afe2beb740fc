// The fused squeeze-excite block (MobileNetV3, graph/ops.h FusedSEBlock): 1x1 expand (+act) ->
// depthwise KxK (+act) -> squeeze-excite gate g = act(excite(act(squeeze(mean_hw(D))))) -> 1x1
// project of D * g (+act) [+ the block input], on NHWC activations. Schedule:
// schedule::plan_se_block (fused_block_planner.h): the bands and chunks of the fused block, walked
// twice per image, the SE between the walks; two-pass keeps D (stored chunk-major, [chunk][OH][OW][c],
// so a band of a chunk is one contiguous run) and pass 2 walks the bands backwards; recompute
// expands and filters again in pass 2.
//
// Activations that are not clamps (hardswish, hardsigmoid, sigmoid, the exporters' decomposed
// HardSwish) are applied by this kernel to each stage's rows after the micro-kernel has written them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/native/aligned_vector.h"
#include "kernels/native/activation.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/epilogue.h"
#include "kernels/native/gemm.h"
#include "kernels/native/inverted_residual.h"
#include "schedule/fused_block_planner.h"

namespace locus::kernels {

// A stage's activation: an Activation, or (ops) the exporters' Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)
// as those four float operations.
struct StageActivation {
  Activation act;
  bool hardswish_ops = false;
  void apply(float* x, int64_t n) const;  // in place
  // What the micro-kernel may apply itself (a clamp), else none.
  Activation in_kernel() const { return !hardswish_ops && act.is_clamp() ? act : Activation{}; }
  bool after_kernel() const { return hardswish_ops || !act.is_clamp(); }
};

struct SeBlockShape {
  InvertedResidualShape block;  // project required, no second depthwise stage
  int64_t S = 0;                // squeeze channels
};

struct SeBlockWeights {
  const float* expand = nullptr;  // [E, C, 1, 1], when block.expand
  const float* expand_bias = nullptr;
  const float* dw = nullptr;  // [E, 1, KH, KW]
  const float* dw_bias = nullptr;
  const float* project = nullptr;  // [OC, E, 1, 1]
  const float* project_bias = nullptr;
  const float* squeeze = nullptr;  // [S, E, 1, 1]
  const float* squeeze_bias = nullptr;
  const float* excite = nullptr;  // [E, S, 1, 1]
  const float* excite_bias = nullptr;
  StageActivation expand_act, dw_act, project_act, squeeze_act, excite_act;
};

struct PackedSeBlock {
  SeBlockShape s;
  schedule::SeBlockPlan plan;
  StageActivation expand_act, dw_act, project_act, squeeze_act, excite_act;
  std::vector<PackedB> expand_chunks, project_chunks;
  std::vector<AlignedVector<float>> dw_chunks;  // chunk i: [KH*KW][chunk]
  std::vector<float> expand_bias, dw_bias, project_bias, squeeze, squeeze_bias, excite, excite_bias;
  std::vector<float> zeros;
  Conv2dShape dw_geometry;
  Epilogue dw_epilogue;
  int threads = 1;
  std::string note;  // set when no band fit the S asked for (planned for a larger one)
  // Scratch parts (floats, each rounded up to 16): expanded rows, filtered band chunk, stored D
  // (two-pass), pooled means + squeeze + gate.
  int64_t scratch_exp = 0, scratch_dw = 0, scratch_store = 0, scratch_se = 0;
};

// S: the buffer in floats (the core's L2); threads: for the GEMMs. force: the strategy whatever
// the planner's traffic model says. Throws locus::Error on inconsistent shapes.
PackedSeBlock pack_se_block(const SeBlockShape& s, const SeBlockWeights& w, int64_t S, int threads = 1,
                            std::optional<schedule::SeStrategy> force = std::nullopt);
int64_t se_block_scratch_floats(const PackedSeBlock& p);
// out[N, OH, OW, OC] from in[N, H, W, C]; out must not alias in.
void se_block_nhwc(const PackedSeBlock& p, const float* in, float* out, float* scratch);

}  // namespace locus::kernels
