// The replay of the accelerator model: turns a mapping (accel/mapping.h) into the address stream a
// schedule sends to DRAM, tile by tile, with the accelerator cycle of every request, and counts the
// traffic, the on-chip buffer accesses and the compute. GEMM layers replay their tiles with the
// residency policy of schedule::BufferSimulator; depthwise convs and pools a row-band walk; other
// ops a stream; fused groups the band x chunk walk of their FusedBlockPlan (or their stages, one
// after the other, when the mapping runs them layer by layer).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "accel/mapping.h"
#include "accel/workload.h"
#include "schedule/fused_block_planner.h"
#include "schedule/fused_chain_planner.h"
#include "schedule/tiling_planner.h"

namespace locus::accel {

// Where the schedule's requests go: (byte address, bytes, write, accelerator cycle).
using RequestSink = std::function<void(uint64_t addr, uint64_t bytes, bool write, uint64_t acc_cycle)>;

// Counts of one replay, in entries.
struct ReplayCounts {
  int64_t reads_a = 0, reads_b = 0, writes_c = 0;  // GEMM: A, B (weights) read, C written
  int64_t reads_input = 0, reads_weights = 0, writes_output = 0;  // fused group
  int64_t buffer_accesses = 0, ops = 0, cycles = 0;
};

// Replays a GEMM plan for a plain GEMM (A row-major M x K at a_base, B stored N x K at b_base, C
// row-major M x N at c_base) with the residency policy of schedule::BufferSimulator, sending every
// load and store to `sink` (may be empty).
ReplayCounts replay_plain_gemm(const schedule::Plan& p, uint64_t a_base, uint64_t b_base, uint64_t c_base,
                               int64_t word_bytes, int mac_array, const RequestSink& sink);

// Replays a fused-block plan for `images` images: input NHWC at x, output NHWC at y, weights
// [E][C] at w_expand, [E][taps] at w_dw, [E][taps2] at w_dw2 (taps2 = 0: one depthwise stage),
// [OC][E] at w_project. Per image, band by band: the band's new input rows are read, then its chunks
// are walked (forward on even bands, backward on odd ones) and each chunk's weights read unless the
// chunk is the one at the turn (still on chip; with one chunk the weights are read once per image),
// then the band's output rows are written.
struct FusedAddresses {
  uint64_t x = 0, y = 0, w_expand = 0, w_dw = 0, w_dw2 = 0, w_project = 0;
  int64_t taps = 9, taps2 = 0;
  // squeeze-excite blocks: the SE's weights ([S][E], [E][S]) and where D spills (two-pass)
  uint64_t w_squeeze = 0, w_excite = 0, spill = 0;
  int64_t squeeze = 0;
};
ReplayCounts replay_fused_block(const schedule::FusedBlockPlan& p, int64_t images, const FusedAddresses& a,
                                int64_t word_bytes, int mac_array, const RequestSink& sink);
// Replays a squeeze-excite block's plan (schedule::plan_se_block): per image, pass 1 walks the
// bands as above without the projection (two-pass: the first `spilled` entries of D, in order of
// production, written to a.spill), then the SE weights are read, then pass 2 walks the bands
// (two-pass: backwards, the spilled part of each read back; recompute: forwards, the input rows
// and expand / depthwise weights read and their MACs done again) projecting into the output.
ReplayCounts replay_se_block(const schedule::SeBlockPlan& p, int64_t images, const FusedAddresses& a,
                             int64_t word_bytes, int mac_array, const RequestSink& sink);

// Replays a fused-chain plan (schedule/fused_chain_planner.h) for `images` images: input NHWC at
// x, the External residual NHWC at r, output NHWC at y, stage s's weights at w[s] ([OC][C] for a
// 1x1 stage, [C][KH.KW] for a depthwise one). Per image, band by band: the band's new input rows
// (and residual rows) are read, the stages run in order (whole stages read their weights every band
// unless resident or one panel, then at the first band only; a run walks its chunks forward on even
// bands and backward on odd ones, reading each chunk's weights except the chunk at the turn), then
// the band's output rows are written. reads_input counts the residual too; ops are the MACs with
// the halo rows recomputed.
struct ChainAddresses {
  uint64_t x = 0, r = 0, y = 0;
  std::vector<uint64_t> w;
  int64_t panel = schedule::FusedChainPlannerOptions{}.panel;  // the plan's (one-panel stages read once)
};
ReplayCounts replay_fused_chain(const schedule::FusedChainPlan& p, int64_t images, const ChainAddresses& a,
                                int64_t word_bytes, int mac_array, const RequestSink& sink);
// Addresses of a FusedChain layer's tensors under `c`'s placement.
struct ReplayContext;
ChainAddresses chain_addresses(const ReplayContext& c, const Layer& l);

// What the replay of one layer of a mapping needs besides the layer.
struct ReplayContext {
  const Workload& wl;
  const std::map<std::string, uint64_t>& placement;  // Mapping::placement
  int64_t S = 0;                                      // buffer entries (the stream pieces)
  int64_t word_bytes = 2;
  int mac_array = 1;
  uint64_t addr(const std::string& tensor) const;     // byte address of a tensor's region (View aliases followed)
};

// One layer's replay: DRAM traffic in entries, buffer accesses, ops, accelerator cycles, the tiling.
struct LayerReplay {
  int64_t reads = 0, writes = 0, buffer_accesses = 0, ops = 0, cycles = 0;
  std::string tiling;
};

// Replays layer `l` as `m` maps it (a Fused layer: its fused plan, or its stages in one stream).
LayerReplay replay_layer(const ReplayContext& c, const Layer& l, const LayerMapping& m, const RequestSink& sink);

// The on-chip entries a band walk of `l` (Depthwise / Pool) with `rows` x `chunk` needs.
int64_t band_entries(const Layer& l, int64_t rows, int64_t chunk);
// Addresses of a fused group's tensors under `c`'s placement.
FusedAddresses fused_addresses(const ReplayContext& c, const Layer& l);

}  // namespace locus::accel
