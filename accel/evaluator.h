// The evaluator of the accelerator model: prices a Mapping (accel/mapping.h). It replays every
// layer (accel/replay.h) into its own DramModel with issue cycles taken from compute time (ops /
// mac_array accelerator cycles per step, converted to DRAM cycles at clock_mhz and the part's tCK),
// so a layer's stats and energy are its own (the row buffers start closed); totals are sums.
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

struct ScheduleResult {
  ScheduleKind kind = ScheduleKind::FusedScan;
  int64_t buffer_entries = 0;
  std::vector<LayerResult> layers;
  LayerResult total;  // sums over the layers (dram stats summed field by field)
};

struct EvaluateOptions {
  bool simulate_dram = true;      // false: traffic only (no DramModel)
  std::ostream* trace = nullptr;  // DRAMSim2 .trc lines of the whole stream (see DramModel::set_trace)
};

// Prices `m`, a mapping of `wl` (from map_workload or a validated mapping file).
ScheduleResult evaluate_mapping(const Workload& wl, const Mapping& m, const AccelConfig& cfg,
                                const EvaluateOptions& o = {});

}  // namespace locus::accel
