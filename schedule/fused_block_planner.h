// Tiling planner for a fused inverted-residual block, 1x1 expand -> depthwise KxK -> 1x1 project
// (docs/method.md section 5), with an on-chip buffer of S entries (a CPU core's L2 in floats, or an
// accelerator's global buffer).
//
// Schedule: the output of one image is cut into bands of `rows` output rows (a tile spans the full
// width), the E expanded channels into chunks of `chunk` channels. For each band the kernel walks the
// chunks; for each chunk it expands the band's input rows (its halo rows included) into the chunk
// buffer, filters them depthwise and accumulates the chunk's projection into the band's output tile.
// Consecutive bands walk the chunks in opposite directions (Scan): the chunk at each turn is the
// same, so its weights are still on chip.
//
// On chip at once: the band's input tile (in_rows x W x C, kept across the chunks), the expanded
// chunk (in_rows x W x chunk), the filtered chunk (rows x OW x chunk), the output tile
// (rows x OW x OC, accumulated across the chunks) and the chunk's weights (C.chunk + KH.KW.chunk +
// chunk.OC). The expanded tensor never leaves the chip. With a second depthwise stage (CP's
// pw -> dw(Kx1) -> dw(1xK) -> pw) the first stage's output rows the band needs (its halo for the
// second stage included) are one more chunk buffer (mid_rows x MW x chunk), and the second stage's
// weights (KH2.KW2.chunk) join the chunk's.
//
// Modelled DRAM traffic per image, in entries:
//   input   every band reads its in_rows input rows once (halo rows are read by both neighbours)
//   weights every band reads every chunk's weights, except the chunk at a Scan turn (still on chip);
//           with one chunk the weights are read once
//   output  written once
// Halo cache (default on, expand stage present): the expanded rows live in a ring of in_rows rows
// for every chunk (in_rows x W x E on chip instead of in_rows x W x chunk), so the rows a band shares
// with the next one (KH - SH when positive) stay where they are and each input row is read and
// expanded once. Without it, halo rows are
// read and expanded by both neighbouring bands; `expand_macs` counts the recomputation.
// The plan minimises traffic + recomputed expand MACs / 16 (see kMacsPerEntry in the .cpp), under
// the buffer constraint and the kernel's minimum chunk.
//
// Units: S, buffer_entries and the traffic count units of FusedBlockShape::elem. An fp32 plan counts
// float entries (every element one unit, S = L2 / 4); an int8 plan (FusedElementSizes::int8()) counts
// bytes: activations and weights 1, the s32 accumulators / per-channel biases and multipliers 4, so
// the same L2 holds four times the activation entries.
// Filtered band (FusedBlockShape::filtered_band, the int8 kernel's schedule): instead of
// accumulating each chunk's projection into an s32 output tile, the band keeps its filtered rows for
// every expanded channel (rows x OW x E activations, plan.filtered_entries) and projects them once
// (K = E) into a requantized output tile (rows x OW x OC activations); the project weights stay on
// chip for the whole block (read once), the chunk's expand and depthwise weights are walked in Scan
// order as above. When no band fits with the project weights resident (a small L2 and a wide
// block, e.g. E x OC = 960 x 320 bytes against a 512 KiB L2), the search falls back to streaming them
// (FusedBlockShape::stream_project): one 32-column panel (E x 32) on chip, all of them read once per
// band.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace locus::schedule {

// The size of each kind of element in the plan's unit (see "Units" above).
struct FusedElementSizes {
  int64_t activation = 1, weight = 1, accumulator = 1;
  bool bytes = false;  // the unit is a byte (else a float entry)
  const char* unit() const { return bytes ? "bytes" : "entries"; }
  static FusedElementSizes int8() { return {1, 1, 4, true}; }
};

struct FusedBlockShape {
  int64_t H = 0, W = 0, C = 0;  // block input (one image)
  int64_t E = 0;                // expanded channels (= C without an expand stage)
  int64_t OC = 0;               // output channels (= E without a project stage)
  int64_t KH = 3, KW = 3, SH = 1, SW = 1, PT = 1, PB = 1, PL = 1, PR = 1;
  bool expand = true, project = true;
  // Optional second depthwise stage applied to the first one's output (the dw(Kx1) -> dw(1xK) pair
  // of a 4-way CP decomposition): its kernel, strides and pads.
  bool dw2 = false;
  int64_t KH2 = 1, KW2 = 1, SH2 = 1, SW2 = 1, PT2 = 0, PB2 = 0, PL2 = 0, PR2 = 0;
  FusedElementSizes elem;       // fp32: every element one entry
  bool filtered_band = false;   // the int8 schedule (see "Filtered band" above); no second stage
  bool stream_project = false;  // filtered band: project weights streamed per band, not resident
  // The first depthwise stage's output ("mid"), and the block's output.
  int64_t MH() const { return (H + PT + PB - KH) / SH + 1; }
  int64_t MW() const { return (W + PL + PR - KW) / SW + 1; }
  int64_t OH() const { return dw2 ? (MH() + PT2 + PB2 - KH2) / SH2 + 1 : MH(); }
  int64_t OW() const { return dw2 ? (MW() + PL2 + PR2 - KW2) / SW2 + 1 : MW(); }
};

struct FusedBlockPlan {
  FusedBlockShape shape;
  int64_t S = 0;
  int64_t rows = 0;   // output rows per band
  int64_t chunk = 0;  // expanded channels per chunk
  int64_t bands = 0, chunks = 0;
  int64_t buffer_entries = 0;  // the most the plan keeps on chip (in shape.elem's unit)
  int64_t filtered_entries = 0;  // of which the band's filtered rows (filtered_band: rows x OW x E)
  int64_t reads_input = 0, reads_weights = 0, writes_output = 0, total = 0;  // per image, entries
  bool halo_cache = false;   // expanded halo rows kept on chip between consecutive bands
  int64_t halo_rows = 0;     // rows consecutive bands share (0 without the cache)
  int64_t expand_macs = 0;   // per image, halo recomputation included
  int64_t candidates = 0;    // (rows, chunk) pairs considered
  int64_t over_buffer = 0;   // of which exceeded the buffer
  // How threads share the work (plan_fused_block_threads; 1 thread and 1 image otherwise).
  int64_t images = 1;        // the batch the band walk covers: images x bands bands
  int threads = 1;           // the kernel runs with exactly these (scratch is sized for them)
  // > 1: that many threads each take a contiguous range of the chunks of every band and sum their
  // partial outputs (few bands, many chunks); 0: threads take contiguous stretches of bands.
  int64_t split_chunks = 0;
  // Why the thread split kept a plan it meant to change (chunks not re-cut, bands not rebalanced),
  // e.g. "bands not rebalanced for 2 threads: no balanced band height fits S (rows=2 chunk=64 need
  // 9000 entries, more than S=8192)", and why the buffer's price shortened the bands ("bands of 7
  // rows, not 29: ..."); empty when nothing of the kind happened.
  std::string note;
  // Band split: of T threads (T <= threads), thread t's share of the batch's bands is
  // [stretch_begin(t, T), stretch_begin(t + 1, T)) (band g is image g / bands, band g % bands). The
  // fp32 kernel balances the shares at run time (kernels/native/meet_split.h: each pair of threads
  // walks its two shares from both ends until they meet); the int8 kernel walks them as they are.
  int64_t stretch_begin(int64_t t, int64_t T) const { return images * bands * t / T; }
  // Chunk split: thread t of T takes chunks [chunk_begin(t, T), chunk_begin(t + 1, T)).
  int64_t chunk_begin(int64_t t, int64_t T) const { return chunks * t / T; }
  // Input rows [first, last) that band b needs (clamped to the image; empty when every tap of the
  // band falls into padding).
  int64_t band_in_first(int64_t b) const;
  int64_t band_in_last(int64_t b) const;
  // Rows [first, last) of the first depthwise stage's output that band b needs: with a second
  // stage its halo, clamped to [0, MH); without, the band's own output rows.
  int64_t band_mid_first(int64_t b) const;
  int64_t band_mid_last(int64_t b) const;
  std::string describe() const;
};

struct FusedPlannerOptions {
  int64_t chunk_step = 16;  // chunks are multiples of this (or E)
  // Smallest chunk the kernel prefers (clamped to E): every chunk beyond the first reloads and
  // restores the band's output tile, so chunks under 64 (projection K under 64) cost more than
  // they save. Smaller chunks (multiples of chunk_step, or 8) are used only when nothing else fits.
  int64_t min_chunk = 64;
  bool halo_cache = true;
  // At least this many bands per image (clamped to OH): a CPU kernel whose threads split the band
  // walk needs one band per thread at batch 1, even when the whole block fits the buffer.
  int64_t min_bands = 1;
  // What one entry of the buffer beyond `free_buffer` costs, in entries of traffic (0: nothing, an
  // accelerator's on-chip buffer). On a CPU the buffer is memory the kernel writes each time it
  // runs, planned in the arena (runtime/native): where it is larger than the memory the arena has
  // free during the block, it makes the arena larger, and every inference first misses on each line
  // of the arena once the last layers' weights have flushed the cache. At 1, a taller band is then
  // worth it only while the halo it saves costs more than the rows it adds: e.g. MobileNetV2-int8's
  // 112x112 block 16 -> 96 -> 24 goes from 29-row bands (371 KB) to 7-row ones.
  int64_t buffer_price = 0;
  int64_t free_buffer = 0;  // entries of the buffer that cost nothing (the arena's free memory)
};

// One candidate of the search: the plan for given rows and chunk, or why it has none (it does not
// fit in S: "rows=4 chunk=64 need 70000 entries, more than S=65536"). Bad shapes or tiles throw.
struct FusedPlanAttempt {
  std::optional<FusedBlockPlan> plan;
  std::string why_not;
};

// The cheapest plan, or why there is none (no (rows, chunk) fits in S; the message names the
// smallest candidate). plan_fused_block is the same but throws locus::Error with that message.
FusedPlanAttempt search_fused_block_plan(const FusedBlockShape& s, int64_t S, const FusedPlannerOptions& o = {});
FusedBlockPlan plan_fused_block(const FusedBlockShape& s, int64_t S, const FusedPlannerOptions& o = {});

// The plan for a batch of `images` run by `threads` threads (the CPU kernel): plan_fused_block, then
// the thread split. When the batch has fewer bands than threads, the threads split the chunks
// instead (split_chunks = threads; E re-cut into a multiple of `threads` chunks when that fits and
// costs the least modelled traffic), if there are enough chunks and a project stage to sum partial
// results in; otherwise the plan is made with at least one band per thread. With a band split the
// band height is re-chosen when contiguous stretches would leave a thread more than 5% above the
// mean output rows, if a balanced height costs at most a quarter more traffic.
FusedBlockPlan plan_fused_block_threads(const FusedBlockShape& s, int64_t images, int64_t S, int threads,
                                        const FusedPlannerOptions& o = {});

// One candidate: the plan for these rows and chunk, or why it does not fit.
FusedPlanAttempt try_fused_block_plan(const FusedBlockShape& s, int64_t S, int64_t rows, int64_t chunk,
                                      bool halo_cache = true);

// The plan for given rows and chunk (no search; throws if it does not fit in S).
FusedBlockPlan make_fused_block_plan(const FusedBlockShape& s, int64_t S, int64_t rows, int64_t chunk,
                                     bool halo_cache = true);

// ---- Squeeze-excite blocks (FusedSEBlock, graph/ops.h) ----
// A MobileNetV3 block puts a squeeze-excite between the depthwise and the project conv: the gate
// needs the mean of the whole depthwise output D before any of it can be projected, so the band
// walk above is cut in two passes over the image, with the SE's two tiny 1x1 convs between them.
// Both strategies walk the same bands and chunks (`block`, planned as the fused block above
// without the halo cache):
//   two-pass   pass 1 expands, filters and pools band by band and stores D (OH x OW x E); what fits
//              next to the walk's working set (S - block.buffer_entries) stays on chip, the rest is
//              spilled: written to memory once and read back once. Pass 2 walks the bands in
//              reverse (the last stored first: those are the ones still on chip), scales by the
//              gate and projects.
//   recompute  pass 1 expands, filters and only pools; pass 2 expands and filters again, scales
//              and projects: no D in memory, but the block input is read twice (once from memory
//              unless it fits next to the working set), the expand and depthwise weights are read
//              again, and their MACs are done twice.
// Modelled extra traffic per image, in entries (on top of the walk's block.total):
//   two-pass   2 x spilled
//   recompute  input re-read (block.reads_input, 0 if the input fits beside the walk) + the walk's
//              weight reads again (block.reads_weights; its project share makes this an upper
//              bound) + recomputed MACs / 16 (the same MAC price as the halo trade-off above)
// The cheaper wins; a tie goes to two-pass (no recomputation).
enum class SeStrategy { TwoPass, Recompute };
const char* se_strategy_name(SeStrategy s);  // "two-pass", "recompute"

struct SeBlockPlan {
  FusedBlockPlan block;         // bands x chunks of both passes (project stage included)
  SeStrategy strategy = SeStrategy::TwoPass;
  int64_t stored = 0;           // D of one image: OH x OW x E entries
  int64_t kept = 0, spilled = 0;  // two-pass: of D, on chip between the passes / through memory
  int64_t input_reread = 0;     // recompute: entries of the block input read from memory again
  int64_t recompute_macs = 0;   // recompute: expand + depthwise MACs done again
  int64_t extra_two_pass = 0, extra_recompute = 0;  // the modelled extra traffic of each (entries)
  std::string describe() const;
};

// The plan of a squeeze-excite block (s: the fused block's shape, project stage required). force:
// take that strategy whatever the model says (tests, benchmarks). Throws like plan_fused_block.
SeBlockPlan plan_se_block(const FusedBlockShape& s, int64_t S, const FusedPlannerOptions& o = {},
                          std::optional<SeStrategy> force = std::nullopt);

}  // namespace locus::schedule
