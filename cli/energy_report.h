// What `locus energy` computes for one buffer size, as library functions shared by the command
// (cli/cmd_energy.cpp) and the Python module (python/locus_module.cpp, locus.energy): the workload
// of a model as the accel backend prepares it, the finite-energy check, and the locus-energy/1 JSON
// document.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "accel/accel_config.h"
#include "accel/schedule.h"
#include "accel/workload.h"
#include "cli/json.h"
#include "graph/passes/cp_decompose.h"

namespace locus::cli {

// The workload of the resolved MODEL (an .onnx path or builtin: name) with symbolic dims set to
// `batch`, prepared as a session of the accel backend prepares it (fusion unless no_fuse, the CP
// decomposition when given; its one-line summary on stderr when `verbose`). input_shape: DIMS for
// bind_input_shape (a model with symbolic H and W), "" for none.
accel::Workload energy_workload(const std::string& model, int64_t batch, bool no_fuse,
                                const std::optional<CpDecomposeOptions>& decompose, bool verbose,
                                std::string* graph_name = nullptr, const std::string& input_shape = "");

// The saving of `x` relative to `base`, as a fraction (NaN if base is 0).
inline double energy_saving(double base, double x) { return base > 0 ? 1.0 - x / base : std::nan(""); }
// DRAM access energy: bursts and activate/precharge, without the time-proportional background and
// refresh (what a model that prices only DRAM accesses compares).
inline double dram_access_pj(const accel::LayerResult& t) {
  return t.dram.e_read_pj + t.dram.e_write_pj + t.dram.e_act_pre_pj;
}

// Duration of a schedule (its layers back to back) and its compute time, in us.
inline double schedule_duration_us(const accel::LayerResult& t, const accel::AccelConfig& cfg) {
  return double(t.dram.cycles) * cfg.dram.tck_ns * 1e-3;
}
inline double schedule_compute_us(const accel::LayerResult& t, const accel::AccelConfig& cfg) {
  return double(t.compute_cycles) / cfg.clock_mhz;
}

// One-line Error naming the schedule, the layer and the energy when one of them is not finite.
void check_energies_finite(const accel::ScheduleResult& r, const accel::AccelConfig& cfg);

// The locus-energy/1 document of the results of `model` on `cfg`: by_pacing[p] holds one result per
// schedule under one pacing ("pacings" lists them; the first pacing's are "schedules", a second's
// "schedules_dram_paced").
Json energy_json(const std::string& model, const accel::AccelConfig& cfg,
                 const std::vector<std::vector<accel::ScheduleResult>>& by_pacing);

// Everything `locus energy MODEL --format json` takes without a sweep, trace or mapping file.
struct EnergyRequest {
  std::string model;  // resolved (resolve_model)
  int64_t batch = 1;
  std::string accel = "default";   // --accel PRESET|FILE
  std::optional<std::string> dram;  // --dram PRESET
  std::optional<int64_t> buffer_entries;  // --buffer
  std::vector<accel::ScheduleKind> schedules = {accel::ScheduleKind::Baseline, accel::ScheduleKind::Scan,
                                                accel::ScheduleKind::FusedScan};
  std::vector<accel::Pacing> pacings = {accel::Pacing::Compute, accel::Pacing::Dram};  // --pacing
  bool no_fuse = false;
  std::optional<CpDecomposeOptions> decompose;  // --decompose
};
// The locus-energy/1 document `locus energy --format json` prints for `r`.
Json energy_report(const EnergyRequest& r);

}  // namespace locus::cli
