// The memory planner: buffers alive at the same time never overlap; buffers that are not reuse
// memory; the peak of a simple chain is what a hand count gives.
#include <gtest/gtest.h>

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
