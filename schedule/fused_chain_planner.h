// Tiling planner for a fused chain (graph op locus.FusedChain, graph/ops.h): a chain of stages, each a
// 1x1 conv (stride 1, unpadded) or a depthwise conv (any window, stride, pads), every intermediate
// read only by the next stage, ending in an optional residual Add. The generalisation of the fused
// inverted-residual block (schedule/fused_block_planner.h) to any length, e.g. a CP-decomposed
// ResNet-50 bottleneck: 1x1 reduce -> 1x1 U -> dw 3x3 -> 1x1 V -> 1x1 expand + residual.
//
// Tensors: T0 is the chain input, T(s+1) the output of stage s, Tn the chain output (n stages).
//
// Schedule: the output of one image is cut into bands of `rows` output rows (full width). Band b's
// output rows map back through every stage's window to the rows of each tensor it needs (the halo;
// band_first / band_last). For each band the stages run in order; an intermediate is either
// whole (all its channels for the band's rows on chip) or chunked by channels. A chunked run starts
// at a 1x1 stage whose input is whole, spans the depthwise stages after it and ends at the next 1x1
// stage, which accumulates the run's chunks into its whole output: per chunk, the first 1x1 computes
// `chunk` channels, the depthwise stages filter them, the last 1x1 adds their contribution. Runs
// walk their chunks forward on even bands and backward on odd ones (Scan), so the chunk at each
// turn keeps its weights on chip.
//
// On chip (the sum, a bound on what is live at once): the band's input rows (a ring of the tallest
// band's input rows: rows shared with the next band stay, so each input row is read once), every
// intermediate's band rows (whole: all channels; chunked: `chunk` channels), the output tile
// (rows x OW x OC accumulated when the last stage closes a run; else rows x OW x panel: a whole
// last stage computes `panel` output channels at a time, adds their residual and writes them), and
// weights: resident stages' whole weights, one chunk's weights per run (its slot), a panel of
// `panel` output channels per streamed whole stage.
// Staged input (stage 0 a 1x1 conv with a whole output): T1 is kept as a ring of its band rows, so
// the rows a band shares with the previous one are not recomputed; only the band's new input rows
// are read, `panel` input channels at a time (the input on chip: new rows x W x panel; stage 0's
// weights streamed as slices of `panel` input channels x its OC).
//
// Modelled DRAM traffic per image, in entries:
//   input     every input row once (ring)
//   residual  External: OH x OW x OC read once; Input (the residual is the chain input, same shape):
//             the band's output rows are among its input rows, nothing more is read (with a
//             staged input they are not kept: read once, as External)
//   weights   resident stage: once; streamed whole stage: once per band (once when its weights
//             are a single panel: the panel stays in its slot); a run: every chunk's
//             weights once per band except the chunk at a turn (still in the run's slot); a run of
//             one chunk: once
//   output    written once
// Halo rows of intermediates are recomputed by both neighbouring bands (`macs` counts them). The
// plan minimises traffic + recomputed MACs / 16 (as the fused-block planner) under the buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace locus::schedule {

struct ChainStage {
  bool depthwise = false;
  int64_t OC = 0;  // output channels (a depthwise stage: its input channels)
  int64_t KH = 1, KW = 1, SH = 1, SW = 1, PT = 0, PB = 0, PL = 0, PR = 0;
};

enum class ChainResidual { None, Input, External };

struct FusedChainShape {
  int64_t H = 0, W = 0, C = 0;  // chain input (one image)
  std::vector<ChainStage> stages;
  ChainResidual residual = ChainResidual::None;
  int64_t n() const { return int64_t(stages.size()); }
  // Tensor i (0: input, n: output).
  int64_t TH(int64_t i) const;
  int64_t TW(int64_t i) const;
  int64_t TC(int64_t i) const;
  int64_t weights(int64_t s) const;      // stage s's weights (1x1: Cin x OC; depthwise: C x KH x KW)
  int64_t macs_per_pixel(int64_t s) const;  // per output pixel of stage s
  // Bad shapes (no stage, a strided or padded 1x1, a depthwise stage whose output is empty, an
  // Input residual of another shape) throw locus::Error naming the stage.
  void check() const;
};

struct FusedChainPlan {
  FusedChainShape shape;
  int64_t S = 0;
  int64_t rows = 0, bands = 0;
  // Per tensor 0..n: 0 whole, else the channels per chunk of the run it belongs to.
  std::vector<int64_t> chunk;
  std::vector<bool> resident;  // per stage: weights on chip for the whole image (whole stages only)
  bool staged = false;         // staged input (see "Staged input" above)
  int64_t buffer_entries = 0;
  int64_t reads_input = 0, reads_residual = 0, reads_weights = 0, writes_output = 0, total = 0;  // per image
  int64_t macs = 0;          // per image, halo recomputation included
  int64_t candidates = 0, over_buffer = 0;
  // Rows [first, last) of tensor i that band b needs (clamped; empty when all taps are padding).
  int64_t band_first(int64_t i, int64_t b) const;
  int64_t band_last(int64_t i, int64_t b) const;
  // The run stage s belongs to: {first 1x1 stage, closing 1x1 stage}, or {-1, -1} (a whole stage).
  std::pair<int64_t, int64_t> run_of(int64_t s) const;
  int64_t chunks_of_run(int64_t first) const;  // chunks of the run starting at stage `first`
  // Weights of the run starting at `first` for channels [e0, e1) of its chunked tensors.
  int64_t run_chunk_weights(int64_t first, int64_t e0, int64_t e1) const;
  std::string describe() const;
};

struct FusedChainPlanAttempt {
  std::optional<FusedChainPlan> plan;
  int64_t need = 0;  // the candidate's buffer entries
  std::string why_not;
};

struct FusedChainPlannerOptions {
  int64_t chunk_step = 32;  // chunks are chunk_step x 2^k, or the run's channels
  int64_t panel = 16;       // channels per weight panel of a streamed whole stage, per staged input slice,
                            // per output panel
};

// The plan for given rows, chunking (per tensor, as FusedChainPlan::chunk) and resident stages, or
// why it does not fit ("rows=4 ... need 70000 entries, more than S=65536"). Bad tiles throw.
FusedChainPlanAttempt try_fused_chain_plan(const FusedChainShape& s, int64_t S, int64_t rows,
                                           const std::vector<int64_t>& chunk, const std::vector<bool>& resident,
                                           bool staged = false, const FusedChainPlannerOptions& o = {});
// The cheapest plan over rows, runs, chunks and resident sets, or why there is none (the message
// names S, the chain and the smallest candidate's need).
FusedChainPlanAttempt search_fused_chain_plan(const FusedChainShape& s, int64_t S, const FusedChainPlannerOptions& o = {});
FusedChainPlan plan_fused_chain(const FusedChainShape& s, int64_t S, const FusedChainPlannerOptions& o = {});

}  // namespace locus::schedule
