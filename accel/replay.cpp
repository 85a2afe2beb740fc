// The replay (accel/replay.h): a mapping's layers as address streams, with the counts the evaluator
// prices. The GEMM walk keeps the residency policy of schedule::BufferSimulator.
#include "accel/replay.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>

#include "graph/error.h"

namespace locus::accel {

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


std::string gemm_desc(const schedule::Plan& p) {
  return cat("M=", p.shape.M, " K=", p.shape.K, " N=", p.shape.N, " m=", p.m, " n=", p.n, " k=", p.k, " ",
             schedule::order_name(p.order), " resident=", p.resident_strips);
}

void run_gemm_layer(const ReplayContext& c, const Layer& l, const schedule::Plan& p, Emitter& em, LayerReplay& r) {
  const uint64_t wb = uint64_t(c.word_bytes);
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
}

// Depthwise conv and pools: a row-band walk. Channels are cut into chunks of cc (all C if they
// fit); per chunk, per image, output rows in bands of r; the input rows live in a ring of
// (r - 1).SH + KH rows, so rows shared by consecutive bands are read once; weights (KH.KW per
// channel) are read once per chunk. On chip: ring x W x cc + r x OW x cc + weights.
void run_band_layer(const ReplayContext& c, const Layer& l, const BandPlan& plan, Emitter& em, LayerReplay& r) {
  const ConvGeom& g = l.geom;
  const bool dw = l.kind == LayerKind::Depthwise;
  const int64_t wtaps = dw ? g.taps : 0;
  const int64_t cc = plan.chunk, rows = plan.rows;
  const uint64_t wb = uint64_t(c.word_bytes);
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
void run_stream_layer(const ReplayContext& c, const Layer& l, Emitter& em, LayerReplay& r) {
  const uint64_t wb = uint64_t(c.word_bytes);
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

ReplayCounts replay_se_block(const schedule::SeBlockPlan& sp, int64_t images, const FusedAddresses& a,
                             int64_t word_bytes, int mac_array, const RequestSink& sink) {
  Emitter em(sink, word_bytes, mac_array);
  const schedule::FusedBlockPlan& p = sp.block;
  const schedule::FusedBlockShape& s = p.shape;
  const bool two_pass = sp.strategy == schedule::SeStrategy::TwoPass;
  const uint64_t wb = uint64_t(word_bytes);
  const int64_t OH = s.OH(), OW = s.OW();
  ReplayCounts rc;
  auto counted = [&](int64_t& counter, auto&& f) {
    const int64_t r0 = em.reads + em.writes;
    f();
    counter += em.reads + em.writes - r0;
    rc.buffer_accesses += em.reads + em.writes - r0;
  };
  // the chunk's expand and depthwise weights, or its project weights
  auto front_weights = [&](int64_t e0, int64_t e1) {
    counted(rc.reads_weights, [&] {
      if (s.expand) em.read(a.w_expand + uint64_t(e0 * s.C) * wb, (e1 - e0) * s.C);
      em.read(a.w_dw + uint64_t(e0 * a.taps) * wb, (e1 - e0) * a.taps);
    });
  };
  auto project_weights = [&](int64_t e0, int64_t e1) {
    counted(rc.reads_weights, [&] {
      for (int64_t oc = 0; oc < s.OC; ++oc) em.read(a.w_project + uint64_t(oc * s.E + e0) * wb, e1 - e0);
    });
  };
  // Band b of image n through expand + depthwise (its input rows read, every chunk's weights
  // loaded but the one at the Scan turn); visit(chunk e0, e1, rows) after each chunk.
  auto front = [&](int64_t n, int64_t b, int64_t walk, auto&& visit) {
    const int64_t in0 = p.band_in_first(b), in1 = p.band_in_last(b), rows = std::max<int64_t>(0, in1 - in0);
    counted(rc.reads_input, [&] {
      if (rows > 0) em.read(a.x + uint64_t((n * s.H + in0) * s.W * s.C) * wb, rows * s.W * s.C);
    });
    const int64_t oh0 = b * p.rows, oh1 = std::min(OH, oh0 + p.rows), out_px = (oh1 - oh0) * OW;
    for (int64_t t = 0; t < p.chunks; ++t) {
      const int64_t q = walk % 2 == 0 ? t : p.chunks - 1 - t;
      const int64_t e0 = q * p.chunk, e1 = std::min(s.E, e0 + p.chunk), cw = e1 - e0;
      if (p.chunks == 1 ? walk == 0 : !(walk > 0 && t == 0)) front_weights(e0, e1);
      const int64_t expanded = s.expand ? rows * s.W : 0;
      rc.buffer_accesses += expanded * s.C + expanded * cw + rows * s.W * cw + out_px * cw;
      em.compute(expanded * s.C * cw + out_px * cw * a.taps);
      visit(e0, e1, oh0, oh1);
    }
  };
  // D's entries before band b (in order of production) and the spilled part of band b's chunk.
  auto spilled_of = [&](int64_t oh0, int64_t oh1, int64_t e0, int64_t e1) -> std::pair<int64_t, int64_t> {
    const int64_t start = oh0 * OW * s.E + (oh1 - oh0) * OW * e0, len = (oh1 - oh0) * OW * (e1 - e0);
    return {start, std::clamp<int64_t>(sp.spilled - start, 0, len)};
  };
  for (int64_t n = 0; n < images; ++n) {
    // pass 1: expand, filter, pool (two-pass: spill the beginning of D)
    for (int64_t b = 0; b < p.bands; ++b)
      front(n, b, b, [&](int64_t e0, int64_t e1, int64_t oh0, int64_t oh1) {
        rc.buffer_accesses += (oh1 - oh0) * OW * (e1 - e0);  // pooled
        if (!two_pass) return;
        const std::pair<int64_t, int64_t> sp_run = spilled_of(oh0, oh1, e0, e1);  // not a binding: captured below
        if (sp_run.second > 0)
          counted(rc.writes_output, [&] { em.write(a.spill + uint64_t(sp_run.first) * wb, sp_run.second); });
      });
    // the squeeze-excite's weights and MACs
    counted(rc.reads_weights, [&] {
      em.read(a.w_squeeze, a.squeeze * s.E);
      em.read(a.w_excite, s.E * a.squeeze);
    });
    em.compute(2 * a.squeeze * s.E);
    // pass 2: scale and project
    for (int64_t k = 0; k < p.bands; ++k) {
      const int64_t b = two_pass ? p.bands - 1 - k : k;
      const int64_t oh0 = b * p.rows, oh1 = std::min(OH, oh0 + p.rows), out_px = (oh1 - oh0) * OW;
      auto project = [&](int64_t t, int64_t e0, int64_t e1) {
        const int64_t cw = e1 - e0;
        if (p.chunks == 1 ? k == 0 : !(k > 0 && t == 0)) project_weights(e0, e1);
        rc.buffer_accesses += 2 * out_px * cw + (t > 0 ? 2 : 1) * out_px * s.OC + cw * s.OC;
        em.compute(out_px * cw + out_px * cw * s.OC);
      };
      if (two_pass) {
        for (int64_t t = 0; t < p.chunks; ++t) {
          const int64_t q = k % 2 == 0 ? t : p.chunks - 1 - t;
          const int64_t e0 = q * p.chunk, e1 = std::min(s.E, e0 + p.chunk);
          const std::pair<int64_t, int64_t> sp_run = spilled_of(oh0, oh1, e0, e1);
          if (sp_run.second > 0)
            counted(rc.reads_input, [&] { em.read(a.spill + uint64_t(sp_run.first) * wb, sp_run.second); });
          project(t, e0, e1);
        }
      } else {
        int64_t t = 0;
        front(n, b, k, [&](int64_t e0, int64_t e1, int64_t, int64_t) { project(t++, e0, e1); });
      }
      counted(rc.writes_output, [&] { em.write(a.y + uint64_t((n * OH + oh0) * OW * s.OC) * wb, out_px * s.OC); });
    }
  }
  em.flush();
  rc.ops = em.ops();
  rc.cycles = em.cycles();
  return rc;
}

ReplayCounts replay_fused_chain(const schedule::FusedChainPlan& p, int64_t images, const ChainAddresses& a,
                                int64_t word_bytes, int mac_array, const RequestSink& sink) {
  Emitter em(sink, word_bytes, mac_array);
  const schedule::FusedChainShape& s = p.shape;
  const uint64_t wb = uint64_t(word_bytes);
  const int64_t n = s.n(), OH = s.TH(n), OW = s.TW(n), OC = s.TC(n);
  LOCUS_CHECK(int64_t(a.w.size()) == n, "accelerator model: the chain has ", n, " stages, ", a.w.size(), " weight addresses");
  const int64_t panel = a.panel;
  ReplayCounts rc;
  auto weights = [&](uint64_t addr, int64_t entries) {
    const int64_t r0 = em.reads;
    em.read(addr, entries);
    rc.reads_weights += em.reads - r0;
    rc.buffer_accesses += em.reads - r0;
  };
  for (int64_t img = 0; img < images; ++img) {
    for (int64_t b = 0; b < p.bands; ++b) {
      const int64_t first = b > 0 ? std::max(p.band_first(0, b), p.band_last(0, b - 1)) : p.band_first(0, b);
      const int64_t new_rows = std::max<int64_t>(0, p.band_last(0, b) - first);
      int64_t r0 = em.reads;
      if (new_rows > 0) em.read(a.x + uint64_t((img * s.H + first) * s.W * s.C) * wb, new_rows * s.W * s.C);
      const int64_t oh0 = p.band_first(n, b), out_px = (p.band_last(n, b) - oh0) * OW;
      if (s.residual == schedule::ChainResidual::External || (p.staged && s.residual == schedule::ChainResidual::Input))
        em.read(a.r + uint64_t((img * OH + oh0) * OW * OC) * wb, out_px * OC);
      rc.reads_input += em.reads - r0;
      rc.buffer_accesses += em.reads - r0;
      for (int64_t st = 0; st < n; ++st) {
        const schedule::ChainStage& g = s.stages[size_t(st)];
        const auto run = p.run_of(st);
        // a staged input: stage 0 computes only the rows of T1 the previous band did not
        const int64_t out_first = p.staged && st == 0 && b > 0 ? std::max(p.band_first(1, b), p.band_last(1, b - 1))
                                                                 : p.band_first(st + 1, b);
        const int64_t out_rows = std::max<int64_t>(0, p.band_last(st + 1, b) - out_first);
        const int64_t in_rows = p.staged && st == 0 ? out_rows : p.band_last(st, b) - p.band_first(st, b);
        const int64_t px = out_rows * s.TW(st + 1), in_px = in_rows * s.TW(st);
        if (run.first < 0) {
          const int64_t per_ch = p.staged && st == 0 ? g.OC : g.depthwise ? g.KH * g.KW : s.TC(st);
          const bool once = p.resident[size_t(st)] || s.weights(st) <= panel * per_ch;
          if (!once || b == 0) weights(a.w[size_t(st)], s.weights(st));
          // input read, output written, weights read on chip
          rc.buffer_accesses += in_px * s.TC(st) + px * g.OC + s.weights(st);
          em.compute(px * s.macs_per_pixel(st));
        } else if (run.first == st) {
          // the run's chunks, serpentine: stages st..close per chunk
          const int64_t E = s.TC(st + 1), c = p.chunk[size_t(st + 1)], chunks = p.chunks_of_run(st);
          for (int64_t t = 0; t < chunks; ++t) {
            const int64_t q = b % 2 == 0 ? t : chunks - 1 - t;
            const int64_t e0 = q * c, e1 = std::min(E, e0 + c), cw = e1 - e0;
            const bool load = chunks == 1 ? b == 0 : !(b > 0 && t == 0);
            for (int64_t d = st; d <= run.second; ++d) {
              const schedule::ChainStage& dg = s.stages[size_t(d)];
              const int64_t d_px = (p.band_last(d + 1, b) - p.band_first(d + 1, b)) * s.TW(d + 1);
              const int64_t d_in = (p.band_last(d, b) - p.band_first(d, b)) * s.TW(d);
              int64_t w_entries = 0;
              if (d == st) {
                if (load) weights(a.w[size_t(d)] + uint64_t(e0 * s.TC(d)) * wb, cw * s.TC(d));
                w_entries = cw * s.TC(d);
                rc.buffer_accesses += d_in * s.TC(d) + d_px * cw;
              } else if (d == run.second) {
                if (load)
                  for (int64_t oc = 0; oc < dg.OC; ++oc) weights(a.w[size_t(d)] + uint64_t(oc * E + e0) * wb, cw);
                w_entries = cw * dg.OC;
                rc.buffer_accesses += d_in * cw + (t > 0 ? 2 : 1) * d_px * dg.OC;
              } else {
                if (load) weights(a.w[size_t(d)] + uint64_t(e0 * dg.KH * dg.KW) * wb, cw * dg.KH * dg.KW);
                w_entries = cw * dg.KH * dg.KW;
                rc.buffer_accesses += d_in * cw + d_px * cw;
              }
              rc.buffer_accesses += w_entries;
              em.compute(d_px * w_entries);
            }
          }
        }
      }
      em.write(a.y + uint64_t((img * OH + oh0) * OW * OC) * wb, out_px * OC);
      rc.writes_output += out_px * OC;  // and read from the buffer
      rc.buffer_accesses += out_px * OC;
    }
  }
  em.flush();
  rc.ops = em.ops(), rc.cycles = em.cycles();
  return rc;
}

ChainAddresses chain_addresses(const ReplayContext& c, const Layer& l) {
  ChainAddresses ca;
  ca.x = c.addr(l.inputs[0]);
  ca.y = c.addr(l.outputs[0]);
  ca.r = l.inputs.size() > 1 ? c.addr(l.inputs[1]) : ca.x;  // an Input residual is the input
  for (const std::string& w : l.weights) ca.w.push_back(c.addr(w));
  return ca;
}

uint64_t ReplayContext::addr(const std::string& tensor) const {
  const std::string s = wl.storage(tensor);
  auto it = placement.find(s);
  LOCUS_CHECK(it != placement.end(), "accelerator model: tensor '", s, "' has no DRAM address in the mapping");
  return it->second;
}

int64_t band_entries(const Layer& l, int64_t rows, int64_t chunk) {
  const ConvGeom& g = l.geom;
  const int64_t wtaps = l.kind == LayerKind::Depthwise ? g.taps : 0;
  const int64_t ring = std::min(g.H, (rows - 1) * g.SH + g.KH);
  return ring * g.W * chunk + rows * g.OW * chunk + wtaps * chunk;
}

FusedAddresses fused_addresses(const ReplayContext& c, const Layer& l) {
  FusedAddresses fa;
  fa.x = c.addr(l.inputs[0]);
  fa.y = c.addr(l.outputs[0]);
  size_t wi = 0;
  if (l.block.expand) fa.w_expand = c.addr(l.weights[wi++]);
  fa.w_dw = c.addr(l.weights[wi++]);
  const bool dw2 = !l.se && l.weights.size() > wi + (l.block.project ? 1 : 0);
  for (const Layer& st : l.stages)  // the (first) depthwise stage
    if (st.kind == LayerKind::Depthwise) {
      fa.taps = st.geom.taps;
      break;
    }
  if (dw2) {
    fa.w_dw2 = c.addr(l.weights[wi++]);
    fa.taps2 = l.dw_taps - fa.taps;
  }
  if (l.block.project) fa.w_project = c.addr(l.weights[wi++]);
  if (l.se) {
    fa.w_squeeze = c.addr(l.weights[wi++]);
    fa.w_excite = c.addr(l.weights[wi++]);
    fa.squeeze = l.se_squeeze;
    // D's region, placed only when a two-pass plan spills
    auto it = c.placement.find(c.wl.storage(l.name + "/dw"));
    if (it != c.placement.end()) fa.spill = it->second;
  }
  return fa;
}

namespace {

// One layer that is not a fused group, into `em`.
void replay_into(const ReplayContext& c, const Layer& l, const LayerMapping& m, Emitter& em, LayerReplay& r) {
  switch (l.kind) {
    case LayerKind::Pointwise:
    case LayerKind::Conv:
    case LayerKind::Gemm:
      LOCUS_CHECK(m.gemm.has_value(), "accelerator model: layer '", l.name, "' has no GEMM tiles in its mapping");
      run_gemm_layer(c, l, *m.gemm, em, r);  // tiles from the GEMM planner
      return;
    case LayerKind::Depthwise:
    case LayerKind::Pool:
      LOCUS_CHECK(m.band.has_value(), "accelerator model: layer '", l.name, "' has no row band in its mapping");
      run_band_layer(c, l, *m.band, em, r);  // row bands
      return;
    default:
      run_stream_layer(c, l, em, r);  // streamed
  }
}

}  // namespace

LayerReplay replay_layer(const ReplayContext& c, const Layer& l, const LayerMapping& m, const RequestSink& sink) {
  LayerReplay r;
  if (l.kind == LayerKind::View) {
    r.tiling = "view (no data moves)";
    return r;
  }
  // a fused group run as one fused schedule: its counts
  auto fused = [&r](const ReplayCounts& rc, std::string tiling) {
    r.reads = rc.reads_input + rc.reads_weights;
    r.writes = rc.writes_output;
    r.buffer_accesses = rc.buffer_accesses;
    r.cycles = rc.cycles, r.ops = rc.ops;
    r.tiling = std::move(tiling);
    return r;
  };
  if (l.kind == LayerKind::Fused && m.chain)
    return fused(replay_fused_chain(*m.chain, c.wl.batch, chain_addresses(c, l), c.word_bytes, c.mac_array, sink),
                 m.chain->describe());
  if (l.kind == LayerKind::Fused && m.fused) {
    const schedule::FusedBlockPlan& p = *m.fused;
    return fused(m.se ? replay_se_block(*m.se, c.wl.batch, fused_addresses(c, l), c.word_bytes, c.mac_array, sink)
                      : replay_fused_block(p, c.wl.batch, fused_addresses(c, l), c.word_bytes, c.mac_array, sink),
                 cat("band rows=", p.rows, " chunk=", p.chunk, " bands=", p.bands, " chunks=", p.chunks,
                     p.halo_cache ? " halo-cache" : "", " buffer=", p.buffer_entries,
                     m.se ? cat(" squeeze-excite ", schedule::se_strategy_name(m.se->strategy), " spilled=", m.se->spilled)
                          : std::string()));
  }
  Emitter em(sink, c.word_bytes, c.mac_array);
  if (l.kind == LayerKind::Fused) {
    // the group layer by layer, one stream (as the scan schedule runs it)
    LOCUS_CHECK(m.stages.size() == l.stages.size(), "accelerator model: fused group '", l.name, "' has ",
                l.stages.size(), " stages, its mapping ", m.stages.size());
    for (size_t i = 0; i < l.stages.size(); ++i) {
      LayerReplay sr;
      replay_into(c, l.stages[i], m.stages[i], em, sr);
      r.buffer_accesses += sr.buffer_accesses;
    }
    r.tiling = "layer by layer";
  } else {
    replay_into(c, l, m, em, r);
  }
  em.flush();
  r.reads = em.reads, r.writes = em.writes, r.cycles = em.cycles(), r.ops = em.ops();
  return r;
}

}  // namespace locus::accel
