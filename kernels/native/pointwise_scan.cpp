#include "kernels/native/pointwise_scan.h"

#include <omp.h>

#include <algorithm>

#include "graph/error.h"
#include "kernels/native/cpu_features.h"

namespace locus::kernels {
namespace {

constexpr double kMinParallelFlops = 2e5;  // as gemm_f32: below this, threads cost more than they save

}  // namespace

schedule::PlannerOptions pointwise_planner_options(schedule::RegisterTile tile, int threads) {
  schedule::PlannerOptions o;
  o.m_step = tile.mr;
  o.n_step = tile.nr;
  o.min_m = kPointwiseMinMTiles * tile.mr;
  o.min_n = tile.nr;
  o.min_k = kPointwiseMinK;
  o.threads = std::max(threads, 1);
  return o;
}

schedule::RegisterTile pointwise_register_tile() {
  const GemmConfig& g = gemm_config(active_isa());
  return {g.mr, g.nr * g.tile_panels};  // 12 x 32 on AVX-512: tiles of whole panel pairs
}

schedule::Plan plan_pointwise(int64_t M, int64_t K, int64_t N, int64_t S, schedule::TileOrder order,
                              int threads) {
  schedule::PlannerOptions o = pointwise_planner_options(pointwise_register_tile(), threads);
  o.orders = schedule::orders_in(order);
  schedule::Plan best = schedule::TilingPlanner(S, o).plan({M, K, N, 4});
  best.alternatives.clear();
  best.alternatives.shrink_to_fit();
  return best;
}

PointwiseScan pack_pointwise_scan(int64_t M, int64_t K, int64_t N, const float* b, int64_t ldb,
                                  int64_t S, schedule::TileOrder order, int threads) {
  PointwiseScan p;
  p.plan = plan_pointwise(M, K, N, S, order, threads);
  p.n_bounds = p.plan.n_bounds();
  for (size_t s = 0; s + 1 < p.n_bounds.size(); ++s) {
    const int64_t j0 = p.n_bounds[s], j1 = p.n_bounds[s + 1];
    p.strips.push_back(pack_b(K, j1 - j0, b + j0, ldb, false));
  }
  double work = 0;
  for (const schedule::TileVisit& t : p.plan.sequence()) {
    const int32_t strip =
        int32_t(std::upper_bound(p.n_bounds.begin(), p.n_bounds.end(), t.j0) - p.n_bounds.begin() - 1);
    LOCUS_CHECK(p.n_bounds[strip] == t.j0 && p.n_bounds[strip + 1] == t.j1,
                "pointwise: visit columns do not match the plan's N strips");
    const bool same_tile = !p.calls.empty() && t.i0 == p.calls.back().i0 && t.i1 == p.calls.back().i1 &&
                           t.j0 == p.calls.back().j0 && t.j1 == p.calls.back().j1;
    if (!same_tile) {
      p.group_start.push_back(int64_t(p.calls.size()));
      p.group_cum_work.push_back(work);
    }
    work += double(t.i1 - t.i0) * double(t.j1 - t.j0) * double(t.k1 - t.k0);
    if (same_tile && t.k0 == p.calls.back().k1) {  // the next k range of the same C tile: one call
      p.calls.back().k1 = t.k1;
      continue;
    }
    p.calls.push_back(t);
    p.strip.push_back(strip);
  }
  p.group_start.push_back(int64_t(p.calls.size()));
  p.group_cum_work.push_back(work);
  p.prefetch_a = gemm_prefetch_a(M, K);
  p.a_rows_floats = p.plan.m * p.plan.k + 8;
  p.a_rows_panels =
      schedule::rows_oriented(p.plan.order) && p.plan.k == K ? (N + kGemmNR - 1) / kGemmNR : 0;
  return p;
}

int64_t pointwise_scan_scratch_floats(const PointwiseScan& p) {
  return int64_t(std::max(p.plan.threads, 1)) * p.a_rows_floats;
}

void pointwise_scan_f32(const PointwiseScan& p, const float* a, int64_t lda, float* c, int64_t ldc,
                        const float* bias, const Activation& act, const float* residual, bool accumulate,
                        float* scratch) {
  const int64_t groups = int64_t(p.group_start.size()) - 1;
  if (groups <= 0) return;
  const double total = p.group_cum_work.back();
  const bool prefetch_a = p.prefetch_a;
  // Thread t's packed row strip (PackedARows, sized and decided at pack time), empty every run;
  // without scratch it has no buffer, and every visit packs its own rows.
  auto rows_of = [&](int t) {
    PackedARows r;
    if (scratch) r.buf = scratch + t * p.a_rows_floats, r.capacity = p.a_rows_floats, r.panels = p.a_rows_panels;
    return r;
  };

  // Visits of groups [g0, g1), in sequence order. A C tile's first visit (k0 == 0) overwrites it
  // (adds to it with accumulate).
  auto run = [&](int64_t g0, int64_t g1, PackedARows* rows) {
    for (int64_t v = p.group_start[g0]; v < p.group_start[g1]; ++v) {
      const schedule::TileVisit& t = p.calls[v];
      const int64_t j0 = t.j0;
      gemm_f32_tile(a, lda, p.strips[p.strip[v]], t.i0, t.i1, 0, t.j1 - j0, t.k0, t.k1, c + j0, ldc,
                    bias ? bias + j0 : nullptr, act, accumulate || t.k0 > 0, prefetch_a, residual ? residual + j0 : nullptr,
                    ldc, rows);
    }
  };

  const int threads = omp_in_parallel() ? 1 : p.plan.threads;
  const int64_t mr = p.plan.m_step;
  if (threads <= 1 || 2.0 * total < kMinParallelFlops) {
    PackedARows rows = rows_of(0);
    run(0, groups, &rows);
    return;
  }
  if (groups < 8 * int64_t(threads)) {
    // Few C tiles (under 8 per thread, e.g. the 7x7 layers, where whole-tile stretches would leave
    // threads idle or unbalanced): every thread walks the whole sequence on its own slice of each
    // tile, slices never overlapping: a slice of the tile's columns (cut at multiples of two
    // panels) when the tile has fewer rows than columns, so each thread reads only its part of the
    // weights (ResNet-50's 7x7 layers: 49 rows, up to 2048 columns), else of its rows (cut at
    // multiples of the register tile).
    constexpr int64_t kColUnit = 32;
#pragma omp parallel num_threads(threads)
    {
      const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
      PackedARows arows = rows_of(int(t));
      for (size_t v = 0; v < p.calls.size(); ++v) {
        const schedule::TileVisit& tv = p.calls[v];
        const int64_t rows = tv.i1 - tv.i0, cols = tv.j1 - tv.j0;
        int64_t r0 = tv.i0, r1 = tv.i1, c0 = 0, c1 = cols;
        if (rows < cols) {
          auto cut = [&](int64_t u) { return u >= T ? cols : std::min(cols, (cols * u / T + kColUnit - 1) / kColUnit * kColUnit); };
          c0 = cut(t), c1 = cut(t + 1);
        } else {
          auto cut = [&](int64_t u) {
            return u >= T ? tv.i1 : tv.i0 + std::min(rows, (rows * u / T + mr - 1) / mr * mr);
          };
          r0 = cut(t), r1 = cut(t + 1);
        }
        if (r0 < r1 && c0 < c1)
          gemm_f32_tile(a, lda, p.strips[p.strip[v]], r0, r1, c0, c1, tv.k0, tv.k1, c + tv.j0, ldc,
                        bias ? bias + tv.j0 : nullptr, act, accumulate || tv.k0 > 0, prefetch_a,
                        residual ? residual + tv.j0 : nullptr, ldc, &arows);
      }
    }
    return;
  }
  const int nt = threads;
  // Thread t takes the groups whose start falls in [t, t + 1) * total / T of the work: contiguous
  // stretches of the walk, whole C tiles each.
#pragma omp parallel num_threads(nt)
  {
    const int T = omp_get_num_threads(), t = omp_get_thread_num();
    auto start = [&](int u) -> int64_t {
      if (u >= T) return groups;
      const double w = total * double(u) / double(T);
      return std::lower_bound(p.group_cum_work.begin(), p.group_cum_work.end() - 1, w) -
             p.group_cum_work.begin();
    };
    const int64_t g0 = start(t), g1 = start(t + 1);
    PackedARows rows = rows_of(t);
    if (g0 < g1) run(g0, g1, &rows);
  }
}

}  // namespace locus::kernels
