// run_schedule (accel/schedule.h): map, then evaluate.
#include "accel/schedule.h"

namespace locus::accel {

ScheduleResult run_schedule(const Workload& wl, ScheduleKind kind, const AccelConfig& cfg, const ScheduleOptions& o) {
  MapOptions mo;
  mo.buffer_entries = o.buffer_entries;
  mo.align_rows = o.simulate_dram;
  EvaluateOptions eo;
  eo.simulate_dram = o.simulate_dram;
  eo.trace = o.trace;
  eo.pacing = o.pacing;
  return evaluate_mapping(wl, map_workload(wl, kind, cfg, mo), cfg, eo);
}

}  // namespace locus::accel
