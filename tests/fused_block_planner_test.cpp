// The fused-block planner (schedule/fused_block_planner.h): band x chunk plans, their traffic and
// buffer, halos, and the thread split (plan_fused_block_threads: the plan, not the kernel, says how
// threads share a block's work). Links the schedule library only; the kernel that executes the plans
// is tested in inverted_residual_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "graph/error.h"
#include "schedule/fused_block_planner.h"

namespace locus::schedule {
namespace {

FusedBlockShape block(int64_t H, int64_t C, int64_t E, int64_t OC, int64_t stride) {
  FusedBlockShape s;
  s.H = s.W = H, s.C = C, s.E = E, s.OC = OC, s.SH = s.SW = stride;
  return s;
}

// MobileNetV2's three-layer blocks (one of each shape).
const FusedBlockShape kBlocks[] = {block(112, 16, 96, 24, 2), block(56, 24, 144, 24, 1), block(56, 24, 144, 32, 2),
                                   block(28, 32, 192, 32, 1), block(28, 32, 192, 64, 2), block(14, 64, 384, 64, 1),
                                   block(14, 64, 384, 96, 1), block(14, 96, 576, 96, 1), block(14, 96, 576, 160, 2),
                                   block(7, 160, 960, 160, 1), block(7, 160, 960, 320, 1)};

// Output rows thread t of T walks under the plan's band split.
int64_t rows_of_thread(const FusedBlockPlan& p, int t, int T) {
  int64_t rows = 0;
  for (int64_t g = p.stretch_begin(t, T); g < p.stretch_begin(t + 1, T); ++g) {
    const int64_t b = g % p.bands;
    rows += std::min(p.shape.OH(), (b + 1) * p.rows) - b * p.rows;
  }
  return rows;
}

TEST(FusedBlockThreads, TwoThreadsBalanceRowsWithinFivePercent) {
  // The 1 MiB L2's S, batch 1 and 2: either the threads split the chunks (equal numbers each) or
  // contiguous stretches of bands give no thread more than 5% above the mean output rows.
  const int64_t S = 131072;
  int split = 0, banded = 0;
  for (int64_t images : {1, 2}) {
    for (const FusedBlockShape& s : kBlocks) {
      const FusedBlockPlan p = plan_fused_block_threads(s, images, S, 2);
      SCOPED_TRACE("images=" + std::to_string(images) + " " + p.describe());
      EXPECT_EQ(p.threads, 2);
      EXPECT_EQ(p.images, images);
      EXPECT_LE(p.buffer_entries, S);
      if (p.split_chunks > 0) {
        ++split;
        EXPECT_EQ(p.split_chunks, 2);
        EXPECT_LT(images * p.bands, 2);  // only when there are fewer bands than threads
        EXPECT_EQ(p.chunks % 2, 0);
        EXPECT_EQ(p.chunk_begin(1, 2) - p.chunk_begin(0, 2), p.chunk_begin(2, 2) - p.chunk_begin(1, 2));
      } else {
        ++banded;
        EXPECT_GE(images * p.bands, 2);
        EXPECT_EQ(p.stretch_begin(0, 2), 0);
        EXPECT_EQ(p.stretch_begin(2, 2), images * p.bands);
        const int64_t worst = std::max(rows_of_thread(p, 0, 2), rows_of_thread(p, 1, 2));
        EXPECT_EQ(rows_of_thread(p, 0, 2) + rows_of_thread(p, 1, 2), images * s.OH());
        EXPECT_LE(double(worst) * 2 / double(images * s.OH()), 1.05);
      }
    }
  }
  EXPECT_GT(banded, 0);
  EXPECT_GT(split + banded, 0);
}

TEST(FusedBlockThreads, OneThreadIsThePlainPlan) {
  for (const FusedBlockShape& s : kBlocks) {
    const FusedBlockPlan one = plan_fused_block_threads(s, 1, 131072, 1), plain = plan_fused_block(s, 131072);
    EXPECT_EQ(one.rows, plain.rows);
    EXPECT_EQ(one.chunk, plain.chunk);
    EXPECT_EQ(one.threads, 1);
    EXPECT_EQ(one.split_chunks, 0);
  }
}

TEST(FusedBlockThreads, FewBandsManyThreads) {
  // 7x7 block, the whole of it fits: one band. With 4 threads and a project stage the threads split
  // the (re-cut) chunks; without a project stage every thread gets a band (min_bands).
  FusedBlockShape s = block(7, 160, 960, 320, 1);
  const FusedBlockPlan p = plan_fused_block_threads(s, 1, 1 << 22, 4);
  SCOPED_TRACE(p.describe());
  if (p.split_chunks > 0) {
    EXPECT_EQ(p.split_chunks, 4);
    EXPECT_GE(p.chunks, 4);
  } else {
    EXPECT_GE(p.bands, 4);
  }
  s.project = false, s.OC = s.E;
  const FusedBlockPlan q = plan_fused_block_threads(s, 1, 1 << 22, 4);
  SCOPED_TRACE(q.describe());
  EXPECT_EQ(q.split_chunks, 0);
  EXPECT_GE(q.bands, 4);
}

TEST(FusedBlockPlanner, RespectsBufferAndCountsTraffic) {
  schedule::FusedBlockShape s;
  s.H = s.W = 56, s.C = 24, s.E = 144, s.OC = 24;
  for (int64_t S : {int64_t(20000), int64_t(65536), int64_t(1) << 20}) {
    const schedule::FusedBlockPlan p = schedule::plan_fused_block(s, S);
    SCOPED_TRACE(p.describe());
    EXPECT_LE(p.buffer_entries, S);
    if (S >= 65536) {
      EXPECT_GE(p.chunk, std::min<int64_t>(64, s.E));  // the kernel's preferred minimum
    }
    // Traffic: at least compulsory (input once, weights once, output once); the output exactly once.
    EXPECT_EQ(p.writes_output, 56 * 56 * 24);
    EXPECT_GE(p.reads_input, 56 * 56 * 24);
    EXPECT_GE(p.reads_weights, 24 * 144 + 9 * 144 + 144 * 24);
    EXPECT_EQ(p.total, p.reads_input + p.reads_weights + p.writes_output);
    // Bands cover the output exactly, and their input rows the rows the 3x3 window needs.
    EXPECT_GE(p.bands * p.rows, 56);
    EXPECT_LT((p.bands - 1) * p.rows, 56);
    EXPECT_EQ(p.band_in_first(0), 0);
    EXPECT_EQ(p.band_in_last(p.bands - 1), 56);
  }
  // A bigger buffer never plans more traffic.
  EXPECT_LE(schedule::plan_fused_block(s, 1 << 20).total, schedule::plan_fused_block(s, 20000).total);
  // With the whole block on chip: one band, one chunk, compulsory traffic exactly.
  const schedule::FusedBlockPlan whole = schedule::plan_fused_block(s, int64_t(1) << 24);
  EXPECT_EQ(whole.bands, 1);
  EXPECT_EQ(whole.chunks, 1);
  EXPECT_EQ(whole.total, 56 * 56 * 24 * 2 + 24 * 144 + 9 * 144 + 144 * 24);
}

TEST(FusedBlockPlanner, HaloCacheReadsAndExpandsEachRowOnce) {
  schedule::FusedBlockShape s;
  s.H = s.W = 56, s.C = 24, s.E = 144, s.OC = 24;
  const schedule::FusedBlockPlan with = schedule::make_fused_block_plan(s, 1 << 20, 4, 64, true);
  const schedule::FusedBlockPlan without = schedule::make_fused_block_plan(s, 1 << 20, 4, 64, false);
  EXPECT_TRUE(with.halo_cache);
  EXPECT_EQ(with.halo_rows, 2);  // 3x3, stride 1: consecutive bands share 2 input rows
  EXPECT_EQ(with.reads_input, 56 * 56 * 24);
  EXPECT_EQ(with.expand_macs, 56 * 56 * 24 * 144);
  EXPECT_EQ(without.reads_input, (14 * 6 - 2) * 56 * 24);  // 14 bands of 6 rows, first and last clamped
  EXPECT_EQ(with.buffer_entries - without.buffer_entries, 6 * 56 * (144 - 64));  // ring of all chunks
  s.SH = s.SW = 2;  // stride 2: bands of 4 output rows read 9 input rows, sharing 1
  EXPECT_EQ(schedule::make_fused_block_plan(s, 1 << 20, 4, 64, true).halo_rows, 1);
}

TEST(FusedBlockPlanner, SecondDepthwiseStageHalo) {
  // 3x1 (stride 2, pads 1) then 1x3: bands of output rows map to the same mid rows, whose input
  // rows follow the first stage's window.
  schedule::FusedBlockShape s;
  s.H = 20, s.W = 16, s.C = 8, s.E = 32, s.OC = 8;
  s.KH = 3, s.KW = 1, s.SH = 2, s.SW = 1, s.PT = s.PB = 1, s.PL = s.PR = 0;
  s.dw2 = true, s.KH2 = 1, s.KW2 = 3, s.SH2 = 1, s.SW2 = 2, s.PL2 = s.PR2 = 1;
  EXPECT_EQ(s.MH(), 10);
  EXPECT_EQ(s.MW(), 16);
  EXPECT_EQ(s.OH(), 10);
  EXPECT_EQ(s.OW(), 8);
  const schedule::FusedBlockPlan p = schedule::make_fused_block_plan(s, 1 << 20, 3, 32, true);
  EXPECT_EQ(p.band_mid_first(1), 3);
  EXPECT_EQ(p.band_mid_last(1), 6);
  EXPECT_EQ(p.band_in_first(1), 5);  // mid row 3 reads input rows 5..7
  EXPECT_EQ(p.band_in_last(1), 12);  // mid row 5 reads input rows 9..11
  // A second stage with a vertical window: its halo widens the mid rows.
  s.KH2 = 3, s.PT2 = s.PB2 = 1;
  const schedule::FusedBlockPlan q = schedule::make_fused_block_plan(s, 1 << 20, 3, 32, true);
  EXPECT_EQ(q.band_mid_first(0), 0);
  EXPECT_EQ(q.band_mid_last(0), 4);
  EXPECT_EQ(q.band_mid_first(1), 2);
  EXPECT_EQ(q.band_mid_last(1), 7);
  // Weights of both stages are counted: with one band and one chunk, exactly once.
  const schedule::FusedBlockPlan whole = schedule::make_fused_block_plan(s, 1 << 22, 10, 32, true);
  EXPECT_EQ(whole.reads_weights, 8 * 32 + 3 * 32 + 9 * 32 + 32 * 8);
}

TEST(FusedBlockPlanner, MinBandsGivesEveryThreadABand) {
  schedule::FusedBlockShape s;
  s.H = s.W = 7, s.C = 160, s.E = 960, s.OC = 160;
  const int64_t big = int64_t(1) << 24;  // the whole block fits: one band without the option
  EXPECT_EQ(schedule::plan_fused_block(s, big).bands, 1);
  schedule::FusedPlannerOptions o;
  o.min_bands = 2;
  const schedule::FusedBlockPlan p = schedule::plan_fused_block(s, big, o);
  EXPECT_GE(p.bands, 2);
  EXPECT_EQ(p.rows, 4);  // 7 rows in two bands: 4 + 3
  o.min_bands = 100;     // more than OH: one row per band
  EXPECT_EQ(schedule::plan_fused_block(s, big, o).bands, 7);
}

TEST(FusedBlockPlanner, TooSmallBufferNamesS) {
  schedule::FusedBlockShape s;
  s.H = s.W = 56, s.C = 24, s.E = 144, s.OC = 24;
  try {
    schedule::plan_fused_block(s, 500);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("S=500"), std::string::npos) << e.what();
  }
}


// Squeeze-excite blocks (plan_se_block): two-pass or recompute, by the traffic model in the header.
// D = OH x OW x E entries; two-pass keeps min(D, S - the walk's buffer) and pays 2 x the rest;
// recompute pays the input again (unless it fits beside the walk), the weights again and its
// recomputed MACs / 16.
FusedBlockShape se_shape(int64_t H, int64_t C, int64_t E, int64_t OC) {
  FusedBlockShape s;
  s.H = s.W = H, s.C = C, s.E = E, s.OC = OC;
  return s;
}

void expect_consistent(const SeBlockPlan& p) {
  const FusedBlockShape& s = p.block.shape;
  EXPECT_EQ(p.stored, s.OH() * s.OW() * s.E);
  EXPECT_EQ(p.kept + p.spilled, p.stored);
  EXPECT_EQ(p.kept, std::min(p.stored, std::max<int64_t>(0, p.block.S - p.block.buffer_entries)));
  EXPECT_EQ(p.extra_two_pass, 2 * p.spilled);
  EXPECT_FALSE(p.block.halo_cache);  // both passes expand each band's rows afresh
  EXPECT_EQ(p.strategy, p.extra_recompute < p.extra_two_pass ? SeStrategy::Recompute : SeStrategy::TwoPass);
}

TEST(SeBlockPlanner, SmallBlockKeepsDOnChip) {
  // 12 x 12 x 64 = 9216 entries of D beside the walk in 64K entries: nothing spills, two-pass is free
  const SeBlockPlan p = plan_se_block(se_shape(12, 16, 64, 16), 65536);
  expect_consistent(p);
  EXPECT_EQ(p.stored, 9216);
  EXPECT_EQ(p.spilled, 0);
  EXPECT_EQ(p.extra_two_pass, 0);
  EXPECT_GT(p.extra_recompute, 0);  // the weights and MACs again
  EXPECT_EQ(p.strategy, SeStrategy::TwoPass);
  EXPECT_NE(p.describe().find("squeeze-excite two-pass"), std::string::npos) << p.describe();
}

TEST(SeBlockPlanner, LargeMapNarrowInputRecomputes) {
  // 112 x 112 x 48 = 602112 entries of D against 64K: spilling costs ~1.2M entries; the input is
  // only 8 channels (100352 entries) and its expansion 8 MACs per expanded entry, so recomputing
  // (input again + (expand 4.8M + depthwise 5.4M MACs) / 16 = ~0.74M) is cheaper.
  const SeBlockPlan p = plan_se_block(se_shape(112, 8, 48, 8), 65536);
  expect_consistent(p);
  EXPECT_EQ(p.stored, 602112);
  EXPECT_GT(p.spilled, 602112 - 65536);
  EXPECT_GE(p.input_reread, 112 * 112 * 8);  // does not fit: read again (halo rows included)
  EXPECT_GE(p.recompute_macs, 112 * 112 * 8 * 48 + 112 * 112 * 48 * 9);
  EXPECT_EQ(p.strategy, SeStrategy::Recompute);
  EXPECT_NE(p.describe().find("squeeze-excite recompute"), std::string::npos) << p.describe();
}

TEST(SeBlockPlanner, WideInputSpillsRatherThanRecompute) {
  // 56 x 56 x 384: spilling D costs ~2.4M entries, recomputing 64 -> 384 expansions
  // (77M MACs / 16 = 4.8M) more
  const SeBlockPlan p = plan_se_block(se_shape(56, 64, 384, 64), 65536);
  expect_consistent(p);
  EXPECT_GT(p.spilled, 0);
  EXPECT_GT(p.extra_recompute, p.extra_two_pass);
  EXPECT_EQ(p.strategy, SeStrategy::TwoPass);
  // forced, the plan says the other strategy with the same figures
  const SeBlockPlan f = plan_se_block(se_shape(56, 64, 384, 64), 65536, {}, SeStrategy::Recompute);
  EXPECT_EQ(f.strategy, SeStrategy::Recompute);
  EXPECT_EQ(f.extra_two_pass, p.extra_two_pass);
  EXPECT_EQ(f.extra_recompute, p.extra_recompute);
}

TEST(SeBlockPlanner, RefusesWithoutProjectStage) {
  FusedBlockShape s = se_shape(8, 8, 32, 8);
  s.project = false;
  s.OC = 32;
  try {
    plan_se_block(s, 65536);
    FAIL() << "planned a squeeze-excite block without its project stage";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a project stage"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace locus::schedule
