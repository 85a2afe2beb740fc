// The evaluator (accel/evaluator.h): a mapping's replay into the DRAM model, per layer, with the
// energy totals and the optional whole-stream trace.
#include "accel/evaluator.h"

#include <algorithm>
#include <cmath>

#include "accel/replay.h"
#include "graph/error.h"

namespace locus::accel {

namespace {

DramStats& operator+=(DramStats& a, const DramStats& b) {
  a.read_bursts += b.read_bursts, a.write_bursts += b.write_bursts;
  a.row_hits += b.row_hits, a.row_misses += b.row_misses;
  a.activates += b.activates, a.precharges += b.precharges, a.refreshes += b.refreshes;
  a.cycles += b.cycles;
  a.e_read_pj += b.e_read_pj, a.e_write_pj += b.e_write_pj, a.e_act_pre_pj += b.e_act_pre_pj;
  a.e_refresh_pj += b.e_refresh_pj, a.e_background_pj += b.e_background_pj;
  return a;
}

}  // namespace

const char* pacing_name(Pacing p) { return p == Pacing::Compute ? "compute" : "dram"; }

Pacing parse_pacing(const std::string& name) {
  if (name == "compute") return Pacing::Compute;
  if (name == "dram") return Pacing::Dram;
  throw Error("unknown pacing '" + name + "' (known: compute, dram)");
}

ScheduleResult evaluate_mapping(const Workload& wl, const Mapping& m, const AccelConfig& cfg,
                                const EvaluateOptions& o) {
  ScheduleResult res;
  res.kind = m.kind;
  res.buffer_entries = m.buffer_entries;
  res.pacing = o.pacing;
  const bool dram_paced = o.pacing == Pacing::Dram;
  LOCUS_CHECK(m.layers.size() == wl.layers.size(), "accelerator model: the mapping has ", m.layers.size(),
              " layers, the workload ", wl.layers.size());
  const int64_t wb = cfg.word_bytes();
  const ReplayContext rc{wl, m.placement, m.buffer_entries, wb, cfg.mac_array};
  // The layers priced one by one: a fused group outside fused-scan is its stages.
  std::vector<std::pair<const Layer*, const LayerMapping*>> units;
  for (size_t i = 0; i < wl.layers.size(); ++i) {
    const Layer& l = wl.layers[i];
    const LayerMapping& lm = m.layers[i];
    if (l.kind == LayerKind::Fused && m.kind != ScheduleKind::FusedScan) {
      LOCUS_CHECK(lm.stages.size() == l.stages.size(), "accelerator model: fused group '", l.name, "' has ",
                  l.stages.size(), " stages, its mapping ", lm.stages.size());
      for (size_t s = 0; s < l.stages.size(); ++s) units.push_back({&l.stages[s], &lm.stages[s]});
    } else {
      units.push_back({&l, &lm});
    }
  }

  const double dram_per_acc = (1000.0 / cfg.clock_mhz) / cfg.dram.tck_ns;
  auto to_dram = [dram_per_acc](uint64_t acc) { return uint64_t(std::llround(double(acc) * dram_per_acc)); };
  std::optional<DramModel> trace_model;
  if (o.trace) {
    trace_model.emplace(cfg.dram);
    trace_model->set_trace(o.trace);
  }
  uint64_t offset = 0;  // absolute DRAM cycle at which the current layer starts
  for (const auto& [lp, mp] : units) {
    const Layer& l = *lp;
    LayerResult r;
    r.name = l.name;
    r.op = l.op;
    r.kind = l.kind;
    r.macs = l.macs;
    std::optional<DramModel> dm;
    if (o.simulate_dram) dm.emplace(cfg.dram, offset);
    RequestSink sink;
    if (o.simulate_dram || trace_model)
      sink = [&](uint64_t addr, uint64_t bytes, bool write, uint64_t acc) {
        const uint64_t cyc = offset + (dram_paced ? 0 : to_dram(acc));
        if (dm) dm->access(addr, bytes, write, cyc);
        if (trace_model) trace_model->access(addr, bytes, write, cyc);
      };
    const LayerReplay rp = replay_layer(rc, l, *mp, sink);
    r.tiling = rp.tiling;
    r.note = mp->note;
    r.read_entries = rp.reads, r.write_entries = rp.writes;
    r.buffer_accesses = rp.buffer_accesses;
    r.ops = rp.ops;
    r.compute_cycles = rp.cycles;
    r.gemm_plan = mp->gemm;
    if (l.kind == LayerKind::Fused && mp->fused) {
      // MACs: the layers' own plus the expansions of halo rows recomputed (none with the halo cache)
      const schedule::FusedBlockPlan& p = *mp->fused;
      const int64_t exact_expand = l.block.expand ? l.block.H * l.block.W * l.block.C * l.block.E : 0;
      r.macs = l.macs + std::max<int64_t>(0, p.expand_macs - exact_expand) * wl.batch;
      // a squeeze-excite block that recomputes D does its expand and depthwise MACs twice
      if (mp->se && mp->se->strategy == schedule::SeStrategy::Recompute) r.macs += mp->se->recompute_macs * wl.batch;
      r.fused_plan = p;
    }
    if (l.kind == LayerKind::Fused && mp->chain) r.macs = mp->chain->macs * wl.batch;  // halo rows recomputed
    r.read_bytes = r.read_entries * wb;
    r.write_bytes = r.write_entries * wb;
    const uint64_t compute_end = dram_paced ? 0 : to_dram(uint64_t(r.compute_cycles));
    if (dm) r.dram = dm->finish(offset + compute_end);
    offset += dm ? uint64_t(r.dram.cycles) : compute_end;
    r.e_mac_pj = double(r.macs) * cfg.e_mac_pj;
    r.e_buffer_pj = double(r.buffer_accesses) * cfg.e_buffer_pj;
    LayerResult& t = res.total;
    t.macs += r.macs, t.ops += r.ops;
    t.read_entries += r.read_entries, t.write_entries += r.write_entries;
    t.read_bytes += r.read_bytes, t.write_bytes += r.write_bytes;
    t.buffer_accesses += r.buffer_accesses;
    t.compute_cycles += r.compute_cycles;
    t.dram += r.dram;
    t.e_mac_pj += r.e_mac_pj, t.e_buffer_pj += r.e_buffer_pj;
    res.layers.push_back(std::move(r));
  }
  if (trace_model) trace_model->finish(offset);
  res.total.name = "total";
  return res;
}

}  // namespace locus::accel
