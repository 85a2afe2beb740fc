// The fused-chain planner (schedule/fused_chain_planner.h): band halos through every stage, the
// choice of chunked runs and resident weights, the buffer and traffic model, the search.
#include "schedule/fused_chain_planner.h"

#include <algorithm>
#include <sstream>

#include "graph/error.h"

namespace locus::schedule {
namespace {

// Objective weight of a recomputed MAC against one entry of DRAM traffic (as the fused-block planner).
constexpr int64_t kMacsPerEntry = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// Output extent of a window of k taps, stride st, pads p (both sides) over n.
int64_t window_out(int64_t n, int64_t k, int64_t st, int64_t p) { return (n + p - k) / st + 1; }

// Weights of stage s per channel of its panels: a panel is `panel` output channels, or with a
// staged input (stage 0) `panel` input channels.
int64_t per_panel_channel(const FusedChainShape& s, int64_t st, bool staged) {
  const ChainStage& g = s.stages[size_t(st)];
  if (staged && st == 0) return g.OC;
  return g.depthwise ? g.KH * g.KW : s.TC(st);
}

}  // namespace

int64_t FusedChainShape::TH(int64_t i) const {
  int64_t h = H;
  for (int64_t s = 0; s < i; ++s) h = window_out(h, stages[size_t(s)].KH, stages[size_t(s)].SH, stages[size_t(s)].PT + stages[size_t(s)].PB);
  return h;
}

int64_t FusedChainShape::TW(int64_t i) const {
  int64_t w = W;
  for (int64_t s = 0; s < i; ++s) w = window_out(w, stages[size_t(s)].KW, stages[size_t(s)].SW, stages[size_t(s)].PL + stages[size_t(s)].PR);
  return w;
}

int64_t FusedChainShape::TC(int64_t i) const { return i == 0 ? C : stages[size_t(i - 1)].OC; }

int64_t FusedChainShape::weights(int64_t s) const {
  const ChainStage& g = stages[size_t(s)];
  return g.depthwise ? TC(s) * g.KH * g.KW : TC(s) * g.OC;
}

int64_t FusedChainShape::macs_per_pixel(int64_t s) const { return weights(s); }

void FusedChainShape::check() const {
  LOCUS_CHECK(H > 0 && W > 0 && C > 0, "fused chain: bad input H=", H, " W=", W, " C=", C);
  LOCUS_CHECK(!stages.empty(), "fused chain: no stage");
  for (int64_t s = 0; s < n(); ++s) {
    const ChainStage& g = stages[size_t(s)];
    LOCUS_CHECK(g.OC > 0 && g.KH >= 1 && g.KW >= 1 && g.SH >= 1 && g.SW >= 1 && g.PT >= 0 && g.PB >= 0 &&
                    g.PL >= 0 && g.PR >= 0,
                "fused chain: stage ", s, " has a bad geometry");
    if (g.depthwise) {
      LOCUS_CHECK(g.OC == TC(s), "fused chain: depthwise stage ", s, " maps ", TC(s), " channels to ", g.OC);
    } else {
      LOCUS_CHECK(g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PT + g.PB + g.PL + g.PR == 0,
                  "fused chain: 1x1 stage ", s, " must have stride 1 and no pads");
    }
    LOCUS_CHECK(TH(s + 1) > 0 && TW(s + 1) > 0, "fused chain: stage ", s, " has an empty output");
  }
  if (residual == ChainResidual::Input)
    LOCUS_CHECK(TH(n()) == H && TW(n()) == W && TC(n()) == C,
                "fused chain: the residual is the chain input but the output has another shape");
}

int64_t FusedChainPlan::band_first(int64_t i, int64_t b) const {
  const int64_t n = shape.n();
  if (i == n) return std::min(shape.TH(n), b * rows);
  const ChainStage& g = shape.stages[size_t(i)];
  return std::clamp<int64_t>(band_first(i + 1, b) * g.SH - g.PT, 0, shape.TH(i));
}

int64_t FusedChainPlan::band_last(int64_t i, int64_t b) const {
  const int64_t n = shape.n();
  if (i == n) return std::min(shape.TH(n), (b + 1) * rows);
  const ChainStage& g = shape.stages[size_t(i)];
  const int64_t f = band_first(i, b), nf = band_first(i + 1, b), nl = band_last(i + 1, b);
  if (nl <= nf) return f;
  return std::max(f, std::min(shape.TH(i), (nl - 1) * g.SH - g.PT + g.KH));
}

std::pair<int64_t, int64_t> FusedChainPlan::run_of(int64_t s) const {
  if (chunk[size_t(s)] == 0 && chunk[size_t(s + 1)] == 0) return {-1, -1};
  int64_t first = s, close = s;
  while (chunk[size_t(first)] != 0) --first;           // the stage whose input is whole
  while (chunk[size_t(close + 1)] != 0) ++close;       // the stage whose output is whole
  return {first, close};
}

int64_t FusedChainPlan::chunks_of_run(int64_t first) const {
  return ceil_div(shape.TC(first + 1), chunk[size_t(first + 1)]);
}

int64_t FusedChainPlan::run_chunk_weights(int64_t first, int64_t e0, int64_t e1) const {
  const int64_t close = run_of(first).second, cw = e1 - e0;
  int64_t w = shape.TC(first) * cw + cw * shape.stages[size_t(close)].OC;
  for (int64_t s = first + 1; s < close; ++s) {
    const ChainStage& g = shape.stages[size_t(s)];
    w += g.KH * g.KW * cw;
  }
  return w;
}

FusedChainPlanAttempt try_fused_chain_plan(const FusedChainShape& s, int64_t S, int64_t rows,
                                           const std::vector<int64_t>& chunk, const std::vector<bool>& resident,
                                           bool staged, const FusedChainPlannerOptions& o) {
  s.check();
  const int64_t n = s.n();
  LOCUS_CHECK(rows >= 1, "fused chain: bad rows=", rows);
  LOCUS_CHECK(int64_t(chunk.size()) == n + 1 && int64_t(resident.size()) == n,
              "fused chain: the chunking needs ", n + 1, " entries and the residency ", n);
  LOCUS_CHECK(chunk[0] == 0 && chunk[size_t(n)] == 0, "fused chain: the chain input and output are whole");
  for (int64_t i = 1; i < n; ++i) {
    const int64_t c = chunk[size_t(i)];
    LOCUS_CHECK(c >= 0 && c <= s.TC(i), "fused chain: bad chunk ", c, " of tensor ", i);
    if (s.stages[size_t(i - 1)].depthwise)
      LOCUS_CHECK(c == chunk[size_t(i - 1)], "fused chain: depthwise stage ", i - 1, " changes the chunking");
    else
      LOCUS_CHECK(c == 0 || chunk[size_t(i - 1)] == 0, "fused chain: 1x1 stage ", i - 1,
                  " both closes and opens a chunked run");
  }
  LOCUS_CHECK(chunk[size_t(n - 1)] == 0 || !s.stages[size_t(n - 1)].depthwise,
              "fused chain: a chunked run must end at a 1x1 stage");
  FusedChainPlan p;
  p.shape = s;
  p.S = S;
  p.rows = std::min(rows, s.TH(n));
  p.bands = ceil_div(s.TH(n), p.rows);
  p.chunk = chunk;
  p.resident = resident;
  p.staged = staged;
  LOCUS_CHECK(!staged || (!s.stages[0].depthwise && (n == 1 || chunk[1] == 0)),
              "fused chain: a staged input needs a 1x1 first stage with a whole output");
  // Rows of tensor i band b computes that band b - 1 has not (all of them for b = 0).
  auto new_rows = [&](int64_t i, int64_t b) {
    const int64_t f = b > 0 ? std::max(p.band_first(i, b), p.band_last(i, b - 1)) : p.band_first(i, b);
    return std::max<int64_t>(0, p.band_last(i, b) - f);
  };
  const int64_t OCn = s.TC(n), panel = o.panel;
  const bool out_panels = p.run_of(n - 1).first < 0;  // the last stage writes the output panel by panel
  for (int64_t st = 0; st < n; ++st)
    LOCUS_CHECK(!resident[size_t(st)] || p.run_of(st).first < 0, "fused chain: stage ", st,
                " is in a chunked run; only whole stages can be resident");
  // Buffer: the input ring, every intermediate's band rows, the output tile, the weights.
  int64_t buf = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t rmax = 0;
    for (int64_t b = 0; b < p.bands; ++b)
      rmax = std::max(rmax, staged && i == 0 ? new_rows(0, b) : p.band_last(i, b) - p.band_first(i, b));
    buf += rmax * s.TW(i) * (staged && i == 0 ? std::min(s.C, panel) : chunk[size_t(i)] ? chunk[size_t(i)] : s.TC(i));
  }
  buf += p.rows * s.TW(n) * (out_panels ? std::min(OCn, panel) : OCn);
  for (int64_t st = 0; st < n; ++st) {
    const auto run = p.run_of(st);
    if (run.first == st) buf += p.run_chunk_weights(st, 0, chunk[size_t(st + 1)]);  // the run's slot
    if (run.first >= 0) continue;
    buf += resident[size_t(st)] ? s.weights(st) : std::min(s.weights(st), panel * per_panel_channel(s, st, staged));
  }
  p.buffer_entries = buf;
  if (buf > S) {
    std::string runs;
    for (int64_t i = 1; i < n; ++i) runs += chunk[size_t(i)] ? cat(" T", i, "/", chunk[size_t(i)]) : std::string();
    return {std::nullopt, buf, cat("rows=", p.rows, runs.empty() ? " all whole" : " chunked" + runs, " need ", buf,
                              " entries, more than S=", S)};
  }
  // Traffic per image.
  for (int64_t b = 0; b < p.bands; ++b) {
    const int64_t first = b > 0 ? std::max(p.band_first(0, b), p.band_last(0, b - 1)) : p.band_first(0, b);
    p.reads_input += std::max<int64_t>(0, p.band_last(0, b) - first) * s.W * s.C;
    if (s.residual == ChainResidual::Input && !staged)
      LOCUS_CHECK(p.band_first(0, b) <= p.band_first(n, b) && p.band_last(n, b) <= p.band_last(0, b),
                  "fused chain: band ", b, "'s output rows are not among its input rows (Input residual)");
    for (int64_t st = 0; st < n; ++st) {
      const int64_t rows_out = staged && st == 0 ? new_rows(1, b) : p.band_last(st + 1, b) - p.band_first(st + 1, b);
      p.macs += rows_out * s.TW(st + 1) * s.macs_per_pixel(st);
    }
  }
  // the residual from DRAM: another tensor, or the input when it is not kept on chip (staged)
  if (s.residual == ChainResidual::External || (staged && s.residual == ChainResidual::Input))
    p.reads_residual = s.TH(n) * s.TW(n) * s.TC(n);
  for (int64_t st = 0; st < n; ++st) {
    const auto run = p.run_of(st);
    if (run.first < 0) {
      // a streamed stage of one panel keeps it in its slot: read once, as a resident one
      const bool once = resident[size_t(st)] || s.weights(st) <= panel * per_panel_channel(s, st, staged);
      p.reads_weights += (once ? 1 : p.bands) * s.weights(st);
    } else if (run.first == st) {
      const int64_t c = chunk[size_t(st + 1)], E = s.TC(st + 1), chunks = p.chunks_of_run(st);
      const int64_t all = p.run_chunk_weights(st, 0, E);
      if (chunks == 1) {
        p.reads_weights += all;
      } else {
        p.reads_weights += p.bands * all;
        // the chunk at each turn: after an even band (forward) the last chunk, after an odd band the first
        for (int64_t b = 1; b < p.bands; ++b)
          p.reads_weights -= b % 2 == 1 ? p.run_chunk_weights(st, (chunks - 1) * c, E) : p.run_chunk_weights(st, 0, c);
      }
    }
  }
  p.writes_output = s.TH(n) * s.TW(n) * s.TC(n);
  p.total = p.reads_input + p.reads_residual + p.reads_weights + p.writes_output;
  return {p, buf, ""};
}

FusedChainPlanAttempt search_fused_chain_plan(const FusedChainShape& s, int64_t S, const FusedChainPlannerOptions& o) {
  s.check();
  const int64_t n = s.n();
  // Every valid chunking: at each 1x1 stage with a whole input, followed by depthwise stages and a
  // closing 1x1 stage, either no run or a run with chunk_step x 2^k channels (or all of them).
  std::vector<std::vector<int64_t>> chunkings;
  std::vector<int64_t> cur(size_t(n + 1), 0);
  auto rec = [&](auto&& self, int64_t st) -> void {
    if (st >= n) {
      chunkings.push_back(cur);
      return;
    }
    self(self, st + 1);  // stage st does not open a run
    if (s.stages[size_t(st)].depthwise || st + 1 >= n) return;
    int64_t close = st + 1;
    while (close < n && s.stages[size_t(close)].depthwise) ++close;
    if (close >= n) return;
    const int64_t E = s.TC(st + 1);
    std::vector<int64_t> cands;
    for (int64_t c = o.chunk_step; c < E; c *= 2) cands.push_back(c);
    cands.push_back(E);
    for (int64_t c : cands) {
      for (int64_t i = st + 1; i <= close; ++i) cur[size_t(i)] = c;
      self(self, close + 1);
      for (int64_t i = st + 1; i <= close; ++i) cur[size_t(i)] = 0;
    }
  };
  rec(rec, 0);
  int64_t min_macs = 0;
  for (int64_t st = 0; st < n; ++st) min_macs += s.TH(st + 1) * s.TW(st + 1) * s.macs_per_pixel(st);
  FusedChainPlan best;
  int64_t best_cost = -1, candidates = 0, over = 0, smallest = -1;
  std::string smallest_why;
  for (int64_t rows = 1; rows <= s.TH(n); ++rows) {
    if (rows > 1 && ceil_div(s.TH(n), rows) == ceil_div(s.TH(n), rows - 1)) continue;  // same bands, taller buffer
    for (const std::vector<int64_t>& ch : chunkings) {
      std::vector<int64_t> whole;  // stages outside runs: resident or streamed
      for (int64_t st = 0; st < n; ++st)
        if (ch[size_t(st)] == 0 && ch[size_t(st + 1)] == 0) whole.push_back(st);
      const bool can_stage = !s.stages[0].depthwise && (n == 1 || ch[1] == 0);
      for (uint32_t mask = 0; mask < (1u << (whole.size() + 1)); ++mask) {
        const bool staged = mask & 1u;
        if (staged && !can_stage) continue;
        std::vector<bool> res(size_t(n), false);
        for (size_t k = 0; k < whole.size(); ++k) res[size_t(whole[k])] = (mask >> (k + 1)) & 1u;
        ++candidates;
        FusedChainPlanAttempt a = try_fused_chain_plan(s, S, rows, ch, res, staged, o);
        if (!a.plan) {
          ++over;
          continue;
        }
        const FusedChainPlan& p = *a.plan;
        const int64_t cost = p.total + (p.macs - min_macs) / kMacsPerEntry;
        // Ties: fewer bands, then a smaller buffer.
        if (best_cost < 0 || cost < best_cost ||
            (cost == best_cost && (p.bands < best.bands || (p.bands == best.bands && p.buffer_entries < best.buffer_entries)))) {
          best = p;
          best_cost = cost;
        }
      }
    }
  }
  FusedChainPlanAttempt out;
  if (best_cost < 0) {
    // the smallest candidate: one row, every run at its smallest chunk, every weight streamed
    for (const std::vector<int64_t>& c : chunkings) {
      const bool staged = !s.stages[0].depthwise && (n == 1 || c[1] == 0);
      FusedChainPlanAttempt a = try_fused_chain_plan(s, S, 1, c, std::vector<bool>(size_t(n), false), staged, o);
      if (smallest < 0 || a.need < smallest) smallest = a.need, smallest_why = a.why_not;
    }
    out.why_not = cat("fused chain: a buffer of S=", S, " entries cannot hold any band of the ", n,
                      "-stage chain on ", s.H, "x", s.W, "x", s.C, " (the smallest candidate, ", smallest_why, ")");
    return out;
  }
  best.candidates = candidates;
  best.over_buffer = over;
  out.plan = best;
  return out;
}

FusedChainPlan plan_fused_chain(const FusedChainShape& s, int64_t S, const FusedChainPlannerOptions& o) {
  FusedChainPlanAttempt a = search_fused_chain_plan(s, S, o);
  if (!a.plan) fail(a.why_not);
  return *a.plan;
}

std::string FusedChainPlan::describe() const {
  std::ostringstream os;
  const int64_t n = shape.n();
  os << "fused chain " << shape.H << "x" << shape.W << "x" << shape.C << ":";
  for (int64_t st = 0; st < n; ++st) {
    const ChainStage& g = shape.stages[size_t(st)];
    if (g.depthwise)
      os << " dw" << g.KH << "x" << g.KW << "/" << g.SH;
    else
      os << " pw" << shape.TC(st) << "->" << g.OC;
    if (resident[size_t(st)]) os << "(resident)";
  }
  if (shape.residual != ChainResidual::None)
    os << (shape.residual == ChainResidual::Input ? " +input" : " +residual");
  os << "; rows=" << rows << " bands=" << bands << (staged ? " staged input" : "");
  for (int64_t st = 0; st < n; ++st)
    if (run_of(st).first == st)
      os << "; T" << st + 1 << ".." << "T" << run_of(st).second << " chunk=" << chunk[size_t(st + 1)] << " ("
         << chunks_of_run(st) << " chunks)";
  os << "; buffer=" << buffer_entries << " of S=" << S << "; per image: input=" << reads_input;
  if (reads_residual) os << " residual=" << reads_residual;
  os << " weights=" << reads_weights << " output=" << writes_output << " total=" << total << " entries, macs=" << macs;
  return os.str();
}

}  // namespace locus::schedule
