// Schedules of the accelerator model (docs/accelerator-model.md, "Schedules"): how a Workload's
// layers run on an on-chip buffer of S entries, what they move to and from DRAM, and what that
// costs. A schedule is mapped (accel/mapper.h: tiles, bands, fuse-or-not, DRAM placement, as a
// Mapping, accel/mapping.h), replayed (accel/replay.h: the address stream) and priced
// (accel/evaluator.h). run_schedule is the two steps in one call.
#pragma once

#include <iosfwd>

#include "accel/accel_config.h"
#include "accel/evaluator.h"
#include "accel/mapper.h"
#include "accel/mapping.h"
#include "accel/replay.h"
#include "accel/workload.h"

namespace locus::accel {

struct ScheduleOptions {
  int64_t buffer_entries = 0;     // 0: the config's
  bool simulate_dram = true;      // false: traffic only (no DramModel), regions packed
  Pacing pacing = Pacing::Compute;
  std::ostream* trace = nullptr;  // DRAMSim2 .trc lines of the whole stream (see DramModel::set_trace)
};

// map_workload then evaluate_mapping. Throws Error naming the layer when the buffer cannot hold any
// tile of it.
ScheduleResult run_schedule(const Workload& w, ScheduleKind kind, const AccelConfig& cfg,
                            const ScheduleOptions& o = {});

}  // namespace locus::accel
