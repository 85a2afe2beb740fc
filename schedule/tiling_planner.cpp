#include "schedule/tiling_planner.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "graph/error.h"

namespace locus::schedule {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Cut points of an axis of length D into tiles of t; the partial tile first or last.
std::vector<int64_t> cut(int64_t D, int64_t t, bool partial_first) {
  std::vector<int64_t> b{0};
  if (t >= D) {
    b.push_back(D);
    return b;
  }
  int64_t r = D % t;
  int64_t pos = 0;
  if (partial_first && r != 0) {
    pos = r;
    b.push_back(pos);
  }
  while (pos < D) {
    pos = std::min(D, pos + t);
    b.push_back(pos);
  }
  return b;
}

std::vector<int64_t> widths(const std::vector<int64_t>& b) {
  std::vector<int64_t> w;
  for (size_t i = 1; i < b.size(); ++i) w.push_back(b[i] - b[i - 1]);
  return w;
}

int order_rank(Order o) {
  switch (o) {
    case Order::ScanRows: return 0;
    case Order::ScanCols: return 1;
    case Order::RowMajor: return 2;
    case Order::ColMajor: return 3;
  }
  return 4;
}

// Candidate tile sizes along an axis: the sizes giving 1..16 tiles (exact and rounded up to the
// register step), powers of two and their multiples of the step, 1, the step and D.
std::vector<int64_t> candidates(int64_t D, int64_t step) {
  std::set<int64_t> s;
  auto add = [&](int64_t v) {
    if (v >= 1) s.insert(std::min(v, D));
  };
  for (int64_t t = 1; t <= 16; ++t) {
    int64_t v = ceil_div(D, t);
    add(v);
    add(round_up(v, step));
  }
  for (int64_t p = 1; p < D; p *= 2) {
    add(p);
    add(p * step);
  }
  add(1);
  add(step);
  add(D);
  return {s.begin(), s.end()};
}

struct Eval {
  int64_t resident = 0;
  int64_t buffer = 0;
  Traffic traffic;
  double efficiency = 0;
};

// Exact traffic of the tiles and order on a buffer of S entries (the tiles must fit).
Eval evaluate(const Plan& p) {
  const GemmShape& g = p.shape;
  Eval e;
  std::vector<int64_t> hm = widths(p.m_bounds()), wn = widths(p.n_bounds());
  const int64_t Mt = hm.size(), Nt = wn.size();
  const int64_t working = p.m * p.k + p.k * p.n + p.m * p.n;
  e.traffic.writes_c = g.M * g.N;
  if (p.k >= g.K) {
    const bool rows = rows_oriented(p.order);
    const bool scan = p.order == Order::ScanRows || p.order == Order::ScanCols;
    // stationary strip + C tile, then as many streaming strips as fit
    const int64_t strip = rows ? g.K * p.n : g.K * p.m;
    const int64_t fixed = rows ? p.m * g.K + p.m * p.n : p.n * g.K + p.m * p.n;
    const std::vector<int64_t>& sw = rows ? wn : hm;  // streaming strip widths, in walk order
    const int64_t St = rows ? Nt : Mt;                // number of streaming strips
    const int64_t Ot = rows ? Mt : Nt;                // number of stationary strips (walk rows)
    const int64_t total_stream = rows ? g.N : g.M;
    int64_t c = std::min<int64_t>((p.S - fixed) / strip, St);
    e.resident = c - 1;
    e.buffer = working + e.resident * strip;
    int64_t stream_reads;
    if (St <= c) {
      stream_reads = g.K * total_stream;  // every streaming strip stays resident
    } else if (!scan) {
      stream_reads = Ot * g.K * total_stream;  // LRU window of c < St strips, cyclic walk: no hits
    } else {
      // Turn after walk row t (t = 0, 1, ...): after an even row the c strips at the far end are
      // reused, after an odd row the c strips at the start.
      int64_t far = 0, near = 0;
      for (int64_t q = 0; q < c; ++q) {
        far += sw[St - 1 - q];
        near += sw[q];
      }
      const int64_t turns = Ot - 1;
      const int64_t far_turns = (turns + 1) / 2, near_turns = turns / 2;
      stream_reads = g.K * (Ot * total_stream - far_turns * far - near_turns * near);
    }
    if (rows) {
      e.traffic.reads_a = g.M * g.K;
      e.traffic.reads_b = stream_reads;
    } else {
      e.traffic.reads_b = g.K * g.N;
      e.traffic.reads_a = stream_reads;
    }
  } else {
    e.resident = 0;
    e.buffer = working;
    e.traffic.reads_a = g.M * g.K * Nt;
    e.traffic.reads_b = g.K * g.N * Mt;
  }
  e.traffic.total = e.traffic.reads_a + e.traffic.reads_b + e.traffic.writes_c;
  int64_t pm = 0, pn = 0;
  for (int64_t h : hm) pm += round_up(h, p.m_step);
  for (int64_t w : wn) pn += round_up(w, p.n_step);
  e.efficiency = double(g.M) * double(g.N) / (double(pm) * double(pn));
  return e;
}

}  // namespace

const char* verdict_reason(Verdict v) {
  switch (v) {
    case Verdict::Chosen: return "chosen";
    case Verdict::ExceedsBuffer: return "rejected: exceeds buffer";
    case Verdict::BelowMinimum: return "rejected: tile below the kernel's minimum";
    case Verdict::MoreTraffic: return "rejected: more traffic";
    case Verdict::LostTie: return "rejected: equal traffic, tie broken by compute efficiency";
  }
  return "?";
}

std::vector<int64_t> Plan::m_bounds() const {
  return cut(shape.M, m, order == Order::ScanCols);
}
std::vector<int64_t> Plan::n_bounds() const {
  return cut(shape.N, n, order == Order::ScanRows);
}
std::vector<int64_t> Plan::k_bounds() const { return cut(shape.K, k, false); }

int64_t Plan::buffer_entries() const {
  int64_t strip = rows_oriented(order) ? k * n : k * m;
  return m * k + k * n + m * n + resident_strips * strip;
}

std::vector<TileVisit> Plan::sequence() const {
  std::vector<int64_t> mb = m_bounds(), nb = n_bounds(), kb = k_bounds();
  const int64_t Mt = mb.size() - 1, Nt = nb.size() - 1, Kt = kb.size() - 1;
  std::vector<TileVisit> seq;
  seq.reserve(size_t(Mt * Nt * Kt));
  auto visit = [&](int64_t i, int64_t j) {
    for (int64_t q = 0; q < Kt; ++q) seq.push_back({mb[i], mb[i + 1], nb[j], nb[j + 1], kb[q], kb[q + 1]});
  };
  if (rows_oriented(order)) {
    for (int64_t i = 0; i < Mt; ++i)
      for (int64_t t = 0; t < Nt; ++t) visit(i, (order == Order::ScanRows && i % 2 == 1) ? Nt - 1 - t : t);
  } else {
    for (int64_t j = 0; j < Nt; ++j)
      for (int64_t t = 0; t < Mt; ++t) visit((order == Order::ScanCols && j % 2 == 1) ? Mt - 1 - t : t, j);
  }
  return seq;
}

std::string Plan::describe() const {
  std::ostringstream o;
  o << "M=" << shape.M << " K=" << shape.K << " N=" << shape.N << " S=" << S << ": m=" << m << " n=" << n
    << " k=" << k << " " << order_name(order) << " resident_strips=" << resident_strips
    << " buffer=" << buffer_entries() << " traffic A=" << traffic.reads_a << " B=" << traffic.reads_b
    << " C=" << traffic.writes_c << " total=" << traffic.total;
  return o.str();
}

TilingPlanner::TilingPlanner(int64_t buffer_entries, PlannerOptions opts) : S_(buffer_entries), opts_(opts) {
  LOCUS_CHECK(opts_.m_step >= 1 && opts_.n_step >= 1, "tiling: register-tile steps must be >= 1");
  LOCUS_CHECK(opts_.threads >= 1, "tiling: threads must be >= 1");
}

Plan TilingPlanner::make_plan(const GemmShape& g, int64_t m, int64_t n, int64_t k, Order order) const {
  LOCUS_CHECK(g.M >= 1 && g.K >= 1 && g.N >= 1, "tiling: bad GEMM shape M=", g.M, " K=", g.K, " N=", g.N);
  LOCUS_CHECK(m >= 1 && n >= 1 && k >= 1, "tiling: bad tile m=", m, " n=", n, " k=", k);
  Plan p;
  p.shape = g;
  p.S = S_;
  p.m_step = opts_.m_step;
  p.n_step = opts_.n_step;
  p.threads = opts_.threads;
  p.m = std::min(m, g.M);
  p.n = std::min(n, g.N);
  p.k = std::min(k, g.K);
  p.order = order;
  LOCUS_CHECK(p.m * p.k + p.k * p.n + p.m * p.n <= S_, "tiling: tile m=", p.m, " n=", p.n, " k=", p.k,
              " needs ", p.m * p.k + p.k * p.n + p.m * p.n, " entries, more than the buffer S=", S_);
  Eval e = evaluate(p);
  p.resident_strips = e.resident;
  p.traffic = e.traffic;
  return p;
}

Plan TilingPlanner::plan(const GemmShape& g) const {
  LOCUS_CHECK(g.M >= 1 && g.K >= 1 && g.N >= 1, "tiling: bad GEMM shape M=", g.M, " K=", g.K, " N=", g.N);
  LOCUS_CHECK(S_ >= 3, "tiling: a buffer of S=", S_,
              " entries cannot hold any tile (the smallest, 1x1 of A, B and C, needs 3 entries)");
  std::vector<int64_t> ms = candidates(g.M, opts_.m_step), ns = candidates(g.N, opts_.n_step);
  LOCUS_CHECK(!opts_.orders.empty(), "tiling: no visiting order allowed");
  const std::vector<Order>& orders = opts_.orders;
  std::vector<Alternative> alts;
  alts.reserve(ms.size() * ns.size() * 4);
  for (int64_t m : ms) {
    for (int64_t n : ns) {
      // k = K when the whole reduction strip fits with these m, n; otherwise the largest k < K.
      int64_t k = g.K;
      bool fits = m * g.K + g.K * n + m * n <= S_;
      if (!fits) {
        k = S_ > m * n ? std::min<int64_t>(g.K - 1, (S_ - m * n) / (m + n)) : 0;
        fits = k >= 1;
      }
      for (Order o : orders) {
        Alternative a;
        a.m = m;
        a.n = n;
        a.k = std::max<int64_t>(k, 1);
        a.order = o;
        if (!fits) {
          a.verdict = Verdict::ExceedsBuffer;
          a.buffer_entries = a.m * a.k + a.k * n + m * n;
        } else {
          Plan p = make_plan(g, m, n, k, o);
          Eval e = evaluate(p);
          if (m < std::min(g.M, opts_.min_m) || n < std::min(g.N, opts_.min_n) || a.k < std::min(g.K, opts_.min_k))
            a.verdict = Verdict::BelowMinimum;
          a.resident_strips = e.resident;
          a.buffer_entries = e.buffer;
          a.traffic = e.traffic;
          a.efficiency = e.efficiency;
          a.steps = ceil_div(g.M, m) * ceil_div(g.N, n) * ceil_div(g.K, a.k);
        }
        alts.push_back(a);
      }
    }
  }
  // m tiles that are whole register tiles (or all of M): each tile's rows start on a micro-kernel
  // row group, and so do the row slices threads cut at multiples of mr.
  auto aligned = [&](const Alternative& a) { return a.m % opts_.m_step == 0 || a.m == g.M; };
  auto better = [&](const Alternative& x, const Alternative& y) {
    if (x.traffic.total != y.traffic.total) return x.traffic.total < y.traffic.total;
    if (x.efficiency != y.efficiency) return x.efficiency > y.efficiency;
    if (aligned(x) != aligned(y)) return aligned(x);
    if (x.steps != y.steps) return x.steps < y.steps;
    if (x.k != y.k) return x.k > y.k;
    return order_rank(x.order) < order_rank(y.order);
  };
  // The cheapest candidate that meets the kernel's minimum tiles; if the buffer is too small for
  // any of those, the cheapest of all that fit.
  int64_t best = -1;
  for (bool allow_small : {false, true}) {
    for (size_t i = 0; i < alts.size(); ++i) {
      if (alts[i].verdict == Verdict::ExceedsBuffer) continue;
      if (alts[i].verdict == Verdict::BelowMinimum && !allow_small) continue;
      if (best < 0 || better(alts[i], alts[best])) best = int64_t(i);
    }
    if (best >= 0) break;
  }
  const bool small_chosen = best >= 0 && alts[best].verdict == Verdict::BelowMinimum;
  LOCUS_CHECK(best >= 0, "tiling: a buffer of S=", S_, " entries cannot hold any tile of M=", g.M, " K=", g.K,
              " N=", g.N);
  for (size_t i = 0; i < alts.size(); ++i) {
    Alternative& a = alts[i];
    if (a.verdict == Verdict::ExceedsBuffer) continue;
    if (a.verdict == Verdict::BelowMinimum && !small_chosen) continue;
    if (int64_t(i) == best)
      a.verdict = Verdict::Chosen;
    else
      a.verdict = a.traffic.total > alts[best].traffic.total ? Verdict::MoreTraffic : Verdict::LostTie;
  }
  const Alternative& c = alts[best];
  Plan p = make_plan(g, c.m, c.n, c.k, c.order);
  p.alternatives = std::move(alts);
  return p;
}

}  // namespace locus::schedule
