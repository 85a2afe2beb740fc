// Schedules of the accelerator model (docs/accelerator-model.md, "Schedules"): how a Workload's
// layers run on an on-chip buffer of S entries, what they move to and from DRAM, and what that
// costs.
//
//   baseline    layer by layer; every GEMM (1x1 conv, implicit-im2col conv, Gemm) takes the tiles
//               the shared planner (schedule/tiling_planner.h) finds cheapest with the
//               conventional orders only (RowMajor, ColMajor); fused groups run as their layers
//   scan        layer by layer, Scan orders allowed (the planner picks among all four)
//   fused-scan  FusedInvertedResidual groups run as one fused schedule from plan_fused_block
//               (bands of output rows x chunks of expanded channels, chunks walked in a serpentine);
//               other layers as `scan`. A group for which no band fits the buffer runs as `scan`
//               (LayerResult::note says so).
//
// Every schedule places each tensor in one DRAM address space (a bump allocator: weights first, in
// order of first use, then the graph inputs and every activation in order of production, each
// region starting on a DRAM row boundary; View outputs share their input's region; nothing is
// freed) and emits its real loads and stores, tile by tile, to a DramModel with issue cycles taken
// from compute time (ops / mac_array accelerator cycles per step, converted to DRAM cycles at
// clock_mhz and the part's tCK). Activations are NHWC, Conv weights [OC][C/G][KH][KW] as in ONNX,
// Gemm weights as stored. Traffic is counted in entries; bytes = entries x word bytes.
//
// Each layer gets its own DramModel (its stats and energy are the layer's own; the row buffers start
// closed); totals are sums. With ScheduleOptions::trace set, the whole stream is also replayed into
// one DramModel with absolute cycles (layers back to back) that writes the trace.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "schedule/fused_block_planner.h"
#include "schedule/tiling_planner.h"
#include "runtime/accel/accel_config.h"
#include "runtime/accel/dram_model.h"
#include "runtime/accel/workload.h"

namespace locus::accel {

enum class ScheduleKind { Baseline, Scan, FusedScan };
const char* schedule_name(ScheduleKind k);  // "baseline", "scan", "fused-scan"
// Throws Error listing the known names.
ScheduleKind parse_schedule(const std::string& name);
std::vector<ScheduleKind> all_schedules();

// Planner options of the layer-by-layer GEMMs of a schedule: register steps 1, min_m = 1 and
// min_n = min_k = `burst_entries` (a DRAM burst's worth of entries; tiles narrower along N or K,
// whose rows in DRAM are shorter than a burst, are taken only when nothing else fits: the planner
// counts entries, but a 1-entry-wide C tile writes a whole burst per entry); baseline restricted to
// RowMajor / ColMajor, scan and fused-scan choose among all four orders.
schedule::PlannerOptions gemm_planner_options(ScheduleKind k, int64_t burst_entries = 1);
// Options of the fused groups: chunks in steps of `burst_entries` (the projection weights are read
// as OC runs of `chunk` entries), no smaller chunk unless nothing else fits, halo cache on.
schedule::FusedPlannerOptions fused_planner_options(int64_t burst_entries = 32);

struct LayerResult {
  std::string name, op;
  LayerKind kind = LayerKind::Eltwise;
  std::string tiling;              // one line: tiles and order, band rows, chunk, ...
  std::string note;                // e.g. "fused group did not fit: run layer by layer"
  std::optional<schedule::Plan> gemm_plan;             // Pointwise / Conv / Gemm
  std::optional<schedule::FusedBlockPlan> fused_plan;  // Fused under fused-scan
  int64_t macs = 0, ops = 0;
  int64_t read_entries = 0, write_entries = 0;  // the schedule's DRAM traffic
  int64_t read_bytes = 0, write_bytes = 0;      // entries x word bytes
  int64_t buffer_accesses = 0;                  // on-chip buffer reads + writes, in words
  int64_t compute_cycles = 0;                   // accelerator cycles
  DramStats dram;                               // from the DRAM model (zero when not simulated)
  double e_mac_pj = 0, e_buffer_pj = 0;
  double e_dram_pj() const { return dram.total_pj(); }
  double e_total_pj() const { return e_mac_pj + e_buffer_pj + e_dram_pj(); }
};

struct ScheduleResult {
  ScheduleKind kind = ScheduleKind::FusedScan;
  int64_t buffer_entries = 0;
  std::vector<LayerResult> layers;
  LayerResult total;  // sums over the layers (dram stats summed field by field)
};

struct ScheduleOptions {
  int64_t buffer_entries = 0;     // 0: the config's
  bool simulate_dram = true;      // false: traffic only (no DramModel)
  std::ostream* trace = nullptr;  // DRAMSim2 .trc lines of the whole stream (see DramModel::set_trace)
};

// Runs the schedule. Throws Error naming the layer when the buffer cannot hold any tile of it.
ScheduleResult run_schedule(const Workload& w, ScheduleKind kind, const AccelConfig& cfg,
                            const ScheduleOptions& o = {});

// ---- building blocks (exposed for tests) ----

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
};
ReplayCounts replay_fused_block(const schedule::FusedBlockPlan& p, int64_t images, const FusedAddresses& a,
                                int64_t word_bytes, int mac_array, const RequestSink& sink);

}  // namespace locus::accel
