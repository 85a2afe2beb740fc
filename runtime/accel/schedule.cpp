#include "runtime/accel/schedule.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <sstream>

#include "graph/error.h"

namespace locus::accel {

const char* schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::Baseline: return "baseline";
    case ScheduleKind::Scan: return "scan";
    case ScheduleKind::FusedScan: return "fused-scan";
  }
  return "?";
}

ScheduleKind parse_schedule(const std::string& name) {
  for (ScheduleKind k : all_schedules())
    if (name == schedule_name(k)) return k;
  fail("unknown schedule '", name, "' (known: baseline, scan, fused-scan)");
}

std::vector<ScheduleKind> all_schedules() {
  return {ScheduleKind::Baseline, ScheduleKind::Scan, ScheduleKind::FusedScan};
}

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

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One layer's request stream: coalesces contiguous requests of the same direction issued at the same
// cycle, counts entries, and keeps the accelerator clock (compute advances it).
class Emitter {
 public:
  Emitter(const RequestSink& sink, int64_t word_bytes, int mac_array)
      : sink_(sink), wb_(word_bytes), mac_array_(std::max(1, mac_array)) {}
  ~Emitter() = default;
  void read(uint64_t addr_entries_base, int64_t entries) { request(addr_entries_base, entries, false); }
  void write(uint64_t addr, int64_t entries) { request(addr, entries, true); }
  // `addr` arguments are byte addresses of the first entry.
  void compute(int64_t ops) {
    flush();
    ops_ += ops;
    cycles_ += ceil_div(std::max<int64_t>(ops, 0), mac_array_);
  }
  void flush() {
    if (pending_bytes_ > 0 && sink_) sink_(pending_addr_, uint64_t(pending_bytes_), pending_write_, uint64_t(cycles_));
    pending_bytes_ = 0;
  }
  int64_t reads = 0, writes = 0;
  int64_t ops() const { return ops_; }
  int64_t cycles() const { return cycles_; }
  int64_t wb() const { return wb_; }

 private:
  void request(uint64_t addr, int64_t entries, bool write) {
    if (entries <= 0) return;
    (write ? writes : reads) += entries;
    const int64_t bytes = entries * wb_;
    if (pending_bytes_ > 0 && pending_write_ == write && pending_addr_ + uint64_t(pending_bytes_) == addr) {
      pending_bytes_ += bytes;
      return;
    }
    flush();
    pending_addr_ = addr;
    pending_bytes_ = bytes;
    pending_write_ = write;
  }
  const RequestSink& sink_;
  int64_t wb_;
  int64_t mac_array_;
  int64_t ops_ = 0, cycles_ = 0;
  uint64_t pending_addr_ = 0;
  int64_t pending_bytes_ = 0;
  bool pending_write_ = false;
};

// ---- GEMM replay (the residency policy of schedule::BufferSimulator) ----

struct Block {
  int64_t r0, r1, c0, c1;
  bool operator==(const Block&) const = default;
};

// LRU window of at most `cap` blocks; most recently used at the back. touch() returns true on a miss.
struct Window {
  size_t cap;
  std::deque<Block> blocks;
  bool touch(const Block& b) {
    auto it = std::find(blocks.begin(), blocks.end(), b);
    if (it != blocks.end()) {
      blocks.erase(it);
      blocks.push_back(b);
      return false;
    }
    while (!blocks.empty() && blocks.size() >= cap) blocks.pop_front();
    blocks.push_back(b);
    return true;
  }
};

struct GemmIO {
  std::function<void(Emitter&, int64_t i0, int64_t i1, int64_t k0, int64_t k1)> load_a;
  std::function<void(Emitter&, int64_t k0, int64_t k1, int64_t j0, int64_t j1)> load_b;
  std::function<void(Emitter&, int64_t i0, int64_t i1, int64_t j0, int64_t j1)> store_c;
};

// Buffer accesses of a GEMM step: every loaded entry is written into the buffer, the array reads
// the A and B tiles once, reads (after the first k step) and writes the C tile, and a stored C tile
// is read out once.
ReplayCounts replay_gemm(const schedule::Plan& p, const GemmIO& io, Emitter& em) {
  const bool rows = schedule::rows_oriented(p.order);
  const size_t stream_cap = size_t(1 + std::max<int64_t>(p.resident_strips, 0));
  Window a{rows ? size_t(1) : stream_cap, {}};
  Window b{rows ? stream_cap : size_t(1), {}};
  ReplayCounts c;
  const int64_t K = p.shape.K;
  for (const schedule::TileVisit& v : p.sequence()) {
    const int64_t r0 = em.reads;
    if (a.touch({v.i0, v.i1, v.k0, v.k1})) {
      io.load_a(em, v.i0, v.i1, v.k0, v.k1);
      c.reads_a += em.reads - r0;
    }
    const int64_t r1 = em.reads;
    if (b.touch({v.k0, v.k1, v.j0, v.j1})) {
      io.load_b(em, v.k0, v.k1, v.j0, v.j1);
      c.reads_b += em.reads - r1;
    }
    const int64_t mi = v.i1 - v.i0, nj = v.j1 - v.j0, kk = v.k1 - v.k0;
    c.buffer_accesses += (em.reads - r0) + mi * kk + kk * nj + (v.k0 > 0 ? 2 : 1) * mi * nj;
    em.compute(mi * nj * kk);
    if (v.k1 == K) {
      const int64_t w0 = em.writes;
      io.store_c(em, v.i0, v.i1, v.j0, v.j1);
      c.writes_c += em.writes - w0;
      c.buffer_accesses += em.writes - w0;
    }
  }
  em.flush();
  c.ops = em.ops();
  c.cycles = em.cycles();
  return c;
}

// Row-major matrix with `ld` entries per row at byte address `base`: rows [r0, r1), columns [c0, c1).
void rows_block(Emitter& em, bool write, uint64_t base, int64_t ld, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  const uint64_t wb = uint64_t(em.wb());
  for (int64_t r = r0; r < r1; ++r) {
    const uint64_t addr = base + uint64_t(r * ld + c0) * wb;
    if (write)
      em.write(addr, c1 - c0);
    else
      em.read(addr, c1 - c0);
  }
}

// ---- DRAM placement ----

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

// ---- per-kind runners ----

struct Ctx {
  const Workload& wl;
  const AccelConfig& cfg;
  ScheduleKind kind;
  int64_t S;
  int64_t wb;
  AddressSpace mem;
  int64_t burst_entries = 1;  // entries per DRAM burst: the planners' minimum contiguous run
  uint64_t addr(const std::string& tensor) const { return mem.base.at(wl.storage(tensor)); }
};

[[noreturn]] void too_small(const Ctx& c, const Layer& l, const std::string& detail) {
  fail("buffer of S=", c.S, " entries is too small for any tile of layer '", l.name, "' (", layer_kind_name(l.kind),
       " ", detail, ")");
}

std::string gemm_desc(const schedule::Plan& p) {
  return cat("M=", p.shape.M, " K=", p.shape.K, " N=", p.shape.N, " m=", p.m, " n=", p.n, " k=", p.k, " ",
             schedule::order_name(p.order), " resident=", p.resident_strips);
}

schedule::Plan plan_gemm(const Ctx& c, const Layer& l) {
  schedule::GemmShape g{l.M, l.K, l.N, int(c.wb)};
  try {
    return schedule::TilingPlanner(c.S, gemm_planner_options(c.kind, c.burst_entries)).plan(g);
  } catch (const Error& e) {
    too_small(c, l, cat("M=", l.M, " K=", l.K, " N=", l.N, ": ", e.what()));
  }
}

void run_gemm_layer(Ctx& c, const Layer& l, Emitter& em, LayerResult& r) {
  schedule::Plan p = plan_gemm(c, l);
  p.alternatives.clear();
  const uint64_t wb = uint64_t(c.wb);
  const uint64_t x = c.addr(l.inputs.at(0)), w = c.addr(l.weights.at(0)), y = c.addr(l.outputs.at(0));
  GemmIO io;
  const ConvGeom& g = l.geom;
  // C: NHWC output (pixel-major, N channels per pixel) or a row-major M x N matrix: the same layout.
  io.store_c = [y, N = l.N](Emitter& e, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    rows_block(e, true, y, N, i0, i1, j0, j1);
  };
  if (l.kind == LayerKind::Gemm && l.b_kn) {
    io.load_b = [w, N = l.N](Emitter& e, int64_t k0, int64_t k1, int64_t j0, int64_t j1) {
      rows_block(e, false, w, N, k0, k1, j0, j1);
    };
  } else {
    // weights [N][K] (Conv: [OC][C/G.KH.KW] in (c, kh, kw) order; Gemm with transB)
    io.load_b = [w, K = l.K](Emitter& e, int64_t k0, int64_t k1, int64_t j0, int64_t j1) {
      rows_block(e, false, w, K, j0, j1, k0, k1);
    };
  }
  if (l.kind == LayerKind::Gemm || (l.kind == LayerKind::Pointwise && g.SH == 1 && g.SW == 1)) {
    io.load_a = [x, K = l.K](Emitter& e, int64_t i0, int64_t i1, int64_t k0, int64_t k1) {
      rows_block(e, false, x, K, i0, i1, k0, k1);
    };
  } else if (l.kind == LayerKind::Pointwise) {
    // strided 1x1: pixel i = (n, oh, ow) reads input pixel (n, oh.SH, ow.SW)
    io.load_a = [x, g, wb](Emitter& e, int64_t i0, int64_t i1, int64_t k0, int64_t k1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t n = i / (g.OH * g.OW), oh = i / g.OW % g.OH, ow = i % g.OW;
        const int64_t pix = (n * g.H + oh * g.SH) * g.W + ow * g.SW;
        e.read(x + uint64_t(pix * g.C + k0) * wb, k1 - k0);
      }
    };
  } else {
    // Implicit im2col: the A tile of pixels [i0, i1) and reduction [k0, k1) needs the input
    // channels [k0 / taps, ceil(k1 / taps)) of the input rows and columns those pixels' windows
    // cover (halo included): the union over the tile's output rows, read once per load.
    const int64_t taps = g.taps;
    const int64_t cpg = g.C / std::max<int64_t>(g.G, 1);
    io.load_a = [x, g, wb, taps, cpg](Emitter& e, int64_t i0, int64_t i1, int64_t k0, int64_t k1) {
      const int64_t ch0 = k0 / taps, ch1 = std::min(cpg, ceil_div(k1, taps));
      // (image, input row) -> column interval union (at most a few intervals)
      std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<int64_t, int64_t>>> rows;
      for (int64_t i = i0; i < i1;) {
        const int64_t n = i / (g.OH * g.OW), oh = i / g.OW % g.OH, ow0 = i % g.OW;
        const int64_t ow1 = std::min(g.OW, ow0 + (i1 - i));  // exclusive
        const int64_t col0 = std::max<int64_t>(0, ow0 * g.SW - g.PL);
        const int64_t col1 = std::min(g.W, (ow1 - 1) * g.SW - g.PL + g.KW);
        const int64_t ih0 = std::max<int64_t>(0, oh * g.SH - g.PT), ih1 = std::min(g.H, oh * g.SH - g.PT + g.KH);
        for (int64_t ih = ih0; ih < ih1 && col0 < col1; ++ih) {
          auto& iv = rows[{n, ih}];
          iv.push_back({col0, col1});
        }
        i += ow1 - ow0;
      }
      for (auto& [key, iv] : rows) {
        std::sort(iv.begin(), iv.end());
        std::vector<std::pair<int64_t, int64_t>> merged;
        for (auto& s : iv) {
          if (!merged.empty() && s.first <= merged.back().second)
            merged.back().second = std::max(merged.back().second, s.second);
          else
            merged.push_back(s);
        }
        const int64_t row_pix = (key.first * g.H + key.second) * g.W;
        for (auto& [a, b] : merged) {
          if (ch0 == 0 && ch1 == g.C) {
            e.read(x + uint64_t((row_pix + a) * g.C) * wb, (b - a) * g.C);
          } else {
            for (int64_t col = a; col < b; ++col) e.read(x + uint64_t((row_pix + col) * g.C + ch0) * wb, ch1 - ch0);
          }
        }
      }
    };
  }
  ReplayCounts rc = replay_gemm(p, io, em);
  r.buffer_accesses += rc.buffer_accesses;
  r.tiling = gemm_desc(p);
  r.gemm_plan = p;
}

// Depthwise conv and pools: a row-band walk. Channels are cut into chunks of cc (all C if they
// fit); per chunk, per image, output rows in bands of r; the input rows live in a ring of
// (r - 1).SH + KH rows, so rows shared by consecutive bands are read once; weights (KH.KW per
// channel) are read once per chunk. On chip: ring x W x cc + r x OW x cc + weights.
void run_band_layer(Ctx& c, const Layer& l, Emitter& em, LayerResult& r) {
  const ConvGeom& g = l.geom;
  const bool dw = l.kind == LayerKind::Depthwise;
  const int64_t wtaps = dw ? g.taps : 0;
  auto ring = [&](int64_t rows) { return std::min(g.H, (rows - 1) * g.SH + g.KH); };
  auto need = [&](int64_t cc, int64_t rows) { return ring(rows) * g.W * cc + rows * g.OW * cc + wtaps * cc; };
  std::vector<int64_t> ccs = {g.C};
  for (int64_t v = g.C / 32 * 32; v >= 32; v -= 32)
    if (v < g.C) ccs.push_back(v);
  for (int64_t v : {16, 8, 4, 2, 1})
    if (v < g.C) ccs.push_back(v);
  int64_t cc = 0;
  for (int64_t v : ccs)
    if (need(v, 1) <= c.S) {
      cc = v;
      break;
    }
  if (cc == 0)
    too_small(c, l, cat(g.KH, "x", g.KW, " over W=", g.W, ": one output row of one channel needs ", need(1, 1),
                        " entries"));
  int64_t rows = 1;
  while (rows < g.OH && need(cc, rows + 1) <= c.S) ++rows;
  const uint64_t wb = uint64_t(c.wb);
  const uint64_t x = c.addr(l.inputs.at(0)), y = c.addr(l.outputs.at(0));
  const uint64_t w = dw ? c.addr(l.weights.at(0)) : 0;
  const int64_t bands = ceil_div(g.OH, rows);
  auto pixels = [&](bool write, uint64_t base, int64_t C, int64_t first_pix, int64_t count, int64_t c0, int64_t c1) {
    if (c0 == 0 && c1 == C) {
      write ? em.write(base + uint64_t(first_pix * C) * wb, count * C) : em.read(base + uint64_t(first_pix * C) * wb, count * C);
      return;
    }
    for (int64_t p = first_pix; p < first_pix + count; ++p)
      write ? em.write(base + uint64_t(p * C + c0) * wb, c1 - c0) : em.read(base + uint64_t(p * C + c0) * wb, c1 - c0);
  };
  for (int64_t c0 = 0; c0 < g.C; c0 += cc) {
    const int64_t c1 = std::min(g.C, c0 + cc);
    if (dw) {
      const int64_t r0 = em.reads;
      em.read(w + uint64_t(c0 * wtaps) * wb, (c1 - c0) * wtaps);
      r.buffer_accesses += em.reads - r0;
    }
    for (int64_t n = 0; n < g.N; ++n) {
      int64_t next_row = 0;
      for (int64_t b = 0; b < bands; ++b) {
        const int64_t oh0 = b * rows, oh1 = std::min(g.OH, oh0 + rows);
        const int64_t first = std::max<int64_t>(0, oh0 * g.SH - g.PT);
        const int64_t last = std::min(g.H, (oh1 - 1) * g.SH - g.PT + g.KH);
        const int64_t from = std::max(first, next_row);
        const int64_t r0 = em.reads;
        if (last > from) pixels(false, x, g.C, (n * g.H + from) * g.W, (last - from) * g.W, c0, c1);
        next_row = std::max(next_row, last);
        const int64_t out = (oh1 - oh0) * g.OW * (c1 - c0);
        // loaded entries written, the band's rows read by the window, weights read, output written
        r.buffer_accesses += (em.reads - r0) + std::max<int64_t>(0, last - first) * g.W * (c1 - c0) +
                             wtaps * (c1 - c0) + out;
        em.compute(out * g.taps);
        const int64_t w0 = em.writes;
        pixels(true, y, g.OC, (n * g.OH + oh0) * g.OW, (oh1 - oh0) * g.OW, c0, c1);
        r.buffer_accesses += em.writes - w0;
      }
    }
  }
  r.tiling = cat(g.KH, "x", g.KW, "/", g.SH, " band rows=", rows, " chunk=", cc, " bands=", bands, " chunks=",
                 ceil_div(g.C, cc));
}

// Streamed ops: inputs of the output's size are read piece by piece with the output (pieces of
// S / (streams + 1) entries); other inputs and constants are read whole first; every output written.
void run_stream_layer(Ctx& c, const Layer& l, Emitter& em, LayerResult& r) {
  const uint64_t wb = uint64_t(c.wb);
  const int64_t T = c.wl.entries.at(l.outputs.at(0));
  std::vector<std::string> streamed, whole;
  for (auto& in : l.inputs) (l.kind != LayerKind::Reduce && c.wl.entries.at(in) == T ? streamed : whole).push_back(in);
  for (auto& wt : l.weights) whole.push_back(wt);
  const int64_t q = std::max<int64_t>(1, c.S / int64_t(streamed.size() + 1));
  for (auto& t : whole) {
    const int64_t n = c.wl.entries.at(t);
    for (int64_t pos = 0; pos < n; pos += q) {
      const int64_t len = std::min(q, n - pos);
      em.read(c.addr(t) + uint64_t(pos) * wb, len);
      r.buffer_accesses += 2 * len;  // written in, read by the array
      if (l.kind == LayerKind::Reduce) em.compute(len);
    }
  }
  for (int64_t pos = 0; pos < T; pos += q) {
    const int64_t len = std::min(q, T - pos);
    for (auto& t : streamed) em.read(c.addr(t) + uint64_t(pos) * wb, len);
    r.buffer_accesses += 2 * len * int64_t(streamed.size()) + 2 * len;
    if (l.kind != LayerKind::Reduce) em.compute(len);
    em.write(c.addr(l.outputs[0]) + uint64_t(pos) * wb, len);
  }
  for (size_t o = 1; o < l.outputs.size(); ++o) {
    const int64_t n = c.wl.entries.at(l.outputs[o]);
    em.write(c.addr(l.outputs[o]), n);
    r.buffer_accesses += 2 * n;
  }
  r.tiling = cat("streamed, pieces of ", std::min(q, std::max<int64_t>(T, 1)), " entries");
}

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

ReplayCounts replay_plain_gemm(const schedule::Plan& p, uint64_t a_base, uint64_t b_base, uint64_t c_base,
                               int64_t word_bytes, int mac_array, const RequestSink& sink) {
  Emitter em(sink, word_bytes, mac_array);
  GemmIO io;
  const int64_t K = p.shape.K, N = p.shape.N;
  io.load_a = [&](Emitter& e, int64_t i0, int64_t i1, int64_t k0, int64_t k1) { rows_block(e, false, a_base, K, i0, i1, k0, k1); };
  io.load_b = [&](Emitter& e, int64_t k0, int64_t k1, int64_t j0, int64_t j1) { rows_block(e, false, b_base, K, j0, j1, k0, k1); };
  io.store_c = [&](Emitter& e, int64_t i0, int64_t i1, int64_t j0, int64_t j1) { rows_block(e, true, c_base, N, i0, i1, j0, j1); };
  return replay_gemm(p, io, em);
}

ReplayCounts replay_fused_block(const schedule::FusedBlockPlan& p, int64_t images, const FusedAddresses& a,
                                int64_t word_bytes, int mac_array, const RequestSink& sink) {
  Emitter em(sink, word_bytes, mac_array);
  const schedule::FusedBlockShape& s = p.shape;
  const uint64_t wb = uint64_t(word_bytes);
  const int64_t OH = s.OH(), OW = s.OW();
  const int64_t taps = a.taps + a.taps2;
  ReplayCounts rc;
  auto weights = [&](int64_t e0, int64_t e1) {
    const int64_t r0 = em.reads;
    if (s.expand) em.read(a.w_expand + uint64_t(e0 * s.C) * wb, (e1 - e0) * s.C);
    em.read(a.w_dw + uint64_t(e0 * a.taps) * wb, (e1 - e0) * a.taps);
    if (a.taps2 > 0) em.read(a.w_dw2 + uint64_t(e0 * a.taps2) * wb, (e1 - e0) * a.taps2);
    if (s.project)
      for (int64_t oc = 0; oc < s.OC; ++oc) em.read(a.w_project + uint64_t(oc * s.E + e0) * wb, e1 - e0);
    rc.reads_weights += em.reads - r0;
    rc.buffer_accesses += em.reads - r0;
  };
  for (int64_t n = 0; n < images; ++n) {
    for (int64_t b = 0; b < p.bands; ++b) {
      const int64_t first = p.halo_cache && b > 0 ? std::max(p.band_in_first(b), p.band_in_last(b - 1))
                                                  : p.band_in_first(b);
      const int64_t last = p.band_in_last(b);
      const int64_t new_rows = std::max<int64_t>(0, last - first);
      const int64_t band_rows = p.band_in_last(b) - p.band_in_first(b);
      const int64_t r0 = em.reads;
      if (new_rows > 0) em.read(a.x + uint64_t((n * s.H + first) * s.W * s.C) * wb, new_rows * s.W * s.C);
      rc.reads_input += em.reads - r0;
      rc.buffer_accesses += em.reads - r0;
      const int64_t oh0 = b * p.rows, oh1 = std::min(OH, oh0 + p.rows);
      const int64_t out_px = (oh1 - oh0) * OW;
      for (int64_t t = 0; t < p.chunks; ++t) {
        const int64_t q = b % 2 == 0 ? t : p.chunks - 1 - t;
        const int64_t e0 = q * p.chunk, e1 = std::min(s.E, e0 + p.chunk), cw = e1 - e0;
        const bool load = p.chunks == 1 ? b == 0 : !(b > 0 && t == 0);
        if (load) weights(e0, e1);
        const int64_t expanded = s.expand ? new_rows * s.W : 0;  // pixels expanded in this step
        // input read by the expansion; expanded chunk written and read by the filter; filtered chunk
        // written and read by the projection; output tile read (after the first chunk) and written;
        // the chunk's weights read
        rc.buffer_accesses += expanded * s.C + expanded * cw + band_rows * s.W * cw + (s.project ? 2 * out_px * cw : 0) +
                              (t > 0 ? 2 : 1) * out_px * s.OC +
                              (s.expand ? s.C * cw : 0) + taps * cw + (s.project ? cw * s.OC : 0);
        em.compute(expanded * s.C * cw + out_px * cw * taps + (s.project ? out_px * cw * s.OC : 0));
      }
      const int64_t w0 = em.writes;
      em.write(a.y + uint64_t((n * OH + oh0) * OW * s.OC) * wb, out_px * s.OC);
      rc.writes_output += em.writes - w0;
      rc.buffer_accesses += em.writes - w0;
    }
  }
  em.flush();
  rc.ops = em.ops();
  rc.cycles = em.cycles();
  return rc;
}

ScheduleResult run_schedule(const Workload& wl, ScheduleKind kind, const AccelConfig& cfg, const ScheduleOptions& o) {
  ScheduleResult res;
  res.kind = kind;
  res.buffer_entries = o.buffer_entries > 0 ? o.buffer_entries : cfg.buffer_entries;
  LOCUS_CHECK(res.buffer_entries >= 1, "accelerator buffer must hold at least one entry, got ", res.buffer_entries);
  Ctx c{wl, cfg, kind, res.buffer_entries, cfg.word_bytes(), {}};
  // The layers this schedule runs, fused groups expanded into their stages unless fused.
  std::vector<const Layer*> layers;
  for (const Layer& l : wl.layers) {
    if (l.kind == LayerKind::Fused && kind != ScheduleKind::FusedScan)
      for (const Layer& s : l.stages) layers.push_back(&s);
    else
      layers.push_back(&l);
  }
  // DRAM placement: weights first (order of first use), then activations (order of appearance).
  const int64_t row_bytes = o.simulate_dram ? std::max<int64_t>(1, cfg.dram.row_bytes()) : 1;
  c.mem.align = uint64_t(row_bytes);
  c.burst_entries = std::max<int64_t>(1, cfg.dram.burst_bytes() / c.wb);
  auto size_of = [&](const std::string& t) {
    auto it = wl.entries.find(t);
    LOCUS_CHECK(it != wl.entries.end(), "accelerator model: no size for tensor '", t, "'");
    return it->second * c.wb;
  };
  for (const Layer* l : layers)
    for (auto& t : l->weights) c.mem.place(t, size_of(t));
  for (const Layer* l : layers) {
    for (auto& t : l->inputs) c.mem.place(wl.storage(t), size_of(wl.storage(t)));
    if (l->kind == LayerKind::View) continue;
    for (auto& t : l->outputs) c.mem.place(wl.storage(t), size_of(wl.storage(t)));
  }

  const double dram_per_acc = (1000.0 / cfg.clock_mhz) / cfg.dram.tck_ns;
  auto to_dram = [dram_per_acc](uint64_t acc) { return uint64_t(std::llround(double(acc) * dram_per_acc)); };
  std::optional<DramModel> trace_model;
  if (o.trace) {
    trace_model.emplace(cfg.dram);
    trace_model->set_trace(o.trace);
  }
  uint64_t offset = 0;  // DRAM cycle at which the current layer starts (trace)
  for (const Layer* lp : layers) {
    const Layer& l = *lp;
    LayerResult r;
    r.name = l.name;
    r.op = l.op;
    r.kind = l.kind;
    r.macs = l.macs;
    std::optional<DramModel> dm;
    if (o.simulate_dram) dm.emplace(cfg.dram);
    RequestSink sink;
    if (o.simulate_dram || trace_model)
      sink = [&](uint64_t addr, uint64_t bytes, bool write, uint64_t acc) {
        const uint64_t cyc = to_dram(acc);
        if (dm) dm->access(addr, bytes, write, cyc);
        if (trace_model) trace_model->access(addr, bytes, write, offset + cyc);
      };
    int64_t cycles = 0, ops = 0;
    switch (l.kind) {
      case LayerKind::Pointwise:
      case LayerKind::Conv:
      case LayerKind::Gemm:
      case LayerKind::Depthwise:
      case LayerKind::Pool:
      case LayerKind::Reduce:
      case LayerKind::Eltwise: {
        Emitter em(sink, c.wb, cfg.mac_array);
        if (l.kind == LayerKind::Pointwise || l.kind == LayerKind::Conv || l.kind == LayerKind::Gemm)
          run_gemm_layer(c, l, em, r);  // tiles from the GEMM planner
        else if (l.kind == LayerKind::Depthwise || l.kind == LayerKind::Pool)
          run_band_layer(c, l, em, r);  // row bands
        else
          run_stream_layer(c, l, em, r);  // streamed
        em.flush();
        r.read_entries = em.reads, r.write_entries = em.writes, cycles = em.cycles(), ops = em.ops();
        break;
      }
      case LayerKind::View:
        r.tiling = "view (no data moves)";
        break;
      case LayerKind::Fused: {
        std::optional<schedule::FusedBlockPlan> plan;
        try {
          plan = schedule::plan_fused_block(l.block, c.S, fused_planner_options(c.burst_entries));
        } catch (const Error&) {
        }
        FusedAddresses fa;
        fa.x = c.addr(l.inputs[0]);
        fa.y = c.addr(l.outputs[0]);
        size_t wi = 0;
        if (l.block.expand) fa.w_expand = c.addr(l.weights[wi++]);
        fa.w_dw = c.addr(l.weights[wi++]);
        const bool dw2 = l.weights.size() > wi + (l.block.project ? 1 : 0);
        fa.taps = l.stages[l.block.expand ? 1 : 0].geom.taps;
        if (dw2) {
          fa.w_dw2 = c.addr(l.weights[wi++]);
          fa.taps2 = l.dw_taps - fa.taps;
        }
        if (l.block.project) fa.w_project = c.addr(l.weights[wi++]);
        // The same group layer by layer, as the scan schedule runs it (its intermediates placed
        // after everything placed so far).
        Ctx sc{wl, cfg, ScheduleKind::Scan, c.S, c.wb, c.mem, c.burst_entries};
        for (const Layer& s : l.stages) sc.mem.place(wl.storage(s.outputs[0]), size_of(s.outputs[0]));
        auto run_stages = [&](const RequestSink& snk, LayerResult& out) {
          Emitter em(snk, c.wb, cfg.mac_array);
          for (const Layer& s : l.stages) {
            LayerResult sr;
            if (s.kind == LayerKind::Pointwise)
              run_gemm_layer(sc, s, em, sr);
            else if (s.kind == LayerKind::Depthwise)
              run_band_layer(sc, s, em, sr);
            else
              run_stream_layer(sc, s, em, sr);
            out.buffer_accesses += sr.buffer_accesses;
          }
          em.flush();
          out.read_entries = em.reads, out.write_entries = em.writes;
          out.compute_cycles = em.cycles(), out.ops = em.ops();
        };
        std::string why;
        if (!plan) {
          why = "no band fits the buffer";
        } else {
          // A scheduler fuses a group only when that moves less data than running its layers.
          LayerResult apart;
          run_stages(RequestSink{}, apart);
          const ReplayCounts f = replay_fused_block(*plan, wl.batch, fa, c.wb, cfg.mac_array, RequestSink{});
          const int64_t fused_entries = f.reads_input + f.reads_weights + f.writes_output;
          if (fused_entries > apart.read_entries + apart.write_entries)
            why = cat("fused (rows=", plan->rows, " chunk=", plan->chunk, ") would move ", fused_entries,
                      " entries, layer by layer ", apart.read_entries + apart.write_entries);
        }
        if (!why.empty()) {
          run_stages(sink, r);
          cycles = r.compute_cycles, ops = r.ops;
          c.mem.next = sc.mem.next;
          r.note = why + ": run layer by layer (scan)";
          r.tiling = "layer by layer";
          break;
        }
        const schedule::FusedBlockPlan& p = *plan;
        ReplayCounts rc = replay_fused_block(p, wl.batch, fa, c.wb, cfg.mac_array, sink);
        r.read_entries = rc.reads_input + rc.reads_weights;
        r.write_entries = rc.writes_output;
        r.buffer_accesses = rc.buffer_accesses;
        cycles = rc.cycles, ops = rc.ops;
        // MACs: the layers' own plus the expansions of halo rows recomputed (none with the halo cache)
        int64_t exact_expand = l.block.expand ? l.block.H * l.block.W * l.block.C * l.block.E : 0;
        r.macs = l.macs + std::max<int64_t>(0, p.expand_macs - exact_expand) * wl.batch;
        r.fused_plan = p;
        r.tiling = cat("band rows=", p.rows, " chunk=", p.chunk, " bands=", p.bands, " chunks=", p.chunks,
                       p.halo_cache ? " halo-cache" : "", " buffer=", p.buffer_entries);
        break;
      }
    }
    r.ops = ops;
    r.compute_cycles = cycles;
    r.read_bytes = r.read_entries * c.wb;
    r.write_bytes = r.write_entries * c.wb;
    if (dm) r.dram = dm->finish(to_dram(uint64_t(cycles)));
    offset += r.dram.cycles > 0 ? uint64_t(r.dram.cycles) : to_dram(uint64_t(cycles));
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
