// The memory planner: buffers alive at the same time never overlap; buffers that are not reuse
// memory; the peak of a simple chain is what a hand count gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "runtime/memory_planner.h"

using namespace locus;

TEST(MemoryPlanner, ChainReusesMemoryAndPeakIsLargestAdjacentPair) {
  // a -> b -> c -> d: each value is read by the next step only
  std::vector<BufferRequest> r{{"a", 1024, 0, 0}, {"b", 4096, 0, 1}, {"c", 2048, 1, 2}, {"d", 1024, 2, 3}};
  // alive together: (a,b) at step 0, (b,c) at step 1, (c,d) at step 2 -> peak 4096 + 2048
  MemoryPlan p = plan_memory(r);
  EXPECT_EQ(p.arena_bytes, 4096 + 2048);
  EXPECT_EQ(p.unshared_bytes, 1024 + 4096 + 2048 + 1024);
}

TEST(MemoryPlanner, RandomRequestsNeverCollide) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<BufferRequest> r;
    int n = 2 + int(rng() % 30);
    for (int i = 0; i < n; ++i) {
      int a = int(rng() % 20), len = int(rng() % 6);
      r.push_back({"v" + std::to_string(i), 1 + int64_t(rng() % 5000), a, a + len});
    }
    MemoryPlan p = plan_memory(r);
    int64_t live_peak = 0;
    for (int s = 0; s < 26; ++s) {
      int64_t live = 0;
      for (auto& q : r) live += (q.first <= s && s <= q.last) ? q.bytes : 0;
      live_peak = std::max(live_peak, live);
    }
    EXPECT_GE(p.arena_bytes, live_peak);  // can't beat the live set
    EXPECT_LE(p.arena_bytes, p.unshared_bytes + int64_t(r.size()) * kArenaAlignment);
    for (size_t i = 0; i < r.size(); ++i) {
      EXPECT_EQ(p.offsets[i] % kArenaAlignment, 0);
      EXPECT_LE(p.offsets[i] + r[i].bytes, p.arena_bytes);
      for (size_t j = i + 1; j < r.size(); ++j) {
        bool time_overlap = r[i].first <= r[j].last && r[j].first <= r[i].last;
        bool mem_overlap = p.offsets[i] < p.offsets[j] + r[j].bytes && p.offsets[j] < p.offsets[i] + r[i].bytes;
        EXPECT_FALSE(time_overlap && mem_overlap) << "requests " << i << " and " << j << " collide";
      }
    }
  }
}

// The planner finds the buffers alive with a request through per-step lists; this is the plain
// version it replaced (every placed buffer checked against every request), written out here. Both
// must place every buffer at the same offset.
namespace {
MemoryPlan plan_memory_naive(const std::vector<BufferRequest>& req) {
  MemoryPlan plan;
  plan.offsets.assign(req.size(), 0);
  std::vector<size_t> order(req.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return req[a].bytes > req[b].bytes; });
  struct Placed { int64_t off, size; int first, last; };
  std::vector<Placed> placed;
  for (size_t idx : order) {
    const auto& r = req[idx];
    const int64_t size = (std::max<int64_t>(r.bytes, 1) + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
    plan.unshared_bytes += r.bytes;
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (auto& p : placed)
      if (p.first <= r.last && r.first <= p.last) busy.push_back({p.off, p.off + p.size});
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (auto& [b, e] : busy) {
      if (off + size <= b) break;
      off = std::max(off, e);
    }
    placed.push_back({off, size, r.first, r.last});
    plan.offsets[idx] = off;
    plan.arena_bytes = std::max(plan.arena_bytes, off + size);
  }
  return plan;
}
}  // namespace

TEST(MemoryPlanner, SamePlacementAsTheExhaustiveSearch) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> r;
    const int n = 1 + int(rng() % 60);
    const int base = int(rng() % 5);  // lifetimes need not start at step 0
    for (int i = 0; i < n; ++i) {
      const int a = base + int(rng() % 40), len = int(rng() % (i % 7 == 0 ? 40 : 4));
      // repeated sizes exercise the stable order
      r.push_back({"v" + std::to_string(i), 1 + int64_t(rng() % 8) * 100 + (i % 3 ? 0 : int64_t(rng() % 99)), a, a + len});
    }
    const MemoryPlan got = plan_memory(r), want = plan_memory_naive(r);
    ASSERT_EQ(got.offsets, want.offsets) << "trial " << trial;
    ASSERT_EQ(got.arena_bytes, want.arena_bytes);
    ASSERT_EQ(got.unshared_bytes, want.unshared_bytes);
  }
}

// A 100k-step chain plans (the exhaustive search took minutes); the peak is two adjacent buffers.
TEST(MemoryPlanner, LongChainPlansAndReusesTwoSlots) {
  std::vector<BufferRequest> r;
  for (int i = 0; i < 100000; ++i) r.push_back({"v", 4096, i, i + 1});
  const MemoryPlan p = plan_memory(r);
  EXPECT_EQ(p.arena_bytes, 2 * 4096);
}

// The session's pre-allocation estimate: the most bytes alive at one step, counted by hand.
TEST(MemoryPlanner, PeakLiveBytesIsTheLargestStep) {
  std::vector<BufferRequest> r{{"a", 1024, 0, 0}, {"b", 4096, 0, 1}, {"c", 2048, 1, 2}, {"d", 1024, 2, 3}};
  EXPECT_EQ(peak_live_bytes(r), 4096 + 2048);  // step 1: b and c
  EXPECT_EQ(peak_live_bytes({}), 0);
  r.push_back({"skip", 100, 0, 3});  // alive throughout
  EXPECT_EQ(peak_live_bytes(r), 4096 + 2048 + 100);
}

// Per step, what the arena reserves for the requests alive then: sizes rounded up to the alignment
// (a zero-byte request still takes one unit), requests beyond the asked steps left out.
TEST(MemoryPlanner, PlacedLiveBytesPerStep) {
  const int64_t A = kArenaAlignment;
  std::vector<BufferRequest> r{{"a", 1, 0, 0}, {"b", A + 1, 0, 1}, {"c", 0, 1, 2}, {"out", 3 * A, 2, 5}};
  EXPECT_EQ(placed_live_bytes(r, 4), (std::vector<int64_t>{A + 2 * A, 2 * A + A, A + 3 * A, 3 * A}));
  EXPECT_EQ(placed_live_bytes(r, 2), (std::vector<int64_t>{3 * A, 3 * A}));
  EXPECT_EQ(placed_live_bytes({}, 3), (std::vector<int64_t>{0, 0, 0}));
}
