// The fused-chain kernel (fp32, NHWC): a chain of 1x1 and depthwise conv stages (each with its
// activation) [+ a residual] [then Relu], graph op locus.FusedChain, run band by band as the chain
// planner's plan says (schedule/fused_chain_planner.h), composing the GEMM and depthwise
// micro-kernels. The intermediates live only in per-band buffers: whole intermediates hold all
// their channels for the band's rows (halo included), a chunked run's intermediates `chunk`
// channels; a run's closing 1x1 stage accumulates each chunk's contribution (bias on the first
// chunk, activation on the last), and the chunks are walked forward on even bands and backward on
// odd ones, as planned. The last stage writes the band's output rows in place; then the residual
// is added and the output activation applied.
//
// Threads: the bands of the batch (image x band) are independent (each recomputes its halo rows),
// so `threads` threads take contiguous stretches of them, each with its own band buffers; a band
// walks its chunks in the direction its own index says (even forward, odd backward) whoever runs it,
// so the output is the same bytes for any thread count. With fewer bands than threads, or bands
// that do not share out evenly (the busiest thread more than 15% above the mean: 3 bands on 2
// threads), one walk runs and its GEMMs split their rows and columns among the threads (also the
// same bytes).
//
// When stage 0 is a 1x1 with a whole output, T1's band buffer is a ring (as the plan's staged
// input): a band computes only the T1 rows the previous band of its walk did not, so the halo rows
// of the first (often the widest) 1x1 are not recomputed. The plan's input panels and output panels
// are buffer-accounting choices of the accelerator's model; the kernel reads the band's input rows
// from the image and writes whole output rows, with the same results.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/native/aligned_vector.h"
#include "kernels/native/activation.h"
#include "kernels/native/conv2d_nhwc.h"
#include "kernels/native/gemm.h"
#include "schedule/fused_chain_planner.h"

namespace locus::kernels {

struct FusedChainStageWeights {
  const float* w = nullptr;     // 1x1: [OC, C, 1, 1]; depthwise: [C, 1, KH, KW] (ONNX OIHW)
  const float* bias = nullptr;  // [OC] or null
  Activation act;               // none, relu or clip
};

struct PackedFusedChain {
  schedule::FusedChainPlan plan;
  int64_t N = 1;
  Activation out_act;  // after the residual (none or relu)
  struct Stage {
    Activation act;
    std::vector<float> bias;              // OC entries, zeros when absent
    std::vector<PackedB> gemm;            // 1x1: one B (whole), or one per chunk of its run
    std::vector<AlignedVector<float>> dw;   // depthwise: [taps][width] per chunk (one when whole)
    Conv2dShape geom;                     // depthwise: the stage as a conv on one image
  };
  std::vector<Stage> stages;
  std::vector<int64_t> offset;  // per tensor 1..n-1: its band buffer's offset in a thread's part
  int threads = 1;              // threads the walk is split among (see above)
  int64_t ring_rows = 0;        // rows of the T1 ring (0: T1 is a linear band buffer)
  int64_t per_thread = 0;       // floats of one thread's band buffers
  int64_t scratch = 0;          // floats: threads x per_thread band buffers, then a zero row
  int64_t zeros_at = 0;
};

// Packs the weights for the plan the chain planner finds for `s` on S floats (throws locus::Error
// naming the chain when no band fits, or on bad weights), to run on `threads` threads.
PackedFusedChain pack_fused_chain(const schedule::FusedChainShape& s, int64_t N,
                                  const std::vector<FusedChainStageWeights>& w, const Activation& out_act, int64_t S,
                                  int threads = 1);
// The same for a given plan.
PackedFusedChain pack_fused_chain(const schedule::FusedChainPlan& plan, int64_t N,
                                  const std::vector<FusedChainStageWeights>& w, const Activation& out_act,
                                  int threads = 1);

// out[N, OH, OW, OC] from in[N, H, W, C] (and residual[N, OH, OW, OC] when the shape has one, else
// null); scratch holds p.scratch floats. Runs on p.threads threads (1 inside a parallel region),
// whatever the OpenMP setting. out must alias neither input.
void fused_chain_nhwc(const PackedFusedChain& p, const float* in, const float* residual, float* out, float* scratch);

}  // namespace locus::kernels
