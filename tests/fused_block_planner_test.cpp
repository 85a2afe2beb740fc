// The fused-block planner's thread split (schedule/fused_block_planner.h, plan_fused_block_threads):
// the plan, not the kernel, says how threads share a block's work. Standard library + schedule only.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

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

}  // namespace
}  // namespace locus::schedule
