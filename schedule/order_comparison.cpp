// The single-layer comparison of visiting orders under fixed and free tiles (order_comparison.h).
#include "schedule/order_comparison.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "graph/error.h"

namespace locus::schedule {

namespace {

// The largest power of two t (at most the first power of two >= `cap`) with fits(t); 0 if none.
int64_t largest_pow2(int64_t cap, const std::function<bool(int64_t)>& fits) {
  int64_t best = 0;
  for (int64_t t = 1;; t *= 2) {
    if (!fits(t)) break;
    best = t;
    if (t >= cap) break;
  }
  return best;
}

OrderResult run(const TilingPlanner& tp, const GemmShape& g, const TileSize& t, Order o) {
  OrderResult r;
  r.plan = tp.make_plan(g, t.m, t.n, t.k, o);
  r.sim = BufferSimulator(tp.buffer()).run(r.plan);
  return r;
}

OrderResult simulated(const Plan& p) {
  OrderResult r;
  r.plan = p;
  r.plan.alternatives.clear();
  r.sim = BufferSimulator(p.S).run(r.plan);
  return r;
}

}  // namespace

const char* fixed_tiles_name(FixedTiles f) {
  switch (f) {
    case FixedTiles::OsSquare: return "os-square";
    case FixedTiles::FullK: return "full-k";
    case FixedTiles::Thesis: return "thesis";
  }
  return "?";
}

std::vector<FixedTiles> all_fixed_tiles() { return {FixedTiles::OsSquare, FixedTiles::FullK, FixedTiles::Thesis}; }

const char* compare_order_name(CompareOrder o) {
  switch (o) {
    case CompareOrder::Row: return "row";
    case CompareOrder::Col: return "col";
    case CompareOrder::Scan: return "scan";
  }
  return "?";
}

std::optional<TileSize> fixed_tile_size(const GemmShape& g, int64_t S, FixedTiles f) {
  LOCUS_CHECK(g.M >= 1 && g.K >= 1 && g.N >= 1, "order comparison: bad GEMM shape M=", g.M, " K=", g.K, " N=", g.N);
  TileSize r;
  switch (f) {
    case FixedTiles::OsSquare: {
      const int64_t t = largest_pow2(std::max({g.M, g.N, g.K}), [&](int64_t t) { return 3 * t * t <= S; });
      if (t == 0) return std::nullopt;
      r = {std::min(t, g.M), std::min(t, g.N), std::min(t, g.K)};
      break;
    }
    case FixedTiles::FullK: {
      const int64_t t = largest_pow2(std::max(g.M, g.N), [&](int64_t t) {
        const int64_t m = std::min(t, g.M), n = std::min(t, g.N);
        return m * g.K + g.K * n + m * n <= S;
      });
      if (t == 0) return std::nullopt;
      r = {std::min(t, g.M), std::min(t, g.N), g.K};
      break;
    }
    case FixedTiles::Thesis: {
      const int64_t n = std::min(g.N, largest_pow2(g.N, [&](int64_t t) { return g.K * t <= S / 8; }));
      if (n == 0) return std::nullopt;
      const int64_t m = std::min(g.M, largest_pow2(g.M, [&](int64_t t) { return t * (g.K + n) <= S / 2; }));
      if (m == 0) return std::nullopt;
      r = {m, n, g.K};
      break;
    }
  }
  if (r.m * r.k + r.k * r.n + r.m * r.n > S) return std::nullopt;
  return r;
}

double OrderComparison::scan_saving() const {
  const double base = double(best_conventional().plan.traffic.total);
  return base > 0 ? 1.0 - double(scan.plan.traffic.total) / base : std::nan("");
}

OrderComparison compare_fixed(const GemmShape& g, int64_t S, const TileSize& t, const std::string& label) {
  const TilingPlanner tp(S);
  OrderComparison c;
  c.shape = g;
  c.S = S;
  c.tiles = label;
  c.row = run(tp, g, t, Order::RowMajor);
  c.col = run(tp, g, t, Order::ColMajor);
  OrderResult sr = run(tp, g, t, Order::ScanRows), sc = run(tp, g, t, Order::ScanCols);
  c.scan = sc.plan.traffic.total < sr.plan.traffic.total ? std::move(sc) : std::move(sr);
  return c;
}

OrderComparison compare_free(const GemmShape& g, int64_t S, PlannerOptions opts) {
  OrderComparison c;
  c.shape = g;
  c.S = S;
  c.tiles = "free";
  auto best = [&](std::vector<Order> orders) {
    PlannerOptions o = opts;
    o.orders = std::move(orders);
    return simulated(TilingPlanner(S, o).plan(g));
  };
  c.row = best({Order::RowMajor});
  c.col = best({Order::ColMajor});
  c.scan = best({Order::ScanRows, Order::ScanCols});
  return c;
}

}  // namespace locus::schedule
