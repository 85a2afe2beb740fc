// The mapper (accel/mapper.h): planner options, tiles and bands per layer, the fuse-or-not decision
// of fused groups, and the DRAM placement.
#include "accel/mapper.h"

#include <algorithm>
#include <map>

#include "accel/replay.h"
#include "graph/error.h"

namespace locus::accel {

schedule::PlannerOptions gemm_planner_options(ScheduleKind k, int64_t burst_entries) {
  schedule::PlannerOptions o;
  o.m_step = o.n_step = 1;
  o.min_m = 1;
  o.min_n = o.min_k = std::max<int64_t>(1, burst_entries);
  if (k == ScheduleKind::Baseline) o.orders = {schedule::Order::RowMajor, schedule::Order::ColMajor};
  return o;
}

schedule::FusedPlannerOptions fused_planner_options(int64_t burst_entries) {
  schedule::FusedPlannerOptions o;
  o.chunk_step = std::max<int64_t>(1, burst_entries);
  o.min_chunk = o.chunk_step;
  o.halo_cache = true;
  return o;
}

schedule::FusedPlanAttempt try_plan_fused(const Layer& l, int64_t S, int64_t burst_entries) {
  return schedule::search_fused_block_plan(l.block, S, fused_planner_options(burst_entries));
}

namespace {

// A bump allocator over one DRAM address space.
struct AddressSpace {
  uint64_t align = 1;
  uint64_t next = 0;
  std::map<std::string, uint64_t> base;
  void place(const std::string& name, int64_t bytes) {
    if (base.count(name)) return;
    base[name] = next;
    next += (uint64_t(std::max<int64_t>(bytes, 1)) + align - 1) / align * align;
  }
};

struct Ctx {
  const Workload& wl;
  ScheduleKind kind;
  int64_t S;
  int64_t burst_entries;
  int wb;
};

[[noreturn]] void too_small(const Ctx& c, const Layer& l, const std::string& detail) {
  fail("buffer of S=", c.S, " entries is too small for any tile of layer '", l.name, "' (", layer_kind_name(l.kind),
       " ", detail, ")");
}

schedule::Plan plan_gemm(const Ctx& c, const Layer& l) {
  schedule::GemmShape g{l.M, l.K, l.N, c.wb};
  try {
    schedule::Plan p = schedule::TilingPlanner(c.S, gemm_planner_options(c.kind, c.burst_entries)).plan(g);
    p.alternatives.clear();
    return p;
  } catch (const Error& e) {
    too_small(c, l, cat("M=", l.M, " K=", l.K, " N=", l.N, ": ", e.what()));
  }
}

// The widest channel chunk whose one output row fits (all C, multiples of 32, then 16 ... 1), then
// the tallest band.
BandPlan plan_band(const Ctx& c, const Layer& l) {
  const ConvGeom& g = l.geom;
  std::vector<int64_t> ccs = {g.C};
  for (int64_t v = g.C / 32 * 32; v >= 32; v -= 32)
    if (v < g.C) ccs.push_back(v);
  for (int64_t v : {16, 8, 4, 2, 1})
    if (v < g.C) ccs.push_back(v);
  int64_t cc = 0;
  for (int64_t v : ccs)
    if (band_entries(l, 1, v) <= c.S) {
      cc = v;
      break;
    }
  if (cc == 0)
    too_small(c, l, cat(g.KH, "x", g.KW, " over W=", g.W, ": one output row of one channel needs ",
                        band_entries(l, 1, 1), " entries"));
  int64_t rows = 1;
  while (rows < g.OH && band_entries(l, rows + 1, cc) <= c.S) ++rows;
  return {rows, cc};
}

// A layer (not a fused group) mapped on its own.
LayerMapping map_layer(const Ctx& c, const Layer& l) {
  LayerMapping m;
  m.name = l.name;
  if (l.kind == LayerKind::Pointwise || l.kind == LayerKind::Conv || l.kind == LayerKind::Gemm)
    m.gemm = plan_gemm(c, l);
  else if (l.kind == LayerKind::Depthwise || l.kind == LayerKind::Pool)
    m.band = plan_band(c, l);
  return m;
}

// A fused group layer by layer, with the tiles of schedule `kind`.
LayerMapping map_stages(const Ctx& c, const Layer& l, ScheduleKind kind) {
  const Ctx sc{c.wl, kind, c.S, c.burst_entries, c.wb};
  LayerMapping m;
  m.name = l.name;
  for (const Layer& s : l.stages) m.stages.push_back(map_layer(sc, s));
  return m;
}

// A FusedChain under fused-scan: its chain plan, unless no band fits or fusing moves more DRAM data
// than its layers one by one (then those, as scan, intermediates placed after everything so far).
template <class SizeOf>
LayerMapping map_chain(const Ctx& c, const Layer& l, AddressSpace& mem, const SizeOf& size_of, const AccelConfig& cfg) {
  schedule::FusedChainPlannerOptions po;
  po.chunk_step = std::max<int64_t>(c.burst_entries, 8);
  const schedule::FusedChainPlanAttempt fused = schedule::search_fused_chain_plan(*l.chain, c.S, po);
  AddressSpace apart_mem = mem;
  for (const Layer& s : l.stages) apart_mem.place(c.wl.storage(s.outputs[0]), size_of(s.outputs[0]));
  LayerMapping apart = map_stages(c, l, ScheduleKind::Scan);
  std::string why;
  if (!fused.plan) {
    why = "no band fits the buffer (" + fused.why_not + ")";
  } else {
    const ReplayContext rc{c.wl, apart_mem.base, c.S, c.wb, cfg.mac_array};
    const LayerReplay a = replay_layer(rc, l, apart, RequestSink{});
    const ReplayCounts f = replay_fused_chain(*fused.plan, c.wl.batch, chain_addresses(rc, l), c.wb, cfg.mac_array,
                                              RequestSink{});
    const int64_t fused_entries = f.reads_input + f.reads_weights + f.writes_output;
    if (fused_entries > a.reads + a.writes)
      why = cat("fused chain (rows=", fused.plan->rows, ") would move ", fused_entries, " entries, layer by layer ",
                a.reads + a.writes);
  }
  if (!why.empty()) {
    apart.note = why + ": run layer by layer (scan)";
    mem = std::move(apart_mem);
    return apart;
  }
  LayerMapping m;
  m.name = l.name;
  m.chain = *fused.plan;
  return m;
}

}  // namespace

Mapping map_workload(const Workload& wl, ScheduleKind kind, const AccelConfig& cfg, const MapOptions& o) {
  Mapping mp;
  mp.kind = kind;
  mp.buffer_entries = o.buffer_entries > 0 ? o.buffer_entries : cfg.buffer_entries;
  LOCUS_CHECK(mp.buffer_entries >= 1, "accelerator buffer must hold at least one entry, got ", mp.buffer_entries);
  const int wb = cfg.word_bytes();
  const Ctx c{wl, kind, mp.buffer_entries, std::max<int64_t>(1, cfg.dram.burst_bytes() / wb), wb};
  // The layers this schedule runs, fused groups expanded into their stages unless fused.
  std::vector<const Layer*> layers;
  for (const Layer& l : wl.layers) {
    if (l.kind == LayerKind::Fused && kind != ScheduleKind::FusedScan)
      for (const Layer& s : l.stages) layers.push_back(&s);
    else
      layers.push_back(&l);
  }
  // DRAM placement: weights first (order of first use), then activations (order of appearance).
  AddressSpace mem;
  mem.align = uint64_t(o.align_rows ? std::max<int64_t>(1, cfg.dram.row_bytes()) : 1);
  auto size_of = [&](const std::string& t) {
    auto it = wl.entries.find(t);
    LOCUS_CHECK(it != wl.entries.end(), "accelerator model: no size for tensor '", t, "'");
    return it->second * wb;
  };
  for (const Layer* l : layers)
    for (auto& t : l->weights) mem.place(t, size_of(t));
  for (const Layer* l : layers) {
    for (auto& t : l->inputs) mem.place(wl.storage(t), size_of(wl.storage(t)));
    if (l->kind == LayerKind::View) continue;
    for (auto& t : l->outputs) mem.place(wl.storage(t), size_of(wl.storage(t)));
  }

  for (const Layer& l : wl.layers) {
    if (l.kind != LayerKind::Fused) {
      mp.layers.push_back(map_layer(c, l));
      continue;
    }
    if (kind != ScheduleKind::FusedScan) {
      mp.layers.push_back(map_stages(c, l, kind));
      continue;
    }
    if (l.chain) {
      mp.layers.push_back(map_chain(c, l, mem, size_of, cfg));
      continue;
    }
    // fused-scan: fuse the group unless no band fits or fusing moves more data than its layers
    // (a squeeze-excite block: its two-pass or recompute plan, plan_se_block)
    schedule::FusedPlanAttempt fused;
    std::optional<schedule::SeBlockPlan> se;
    if (l.se) {
      try {
        se = schedule::plan_se_block(l.block, c.S, fused_planner_options(c.burst_entries));
        fused.plan = se->block;
      } catch (const Error& e) {
        fused.why_not = e.what();
      }
    } else {
      fused = try_plan_fused(l, c.S, c.burst_entries);
    }
    // the same group layer by layer, its intermediates placed after everything placed so far
    AddressSpace apart_mem = mem;
    for (const Layer& s : l.stages) apart_mem.place(wl.storage(s.outputs[0]), size_of(s.outputs[0]));
    LayerMapping apart = map_stages(c, l, ScheduleKind::Scan);
    std::string why;
    if (!fused.plan) {
      why = "no band fits the buffer (" + fused.why_not + ")";
    } else {
      const ReplayContext rc{wl, apart_mem.base, c.S, wb, cfg.mac_array};
      const LayerReplay a = replay_layer(rc, l, apart, RequestSink{});
      const ReplayCounts f = se ? replay_se_block(*se, wl.batch, fused_addresses(rc, l), wb, cfg.mac_array, RequestSink{})
                                : replay_fused_block(*fused.plan, wl.batch, fused_addresses(rc, l), wb, cfg.mac_array,
                                                     RequestSink{});
      const int64_t fused_entries = f.reads_input + f.reads_weights + f.writes_output;
      if (fused_entries > a.reads + a.writes)
        why = cat("fused (rows=", fused.plan->rows, " chunk=", fused.plan->chunk, ") would move ", fused_entries,
                  " entries, layer by layer ", a.reads + a.writes);
    }
    if (!why.empty()) {
      apart.note = why + ": run layer by layer (scan)";
      mem = std::move(apart_mem);
      mp.layers.push_back(std::move(apart));
    } else {
      LayerMapping m;
      m.name = l.name;
      m.fused = *fused.plan;
      m.se = se;
      // a two-pass plan that spills D writes it to its own region
      if (se && se->strategy == schedule::SeStrategy::TwoPass && se->spilled > 0)
        mem.place(wl.storage(l.name + "/dw"), size_of(l.name + "/dw"));
      mp.layers.push_back(std::move(m));
    }
  }
  mp.placement = std::move(mem.base);
  return mp;
}

}  // namespace locus::accel
