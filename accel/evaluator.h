// The evaluator of the accelerator model: prices a Mapping (accel/mapping.h). It replays every
// layer (accel/replay.h) into its own DramModel, so a layer's stats and energy are its own (the row
// buffers start closed); totals are sums. Layers run back to back: each starts at the absolute DRAM
// cycle the previous one ended (refresh falls at absolute cycles). The issue cycles depend on the
// pacing: Compute takes them from compute time (ops / mac_array accelerator cycles per step,
// converted to DRAM cycles at clock_mhz and the part's tCK), and a layer lasts until both its
// compute and its last burst are done; Dram issues every request of a layer at the layer's start,
// so the DRAM serves them as fast as it can (compute fully overlapped: the DRAM-bound bound, what a
// trace-driven DRAM simulation of the address stream measures) and a layer lasts as long as its
// DRAM traffic.
// Energy: MACs x e_mac_pj + buffer accesses x e_buffer_pj + the DRAM model's. With
// EvaluateOptions::trace set, the whole stream is also replayed into one DramModel with absolute
// cycles (layers back to back) that writes the trace.
//
// Activations are NHWC, Conv weights [OC][C/G][KH][KW] as in ONNX, Gemm weights as stored. Traffic
// is counted in entries; bytes = entries x word bytes.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "accel/accel_config.h"
#include "accel/dram_model.h"
#include "accel/mapping.h"
#include "accel/workload.h"
#include "schedule/fused_block_planner.h"
#include "schedule/tiling_planner.h"

namespace locus::accel {

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

// How requests are issued in time (docs/accelerator-model.md, "Pacing").
enum class Pacing {
  Compute,  // at the cycle the step that needs them starts (loads) or ends (stores): compute-paced
  Dram,     // as soon as the DRAM can take them: DRAM-bound, compute fully overlapped
};
const char* pacing_name(Pacing p);  // "compute", "dram"
// "compute" or "dram"; throws locus::Error naming the value and the choices otherwise.
Pacing parse_pacing(const std::string& name);

struct ScheduleResult {
  ScheduleKind kind = ScheduleKind::FusedScan;
  Pacing pacing = Pacing::Compute;
  int64_t buffer_entries = 0;
  std::vector<LayerResult> layers;
  LayerResult total;  // sums over the layers (dram stats summed field by field)
};

struct EvaluateOptions {
  bool simulate_dram = true;      // false: traffic only (no DramModel)
  Pacing pacing = Pacing::Compute;
  std::ostream* trace = nullptr;  // DRAMSim2 .trc lines of the whole stream (see DramModel::set_trace)
};

// Prices `m`, a mapping of `wl` (from map_workload or a validated mapping file).
ScheduleResult evaluate_mapping(const Workload& wl, const Mapping& m, const AccelConfig& cfg,
                                const EvaluateOptions& o = {});

}  // namespace locus::accel
