// What `locus energy` computes for one buffer size (cli/energy_report.h): shared by the command and
// the Python module.
#include "cli/energy_report.h"

#include <cmath>
#include <cstdio>

#include "accel/evaluator.h"
#include "accel/mapper.h"
#include "accel/mapping.h"
#include "cli/commands.h"
#include "graph/passes/pipeline.h"
#include "runtime/backend.h"

namespace locus::cli {

namespace {

double uj(double pj) { return pj * 1e-6; }



Json layer_json(const accel::LayerResult& l, const accel::AccelConfig& cfg) {
  Json j = {{"name", l.name}};
  if (!l.op.empty()) j["op"] = l.op;
  if (l.name != "total") j["kind"] = accel::layer_kind_name(l.kind);
  j["macs"] = l.macs;
  j["dram_read_bytes"] = l.read_bytes;
  j["dram_write_bytes"] = l.write_bytes;
  j["dram_burst_bytes_read"] = l.dram.bytes_read(cfg.dram);
  j["dram_burst_bytes_written"] = l.dram.bytes_written(cfg.dram);
  j["buffer_accesses"] = l.buffer_accesses;
  j["compute_cycles"] = l.compute_cycles;
  j["row_hits"] = l.dram.row_hits;
  j["row_misses"] = l.dram.row_misses;
  j["row_hit_rate"] = finite_or_null(l.dram.row_hit_rate());
  j["activates"] = l.dram.activates;
  j["refreshes"] = l.dram.refreshes;
  j["dram_cycles"] = l.dram.cycles;
  j["energy_uj"] = {{"dram_read", finite_or_null(uj(l.dram.e_read_pj))},
                    {"dram_write", finite_or_null(uj(l.dram.e_write_pj))},
                    {"dram_act_pre", finite_or_null(uj(l.dram.e_act_pre_pj))},
                    {"dram_refresh", finite_or_null(uj(l.dram.e_refresh_pj))},
                    {"dram_background", finite_or_null(uj(l.dram.e_background_pj))},
                    {"dram", finite_or_null(uj(l.e_dram_pj()))},
                    {"buffer", finite_or_null(uj(l.e_buffer_pj))},
                    {"mac", finite_or_null(uj(l.e_mac_pj))},
                    {"total", finite_or_null(uj(l.e_total_pj()))}};
  if (!l.tiling.empty()) j["tiling"] = l.tiling;
  if (!l.note.empty()) j["note"] = l.note;
  return j;
}

}  // namespace

accel::Workload energy_workload(const std::string& model, int64_t batch, bool no_fuse,
                                const std::optional<CpDecomposeOptions>& decompose, bool verbose,
                                std::string* graph_name, const std::string& input_shape) {
  Graph g = load_model_graph(model, batch);
  if (!input_shape.empty()) bind_input_shape(g, input_shape);
  PipelineOptions po;  // as a session of the accel backend prepares it
  po.decompose = decompose;
  // The workload reads shapes only: no fitting, unless the policy needs fits to choose ranks.
  if (po.decompose) {
    po.decompose->shapes_only = po.decompose->policy.kind != RankPolicy::Kind::Error;
    if (!po.decompose->shapes_only && verbose)
      std::fprintf(stderr, "cp-decompose: %s chooses ranks by fitting (ALS); rank=N, ratio=X or macs=X need no fit\n",
                   po.decompose->policy.describe().c_str());
  }
  if (no_fuse) po.disabled_passes.push_back("fuse-inverted-residual");
  po.fuse_blocks = make_backend("accel")->capabilities().fused_inverted_residual;
  po.fuse_chains = !no_fuse;  // whole chains (a decomposed bottleneck) as one node: the model plans them
  const PreparedGraph prepared = prepare_graph(g, po);
  if (decompose && verbose) {
    int decomposed = 0;
    for (const CpLayerReport& r : prepared.decompose_report) decomposed += r.decomposed ? 1 : 0;
    std::fprintf(stderr, "cp-decompose (%s): %d of %zu convolutions decomposed%s\n",
                 decompose->policy.describe().c_str(), decomposed, prepared.decompose_report.size(),
                 po.decompose->shapes_only ? " (shapes only, not fitted)" : "");
  }
  if (graph_name) *graph_name = g.name;
  return accel::extract_workload(g);
}

// Every energy of a schedule's layers and total must be finite before anything is printed (the
// config ranges should guarantee it; a NaN or inf in a table would look like a result): one-line
// Error naming the schedule, the layer and the energy otherwise.
void check_energies_finite(const accel::ScheduleResult& r, const accel::AccelConfig& cfg) {
  auto check = [&](const accel::LayerResult& l) {
    const std::pair<const char*, double> es[] = {
        {"DRAM read", l.dram.e_read_pj},         {"DRAM write", l.dram.e_write_pj},
        {"DRAM activate+precharge", l.dram.e_act_pre_pj}, {"DRAM refresh", l.dram.e_refresh_pj},
        {"DRAM background", l.dram.e_background_pj}, {"buffer", l.e_buffer_pj},
        {"MAC", l.e_mac_pj},                     {"total", l.e_total_pj()}};
    for (const auto& [what, e] : es)
      LOCUS_CHECK(std::isfinite(e), "schedule ", accel::schedule_name(r.kind), ", layer '", l.name, "': the ", what,
                  " energy is not finite (", e, " pJ) with accelerator config '", cfg.name, "' and DRAM '",
                  cfg.dram.name, "'; check its currents, voltage, clock and energies per event");
  };
  for (const auto& l : r.layers) check(l);
  check(r.total);
}

Json energy_json(const std::string& path, const accel::AccelConfig& cfg,
                 const std::vector<std::vector<accel::ScheduleResult>>& by_pacing) {
  Json j = json_document("locus-energy/1");
  j["model"] = path;
  j["config"] = {{"accel", cfg.name},
                 {"buffer_entries", cfg.buffer_entries},
                 {"word_bits", cfg.word_bits},
                 {"mac_array", cfg.mac_array},
                 {"clock_mhz", finite_or_null(cfg.clock_mhz)},
                 {"e_mac_pj", finite_or_null(cfg.e_mac_pj)},
                 {"e_buffer_pj", finite_or_null(cfg.e_buffer_pj)},
                 {"dram", cfg.dram.name},
                 {"dram_source", cfg.dram.source}};
  Json& pj = j["pacings"] = Json::array();
  for (const auto& prs : by_pacing)
    if (!prs.empty()) pj.push_back(accel::pacing_name(prs.front().pacing));
  for (size_t p = 0; p < by_pacing.size(); ++p) {
    const auto& prs = by_pacing[p];
    const accel::ScheduleResult* base = nullptr;
    for (auto& r : prs)
      if (r.kind == accel::ScheduleKind::Baseline) base = &r;
    Json& scheds = j[p == 0 ? "schedules" : "schedules_dram_paced"] = Json::array();
    for (auto& r : prs) {
      Json e = {{"name", accel::schedule_name(r.kind)}, {"buffer_entries", r.buffer_entries},
                {"pacing", accel::pacing_name(r.pacing)},
                {"duration_us", finite_or_null(schedule_duration_us(r.total, cfg))},
                {"compute_us", finite_or_null(schedule_compute_us(r.total, cfg))},
                {"total", layer_json(r.total, cfg)}};
      if (base) {
        e["dram_energy_saving"] = finite_or_null(energy_saving(base->total.e_dram_pj(), r.total.e_dram_pj()));
        e["dram_access_energy_saving"] =
            finite_or_null(energy_saving(dram_access_pj(base->total), dram_access_pj(r.total)));
        e["dram_bytes_saving"] = finite_or_null(energy_saving(double(base->total.read_bytes + base->total.write_bytes),
                                                              double(r.total.read_bytes + r.total.write_bytes)));
      }
      Json& layers = e["layers"] = Json::array();
      for (auto& l : r.layers) layers.push_back(layer_json(l, cfg));
      scheds.push_back(std::move(e));
    }
  }
  j["thesis"] = {{"mobilenetv2_dram_energy_saving", 0.67},
                 {"cp_resnet50_dram_energy_saving", 0.20},
                 {"buffer_entries", 64 * 1024},
                 {"source", "Wu and Huang, DATE 2019, pp. 120-125"}};
  return j;
}

Json energy_report(const EnergyRequest& r) {
  accel::AccelConfig cfg = accel::load_accel_config(r.accel);
  if (r.dram) cfg.dram = accel::dram_preset(*r.dram);
  if (r.buffer_entries) cfg.buffer_entries = *r.buffer_entries;
  const accel::Workload wl = energy_workload(r.model, r.batch, r.no_fuse, r.decompose, false);
  std::vector<accel::Mapping> ms;
  for (auto k : r.schedules) ms.push_back(accel::map_workload(wl, k, cfg));
  std::vector<std::vector<accel::ScheduleResult>> by_pacing;
  for (accel::Pacing pacing : r.pacings) {
    accel::EvaluateOptions eo;
    eo.pacing = pacing;
    std::vector<accel::ScheduleResult> rs;
    for (const accel::Mapping& m : ms) {
      rs.push_back(accel::evaluate_mapping(wl, m, cfg, eo));
      check_energies_finite(rs.back(), cfg);
    }
    by_pacing.push_back(std::move(rs));
  }
  return energy_json(r.model, cfg, by_pacing);
}

}  // namespace locus::cli
