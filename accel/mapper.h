// The mapper of the accelerator model: decides how a schedule runs a Workload on a buffer of S
// entries, as a Mapping (accel/mapping.h) the evaluator prices.
//
//   baseline    layer by layer; every GEMM (1x1 conv, implicit-im2col conv, Gemm) takes the tiles
//               the shared planner (schedule/tiling_planner.h) finds cheapest with the
//               conventional orders only (RowMajor, ColMajor); fused groups run as their layers
//   scan        layer by layer, Scan orders allowed (the planner picks among all four)
//   fused-scan  FusedInvertedResidual groups run as one fused schedule from plan_fused_block
//               (bands of output rows x chunks of expanded channels, chunks walked in a serpentine);
//               other layers as `scan`. A group runs as `scan` instead when no band fits the buffer
//               or when fusing would move more DRAM data than its layers one by one (the note says
//               which, with the figures).
// Depthwise convs and pools take the widest channel chunk (all C, then multiples of 32, then 16 ...
// 1) whose single output row fits, then the tallest row band that fits.
//
// Placement: one DRAM address space, a bump allocator: weights first, in order of first use, then
// the graph inputs and every activation in order of production, each region starting on a DRAM row
// boundary (MapOptions::align_rows); View outputs share their input's region; nothing is freed. The
// intermediates of a fused group run layer by layer are placed after everything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "accel/accel_config.h"
#include "accel/mapping.h"
#include "accel/workload.h"
#include "schedule/fused_block_planner.h"
#include "schedule/tiling_planner.h"

namespace locus::accel {

// Planner options of the layer-by-layer GEMMs of a schedule: register steps 1, min_m = 1 and
// min_n = min_k = `burst_entries` (a DRAM burst's worth of entries; tiles narrower along N or K,
// whose rows in DRAM are shorter than a burst, are taken only when nothing else fits: the planner
// counts entries, but a 1-entry-wide C tile writes a whole burst per entry); baseline restricted to
// RowMajor / ColMajor, scan and fused-scan choose among all four orders.
schedule::PlannerOptions gemm_planner_options(ScheduleKind k, int64_t burst_entries = 1);
// Options of the fused groups: chunks in steps of `burst_entries` (the projection weights are read
// as OC runs of `chunk` entries), no smaller chunk unless nothing else fits, halo cache on.
schedule::FusedPlannerOptions fused_planner_options(int64_t burst_entries = 32);

// The fused-block plan of a group on S entries, or the planner's reason when no band fits.
schedule::FusedPlanAttempt try_plan_fused(const Layer& l, int64_t S, int64_t burst_entries);

struct MapOptions {
  int64_t buffer_entries = 0;  // 0: the config's
  bool align_rows = true;      // regions start on DRAM row boundaries (false: packed)
};

// Maps the workload. Throws Error naming the layer when the buffer cannot hold any tile of it.
Mapping map_workload(const Workload& w, ScheduleKind kind, const AccelConfig& cfg, const MapOptions& o = {});

}  // namespace locus::accel
