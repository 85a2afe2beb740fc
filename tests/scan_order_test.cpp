// The single-layer order comparison (schedule/order_comparison.h, issue 19): hand-counted traffic of
// row, column and Scan order under the same tiles, the buffer simulator agreeing, Scan never worse
// than a conventional order under the same tiles (a sweep of ragged shapes and buffers), the fixed
// tile choices, and `--tiles fixed|free` on the command line.
#include <gtest/gtest.h>

#include <algorithm>

#include "schedule/buffer_simulator.h"
#include "schedule/order_comparison.h"
#include "tests/cli_util.h"

namespace {

using namespace locus::schedule;

Plan plan_of(const GemmShape& g, int64_t S, int64_t m, int64_t n, int64_t k, Order o) {
  return TilingPlanner(S).make_plan(g, m, n, k, o);
}

void expect_sim(const Plan& p) {
  const SimResult s = BufferSimulator(p.S).run(p);
  EXPECT_EQ(s.violations, 0) << p.describe();
  EXPECT_EQ(s.total(), p.traffic.total) << p.describe();
  EXPECT_EQ(s.loads_a, p.traffic.reads_a) << p.describe();
  EXPECT_EQ(s.loads_b, p.traffic.reads_b) << p.describe();
}

}  // namespace

// M = 4, K = 2, N = 4 with 1 x 1 output tiles and the whole reduction (k = K = 2) on a buffer of
// S = 7 entries. Rows orientation: the stationary A strip (1 x 2) and the C tile (1) take 3 entries,
// a B strip (2 x 1) takes 2, so (7 - 3) / 2 = 2 B strips fit (the working one and one extra).
//  * RowMajor: A read once (4 x 2 = 8). Every row walks the 4 B strips left to right; a window of
//    2 strips over a cyclic walk of 4 never hits: 4 rows x 4 strips x 2 = 32. C written once: 16.
//    Total 56.
//  * ColMajor: the same by symmetry (B strip stationary, read once: 8; A strips 2 entries, a window
//    of 2 over 4 per column: 32; C 16): 56.
//  * ScanRows: row 0 loads the 4 strips (8); at each of the 3 turns the 2 strips at that end are
//    still on chip, so rows 1-3 load 2 strips each (4): B = 8 + 3 x 4 = 20; A 8, C 16: total 44.
//    ScanCols is the mirror image: 44. Scan saves 1 - 44 / 56 = 3/14 of the traffic.
TEST(ScanOrder, HandCountSquareGrid) {
  const GemmShape g{4, 2, 4, 4};
  const OrderComparison c = compare_fixed(g, 7, {1, 1, 2}, "hand");
  EXPECT_EQ(c.row.plan.traffic.total, 56);
  EXPECT_EQ(c.row.plan.traffic.reads_b, 32);
  EXPECT_EQ(c.col.plan.traffic.total, 56);
  EXPECT_EQ(c.col.plan.traffic.reads_a, 32);
  EXPECT_EQ(c.scan.plan.traffic.total, 44);
  EXPECT_EQ(plan_of(g, 7, 1, 1, 2, Order::ScanRows).traffic.reads_b, 20);
  EXPECT_EQ(plan_of(g, 7, 1, 1, 2, Order::ScanCols).traffic.reads_a, 20);
  EXPECT_NEAR(c.scan_saving(), 3.0 / 14.0, 1e-12);
  EXPECT_TRUE(c.sim_agrees());
  for (Order o : {Order::RowMajor, Order::ColMajor, Order::ScanRows, Order::ScanCols}) expect_sim(plan_of(g, 7, 1, 1, 2, o));
}

// A fragmented grid: M = 3, K = 2, N = 5 with m = 1, n = 2, k = K on S = 10 entries. The working set
// is 1x2 + 2x2 + 1x2 = 8 entries.
//  Rows orientation: A strip 2 + C tile 2 = 4 fixed, B strips of 2 x 2 = 4: (10 - 4) / 4 = 1 strip,
//  no extra one. N = 5 cuts into 3 strips of widths 2, 2, 1 (RowMajor: fragment last) or 1, 2, 2
//  (ScanRows: fragment first, at the start of the walk).
//  * RowMajor: A once (6); each of the 3 rows reloads all of B (2 x 5 = 10): 30; C 15. Total 51.
//  * ScanRows: row 0 loads all of B (10); turn 1 at the far end keeps the width-2 strip, row 1
//    loads widths 2 and 1 (6); turn 2 at the near end keeps the width-1 fragment, row 2 loads two
//    width-2 strips (8): B = 24, total 6 + 24 + 15 = 45.
//  Cols orientation: B strip 2 x 2 = 4 + C tile 2 = 6 fixed, A strips of 1 x 2 = 2 entries:
//  (10 - 6) / 2 = 2 strips (one extra) of the 3.
//  * ColMajor: B once (10); each of the 3 columns walks the 3 A strips top to bottom, a window of
//    2 over a cyclic walk of 3 never hits: 3 x 6 = 18; C 15. Total 43.
//  * ScanCols: column 0 loads the 3 A strips (6); at each of the 2 turns the 2 strips at that end
//    stay, so columns 1 and 2 load one strip each (2): A = 10, total 10 + 10 + 15 = 35.
//  Best conventional: ColMajor 43; Scan (ScanCols) 35 saves 8/43.
TEST(ScanOrder, HandCountFragmentedTiles) {
  const GemmShape g{3, 2, 5, 4};
  const OrderComparison c = compare_fixed(g, 10, {1, 2, 2}, "hand");
  EXPECT_EQ(c.row.plan.traffic.total, 51);
  EXPECT_EQ(c.col.plan.traffic.total, 43);
  EXPECT_EQ(c.scan.plan.traffic.total, 35);
  EXPECT_EQ(c.scan.plan.order, Order::ScanCols);
  EXPECT_EQ(&c.best_conventional(), &c.col);
  EXPECT_NEAR(c.scan_saving(), 8.0 / 43.0, 1e-12);
  const Plan sr = plan_of(g, 10, 1, 2, 2, Order::ScanRows);
  EXPECT_EQ(sr.traffic.total, 45);
  EXPECT_EQ(sr.n_bounds(), (std::vector<int64_t>{0, 1, 3, 5}));  // the fragment where the walk starts
  EXPECT_TRUE(c.sim_agrees());
  expect_sim(sr);
}

// When the tiles split the reduction (k < K) no order keeps anything between C tiles: M = K = N = 4
// with 2 x 2 x 2 tiles on S = 12 reads A once per column of tiles (16 x 2 = 32) and B once per row
// (16 x 2 = 32) and writes C once (16): 80 in every order.
TEST(ScanOrder, HandCountSplitReductionIsOrderFree) {
  const OrderComparison c = compare_fixed({4, 4, 4, 4}, 12, {2, 2, 2}, "hand");
  EXPECT_EQ(c.row.plan.traffic.total, 80);
  EXPECT_EQ(c.col.plan.traffic.total, 80);
  EXPECT_EQ(c.scan.plan.traffic.total, 80);
  EXPECT_EQ(c.scan_saving(), 0.0);
  EXPECT_TRUE(c.sim_agrees());
}

// The fixed tile choices of a 14x14, 64 -> 128 layer on 8K entries, worked out from their rules:
//  os-square: 3t^2 <= 8192 -> t = 32 (3072; 64 would need 12288): 32 x 32 x 32.
//  full-k:    32.64 + 64.32 + 32.32 = 5120 <= 8192, t = 64 needs 12288: m = n = 32, k = 64.
//  thesis:    n: 64n <= 8192/8 = 1024 -> n = 16; m: m(64 + 16) <= 4096 -> m <= 51 -> 32; k = 64.
TEST(ScanOrder, FixedTileChoices) {
  const GemmShape g{196, 64, 128, 2};
  auto os = fixed_tile_size(g, 8192, FixedTiles::OsSquare);
  auto fk = fixed_tile_size(g, 8192, FixedTiles::FullK);
  auto th = fixed_tile_size(g, 8192, FixedTiles::Thesis);
  ASSERT_TRUE(os && fk && th);
  EXPECT_EQ(std::make_tuple(os->m, os->n, os->k), std::make_tuple(32, 32, 32));
  EXPECT_EQ(std::make_tuple(fk->m, fk->n, fk->k), std::make_tuple(32, 32, 64));
  EXPECT_EQ(std::make_tuple(th->m, th->n, th->k), std::make_tuple(32, 16, 64));
  // clamped to the GEMM: a 7 x 7, 8 -> 8 layer on 64K holds everything in one tile
  auto small = fixed_tile_size({49, 8, 8, 2}, 65536, FixedTiles::FullK);
  ASSERT_TRUE(small);
  EXPECT_EQ(std::make_tuple(small->m, small->n, small->k), std::make_tuple(49, 8, 8));
  // full-K strips need 2K + 1 entries: K = 2048 on 4K entries has none, nor does the thesis's
  EXPECT_FALSE(fixed_tile_size({49, 2048, 512, 2}, 4096, FixedTiles::FullK));
  EXPECT_FALSE(fixed_tile_size({49, 2048, 512, 2}, 4096, FixedTiles::Thesis));
  EXPECT_TRUE(fixed_tile_size({49, 2048, 512, 2}, 4096, FixedTiles::OsSquare));
}

// Under the same tiles Scan (the cheaper serpentine) never moves more than row- or column-major, and
// the simulator agrees with every order's modelled traffic: ragged shapes, every tile that fits.
TEST(ScanOrder, ScanNeverWorseUnderSameTiles) {
  int compared = 0, scan_wins = 0;
  for (int64_t M : {1, 3, 7, 10, 17, 33})
    for (int64_t N : {1, 2, 5, 9, 16, 31})
      for (int64_t K : {1, 2, 5, 9})
        for (int64_t S : {12, 30, 64, 100, 257})
          for (int64_t m : {1, 2, 3, 5, 8})
            for (int64_t n : {1, 2, 3, 7}) {
              const int64_t mm = std::min(m, M), nn = std::min(n, N);
              int64_t k = K;
              if (mm * K + K * nn + mm * nn > S) k = (S - mm * nn) / (mm + nn);
              if (k < 1) continue;
              const OrderComparison c = compare_fixed({M, K, N, 4}, S, {mm, nn, k}, "sweep");
              const std::string what = c.scan.plan.describe();
              ASSERT_TRUE(c.sim_agrees()) << what;
              ASSERT_LE(c.scan.plan.traffic.total, c.row.plan.traffic.total) << what;
              ASSERT_LE(c.scan.plan.traffic.total, c.col.plan.traffic.total) << what;
              ++compared;
              scan_wins += c.scan.plan.traffic.total < c.best_conventional().plan.traffic.total;
            }
  EXPECT_GT(compared, 10000);
  EXPECT_GT(scan_wins, 100);  // the sweep does reach cases where Scan pays
}

// The fixed choices and free tiles on realistic layers and buffers: Scan never worse, simulator agrees.
TEST(ScanOrder, ScanNeverWorseFixedAndFree) {
  const std::vector<GemmShape> layers = {{12544, 16, 96, 2}, {3136, 24, 144, 2}, {784, 192, 32, 2}, {196, 384, 64, 2},
                                         {49, 960, 320, 2},  {3136, 64, 256, 2}, {196, 1024, 256, 2}, {49, 512, 2048, 2},
                                         {197, 33, 71, 2}};
  for (const GemmShape& g : layers)
    for (int64_t S : {8192, 16384, 65536, 262144}) {
      for (FixedTiles f : all_fixed_tiles()) {
        auto t = fixed_tile_size(g, S, f);
        if (!t) continue;
        const OrderComparison c = compare_fixed(g, S, *t, fixed_tiles_name(f));
        EXPECT_TRUE(c.sim_agrees()) << c.scan.plan.describe();
        EXPECT_GE(c.scan_saving(), 0.0) << c.scan.plan.describe();
      }
      const OrderComparison fr = compare_free(g, S);
      EXPECT_TRUE(fr.sim_agrees()) << fr.scan.plan.describe();
      EXPECT_GE(fr.scan_saving(), 0.0) << fr.scan.plan.describe();
      // with free tiles every order is at least as good as with any fixed tiles of the same order
      for (FixedTiles f : all_fixed_tiles())
        if (auto t = fixed_tile_size(g, S, f)) {
          const OrderComparison c = compare_fixed(g, S, *t, fixed_tiles_name(f));
          EXPECT_LE(fr.row.plan.traffic.total, c.row.plan.traffic.total) << fixed_tiles_name(f);
          EXPECT_LE(fr.scan.plan.traffic.total, c.scan.plan.traffic.total) << fixed_tiles_name(f);
        }
    }
}

TEST(ScanOrder, EnergySweepTilesFixed) {
  const auto r = locus::test::run_locus("energy builtin:mobilenetv2 --sweep 16K:32K --tiles fixed");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* s : {"S = 16K entries, tiles os-square", "S = 32K entries, tiles full-k", "tiles thesis",
                        "tiles free (each order its own best tiles)", "Scan saves", "DRAM energy"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  EXPECT_EQ(r.out.find("DIFFERS"), std::string::npos);
  // csv: one header, a total row per (size, tiles)
  const auto c = locus::test::run_locus("energy builtin:mobilenetv2 --sweep 16K:16K --tiles fixed --format csv");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_EQ(c.out.rfind("buffer_entries,tiles,layer,", 0), 0u);
  for (const char* t : {"16384,os-square,total,", "16384,full-k,total,", "16384,thesis,total,", "16384,free,total,"})
    EXPECT_NE(c.out.find(t), std::string::npos) << t;
}

TEST(ScanOrder, InfoPlansTilesFixed) {
  const auto r = locus::test::run_locus("info builtin:mobilenetv2 --plans --l2 256K --tiles fixed");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("order comparison (--tiles fixed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tiles thesis"), std::string::npos);
  EXPECT_NE(r.out.find("tiles free"), std::string::npos);
  // free (the default) leaves the report as it was
  const auto f = locus::test::run_locus("info builtin:mobilenetv2 --plans --l2 256K --tiles free");
  const auto d = locus::test::run_locus("info builtin:mobilenetv2 --plans --l2 256K");
  ASSERT_EQ(f.status, 0) << f.err;
  EXPECT_EQ(f.out, d.out);
  EXPECT_EQ(f.out.find("order comparison"), std::string::npos);
}

TEST(ScanOrder, TilesBadValues) {
  locus::test::expect_one_line_error("energy builtin:mobilenetv2 --sweep 16K:32K --tiles fixd", "--tiles");
  locus::test::expect_one_line_error("info builtin:mobilenetv2 --plans --tiles square", "--tiles");
  locus::test::expect_one_line_error("energy builtin:mobilenetv2 --tiles fixed", "needs --sweep");
  locus::test::expect_one_line_error("info builtin:mobilenetv2 --tiles fixed", "needs --plans");
  locus::test::expect_one_line_error("energy builtin:mobilenetv2 --sweep 16K:32K --tiles fixed --format json", "json");
}
