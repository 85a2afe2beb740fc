// Tiling planner (schedule): the closed-form traffic model against the buffer simulator,
// Scan versus plain orders, buffer constraints, one hand-computed case and the too-small buffer error.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <tuple>

#include "graph/error.h"
#include "schedule/buffer_simulator.h"
#include "schedule/tiling_planner.h"

namespace locus::schedule {
namespace {

void expect_model_matches_sim(const Plan& p) {
  SimResult s = BufferSimulator(p.S).run(p);
  SCOPED_TRACE(p.describe());
  EXPECT_EQ(s.loads_a, p.traffic.reads_a);
  EXPECT_EQ(s.loads_b, p.traffic.reads_b);
  EXPECT_EQ(s.stores_c, p.traffic.writes_c);
  EXPECT_EQ(s.reloads_c, 0);
  EXPECT_EQ(s.total(), p.traffic.total);
  EXPECT_EQ(s.violations, 0);
  EXPECT_LE(s.peak_entries, p.S);
  EXPECT_LE(s.peak_entries, p.buffer_entries());
}

void expect_plan_respects_buffer(const Plan& p) {
  SCOPED_TRACE(p.describe());
  EXPECT_LE(p.m * p.k + p.k * p.n + p.m * p.n, p.S);
  EXPECT_LE(p.buffer_entries(), p.S);
  EXPECT_GE(p.resident_strips, 0);
  EXPECT_EQ(p.traffic.writes_c, p.shape.M * p.shape.N);
  EXPECT_GE(p.traffic.reads_a, p.shape.M * p.shape.K);
  EXPECT_GE(p.traffic.reads_b, p.shape.K * p.shape.N);
}

// Scan never costs more than the plain order of the same orientation and tiles.
void expect_scan_not_worse(const Plan& p) {
  std::map<std::tuple<int64_t, int64_t, int64_t, Order>, int64_t> t;
  for (const Alternative& a : p.alternatives)
    if (a.verdict != Verdict::ExceedsBuffer) t[{a.m, a.n, a.k, a.order}] = a.traffic.total;
  for (const auto& [key, total] : t) {
    auto [m, n, k, o] = key;
    if (o == Order::RowMajor) {
      ASSERT_TRUE(t.count({m, n, k, Order::ScanRows}));
      EXPECT_LE((t[{m, n, k, Order::ScanRows}]), total) << m << " " << n << " " << k;
    }
    if (o == Order::ColMajor) {
      ASSERT_TRUE(t.count({m, n, k, Order::ScanCols}));
      EXPECT_LE((t[{m, n, k, Order::ScanCols}]), total) << m << " " << n << " " << k;
    }
  }
}

void expect_alternatives_consistent(const Plan& p) {
  int chosen = 0;
  for (const Alternative& a : p.alternatives) {
    if (a.verdict == Verdict::Chosen) {
      ++chosen;
      EXPECT_EQ(a.m, p.m);
      EXPECT_EQ(a.n, p.n);
      EXPECT_EQ(a.order, p.order);
      EXPECT_EQ(a.traffic.total, p.traffic.total);
    } else if (a.verdict == Verdict::MoreTraffic) {
      EXPECT_GT(a.traffic.total, p.traffic.total);
    } else if (a.verdict == Verdict::LostTie) {
      EXPECT_EQ(a.traffic.total, p.traffic.total);
    } else {
      EXPECT_GT(a.m * a.k + a.k * a.n + a.m * a.n, p.S);
    }
  }
  EXPECT_EQ(chosen, 1);
}

const GemmShape kMobileNet[] = {{112 * 112, 32, 16, 4}, {56 * 56, 24, 144, 4}, {7 * 7, 960, 320, 4}};

TEST(TilingPlanner, HandComputedTinyCase) {
  // M = 4, K = 2, N = 4, tiles m = n = 2, k = K = 2: A strips 2x2 = 4 entries, B strips 2x2 = 4,
  // C tile 2x2 = 4; grid of 2 x 2 C tiles. writes(C) = M.N = 16 and reads(A) = M.K = 8 always
  // (A strip of row i stays while the row is walked).
  // S = 12 = 4 + 4 + 4: one B strip fits (resident_strips = 0).
  //   RowMajor: (0,0) (0,1) (1,0) (1,1): B0 B1 B0 B1 all loaded: reads(B) = 4 * 4 = 16, total 40.
  //   ScanRows: (0,0) (0,1) (1,1) (1,0): B0 B1 [B1 reused at the turn] B0: reads(B) = 12, total 36.
  // S = 16: room for one more B strip (resident_strips = 1): all of B stays: reads(B) = 8 for
  //   both orders, total 32.
  GemmShape g{4, 2, 4, 4};
  TilingPlanner t12(12), t16(16);
  Plan rm = t12.make_plan(g, 2, 2, 2, Order::RowMajor);
  EXPECT_EQ(rm.resident_strips, 0);
  EXPECT_EQ(rm.traffic.reads_a, 8);
  EXPECT_EQ(rm.traffic.reads_b, 16);
  EXPECT_EQ(rm.traffic.writes_c, 16);
  EXPECT_EQ(rm.traffic.total, 40);
  Plan sc = t12.make_plan(g, 2, 2, 2, Order::ScanRows);
  EXPECT_EQ(sc.traffic.reads_b, 12);
  EXPECT_EQ(sc.traffic.total, 36);
  auto seq = sc.sequence();
  ASSERT_EQ(seq.size(), 4u);
  EXPECT_EQ(seq[2].i0, 2);
  EXPECT_EQ(seq[2].j0, 2);  // the turn: row 1 starts at the last column
  EXPECT_EQ(seq[3].j0, 0);
  Plan rm16 = t16.make_plan(g, 2, 2, 2, Order::RowMajor);
  EXPECT_EQ(rm16.resident_strips, 1);
  EXPECT_EQ(rm16.traffic.reads_b, 8);
  EXPECT_EQ(rm16.traffic.total, 32);
  for (const Plan& p : {rm, sc, rm16, t16.make_plan(g, 2, 2, 2, Order::ScanCols)}) expect_model_matches_sim(p);
  // The planner on S = 12 reaches the minimum M.K + K.N + M.N = 8 + 8 + 16 = 32 with smaller tiles,
  // e.g. m = 1, n = 2, k = 2 (A strip 2 + B strip 4 + C 2 = 8 entries, leaving 4 for a second B
  // strip, so both B strips stay resident).
  Plan best = t12.plan(g);
  expect_model_matches_sim(best);
  EXPECT_EQ(best.traffic.total, 32);
}

TEST(TilingPlanner, FragmentedTileAtTheTurn) {
  // N = 5 with n = 2: strips of 1, 2, 2 columns; ScanRows puts the partial strip at column 0.
  GemmShape g{6, 3, 5, 4};
  Plan p = TilingPlanner(1000).make_plan(g, 2, 2, 3, Order::ScanRows);
  std::vector<int64_t> nb = p.n_bounds();
  ASSERT_EQ(nb.size(), 4u);
  EXPECT_EQ(nb[1], 1);
  // resident = 0 when S is just the working set: 2*3 + 3*2 + 2*2 = 16.
  Plan q = TilingPlanner(16).make_plan(g, 2, 2, 3, Order::ScanRows);
  EXPECT_EQ(q.resident_strips, 0);
  // rows 0..2: 15 + (15 - 6) [full strip reused at the far turn] + (15 - 3) [partial at the near turn]
  EXPECT_EQ(q.traffic.reads_b, 15 + 9 + 12);
  expect_model_matches_sim(q);
}

TEST(TilingPlanner, MobileNetV2ShapesModelEqualsSimulation) {
  for (int64_t S : {4096, 16384, 65536, 262144}) {
    for (PlannerOptions o : {PlannerOptions{1, 1}, PlannerOptions{6, 16}}) {
      TilingPlanner t(S, o);
      for (const GemmShape& g : kMobileNet) {
        Plan p = t.plan(g);
        expect_model_matches_sim(p);
        expect_plan_respects_buffer(p);
        expect_scan_not_worse(p);
        expect_alternatives_consistent(p);
        // a sample of the other candidates too
        int idx = 0;
        for (const Alternative& a : p.alternatives) {
          if (a.verdict == Verdict::ExceedsBuffer || (idx++ % 97) != 0) continue;
          Plan q = t.make_plan(g, a.m, a.n, a.k, a.order);
          EXPECT_EQ(q.traffic.total, a.traffic.total);
          EXPECT_EQ(q.resident_strips, a.resident_strips);
          expect_model_matches_sim(q);
        }
      }
    }
  }
}

TEST(TilingPlanner, RandomShapesEveryCandidate) {
  std::mt19937 rng(20190601);
  std::uniform_int_distribution<int64_t> dim(1, 40);
  const int64_t sizes[] = {3, 16, 64, 200, 1000, 65536};
  for (int it = 0; it < 60; ++it) {
    GemmShape g{dim(rng), dim(rng), dim(rng), 4};
    int64_t S = sizes[it % 6];
    PlannerOptions o = it % 2 ? PlannerOptions{6, 16} : PlannerOptions{1, 1};
    TilingPlanner t(S, o);
    Plan p = t.plan(g);
    SCOPED_TRACE(p.describe());
    expect_model_matches_sim(p);
    expect_plan_respects_buffer(p);
    expect_scan_not_worse(p);
    expect_alternatives_consistent(p);
    for (const Alternative& a : p.alternatives) {
      if (a.verdict == Verdict::ExceedsBuffer) continue;
      Plan q = t.make_plan(g, a.m, a.n, a.k, a.order);
      expect_model_matches_sim(q);
      expect_plan_respects_buffer(q);
    }
  }
}

TEST(TilingPlanner, SmallBufferUsesPartialReduction) {
  // K = 960 cannot be whole with S = 1000 (2*960 + 1 > 1000): k < K, C accumulated on chip.
  GemmShape g{49, 960, 320, 4};
  Plan p = TilingPlanner(1000).plan(g);
  EXPECT_LT(p.k, g.K);
  EXPECT_EQ(p.resident_strips, 0);
  expect_model_matches_sim(p);
  expect_plan_respects_buffer(p);
}

TEST(TilingPlanner, KernelMinimumTiles) {
  // M=392 K=960 N=160 at S=64K: the traffic-optimal plan keeps the whole C tile on chip and walks
  // the reduction in slices of k=5 (compulsory traffic). With a CPU kernel's minimum k=64 that plan
  // is rejected as BelowMinimum and the chosen one has k >= 64, n >= 16, m >= 24 (more traffic).
  const GemmShape g{392, 960, 160, 4};
  const Plan free_plan = TilingPlanner(65536, {6, 16}).plan(g);
  EXPECT_LT(free_plan.k, 64) << free_plan.describe();
  PlannerOptions o{6, 16};
  o.min_m = 24, o.min_n = 16, o.min_k = 64;
  const Plan p = TilingPlanner(65536, o).plan(g);
  SCOPED_TRACE(p.describe());
  EXPECT_GE(p.k, 64);
  EXPECT_GE(p.n, 16);
  EXPECT_GE(p.m, 24);
  EXPECT_GE(p.traffic.total, free_plan.traffic.total);
  expect_plan_respects_buffer(p);
  expect_model_matches_sim(p);
  bool saw_below = false;
  for (const Alternative& a : p.alternatives) {
    if (a.verdict == Verdict::BelowMinimum) {
      saw_below = true;
      EXPECT_TRUE(a.m < 24 || a.n < 16 || a.k < 64);
      EXPECT_GT(a.traffic.total, 0);  // listed with its traffic
    }
    if (a.verdict == Verdict::Chosen) {
      EXPECT_EQ(a.k, p.k);
    }
  }
  EXPECT_TRUE(saw_below);
  // Minimums larger than the GEMM clamp to its extent: a 10 x 20 x 12 GEMM still plans whole.
  const Plan whole = TilingPlanner(65536, o).plan({10, 20, 12, 4});
  EXPECT_EQ(whole.m, 10);
  EXPECT_EQ(whole.n, 12);
  EXPECT_EQ(whole.k, 20);
}

TEST(TilingPlanner, KernelMinimumFallsBackWhenBufferTooSmall) {
  // S=200 cannot hold m=24, n=16, k=37 tiles: the planner falls back to the cheapest tiles that fit.
  PlannerOptions o{6, 16};
  o.min_m = 24, o.min_n = 16, o.min_k = 64;
  const Plan p = TilingPlanner(200, o).plan({97, 37, 53, 4});
  expect_plan_respects_buffer(p);
  expect_model_matches_sim(p);
  EXPECT_LT(p.m * p.n, 24 * 16);
}

TEST(TilingPlanner, RegisterTileSetsTheMTile) {
  // The CPU planner's inputs: the micro-kernel's register tile {mr, nr} (kernels/native/
  // gemm_microkernel.h: 4x16 generic, 6x16 AVX2, 12x16 AVX-512) and the thread count. The chosen m
  // tile is a multiple of mr (or all of M), the minimum m is 4 register tiles, and the plan
  // records the tile and the threads. MobileNetV2's tiled 1x1 convs (batch 1 and 8) at the 1 MiB L2's S.
  const GemmShape shapes[] = {{112 * 112, 32, 16, 4},  {112 * 112, 16, 96, 4},  {56 * 56, 96, 24, 4},
                              {56 * 56, 24, 144, 4},   {56 * 56, 144, 24, 4},   {28 * 28, 144, 32, 4},
                              {28 * 28, 192, 32, 4},   {14 * 14, 384, 64, 4},   {14 * 14, 576, 96, 4},
                              {8 * 112 * 112, 32, 16, 4}, {8 * 56 * 56, 144, 24, 4}, {7 * 7, 960, 320, 4}};
  int differs = 0;
  for (const GemmShape& g : shapes) {
    int64_t m_at_6 = 0;
    for (const RegisterTile t : {RegisterTile{4, 16}, RegisterTile{6, 16}, RegisterTile{12, 16}}) {
      PlannerOptions o{t.mr, t.nr};
      o.min_m = 4 * t.mr, o.min_n = t.nr, o.min_k = 64, o.threads = 2;
      const Plan p = TilingPlanner(131072, o).plan(g);
      SCOPED_TRACE("mr=" + std::to_string(t.mr) + " " + p.describe());
      EXPECT_TRUE(p.m % t.mr == 0 || p.m == g.M);
      EXPECT_TRUE(p.n % t.nr == 0 || p.n == g.N);
      EXPECT_GE(p.m, std::min(g.M, 4 * t.mr));
      EXPECT_EQ(p.m_step, t.mr);
      EXPECT_EQ(p.n_step, t.nr);
      EXPECT_EQ(p.threads, 2);
      expect_plan_respects_buffer(p);
      if (t.mr == 6) m_at_6 = p.m;
      if (t.mr == 12 && p.m != m_at_6) ++differs;
    }
  }
  EXPECT_GT(differs, 0) << "the register tile never changed a plan";
}

TEST(TilingPlanner, BufferTooSmallNamesS) {
  try {
    TilingPlanner(2).plan({4, 2, 4, 4});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("S=2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TilingPlanner(11).make_plan({4, 2, 4, 4}, 2, 2, 2, Order::ScanRows), Error);
}

TEST(TilingPlanner, ReportMobileNetAt64K) {
  // Not an assertion: prints the chosen plan and the best row-major alternative for the report.
  // (The loop also shows 4K and 16K entries, where the strips no longer all fit and Scan differs.)
  for (int64_t S : {65536, 16384, 4096})
  for (const GemmShape& g : kMobileNet) {
    Plan p = TilingPlanner(S, {6, 16}).plan(g);
    const Alternative* rm = nullptr;  // cheapest row-major; ties: efficiency, then bigger tiles
    for (const Alternative& a : p.alternatives) {
      if (a.order != Order::RowMajor || a.verdict == Verdict::ExceedsBuffer) continue;
      if (!rm || a.traffic.total < rm->traffic.total ||
          (a.traffic.total == rm->traffic.total &&
           (a.efficiency > rm->efficiency || (a.efficiency == rm->efficiency && a.steps < rm->steps))))
        rm = &a;
    }
    ASSERT_NE(rm, nullptr);
    std::printf("chosen: %s\n  best RowMajor: m=%lld n=%lld k=%lld resident=%lld A=%lld B=%lld C=%lld total=%lld\n",
                p.describe().c_str(), (long long)rm->m, (long long)rm->n, (long long)rm->k,
                (long long)rm->resident_strips, (long long)rm->traffic.reads_a, (long long)rm->traffic.reads_b,
                (long long)rm->traffic.writes_c, (long long)rm->traffic.total);
    EXPECT_LE(p.traffic.total, rm->traffic.total);
  }
}

}  // namespace
}  // namespace locus::schedule
