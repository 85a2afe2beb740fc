// The meet-in-the-middle split (kernels/native/meet_split.h): every item exactly once, each thread's
// items one contiguous run walked from its end of the pair's stretch, for teams of 1-7 threads and
// item counts from 0 to past the team size; the balancing itself: a thread held back until its
// partner has finished gets nothing; and the static split of teams too large for the counters.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <vector>

#include "kernels/native/meet_split.h"

namespace locus::kernels {
namespace {

TEST(MeetSplit, EveryItemOnceEachThreadContiguousFromItsEnd) {
  for (int T = 1; T <= 7; ++T)
    for (int64_t n : {0, 1, 2, 3, 5, 8, 13, 40}) {
      SCOPED_TRACE(testing::Message() << "team " << T << ", " << n << " items");
      std::vector<std::vector<int64_t>> taken(static_cast<size_t>(T));
      MeetSplit split(n, T);
      int team = 0;
#pragma omp parallel num_threads(T)
      {
#pragma omp single
        team = omp_get_num_threads();
        const int t = omp_get_thread_num();
        split.run(t, [&](int64_t i) { taken[size_t(t)].push_back(i); });
      }
      ASSERT_EQ(team, T) << "OpenMP gave a smaller team";
      std::vector<int> seen(size_t(n), 0);
      for (int t = 0; t < T; ++t) {
        const auto& v = taken[size_t(t)];
        const int64_t first = split.pair_first(t), last = split.pair_last(t);
        for (size_t k = 0; k < v.size(); ++k) {
          ASSERT_GE(v[k], first) << "thread " << t << " left its pair's stretch";
          ASSERT_LT(v[k], last) << "thread " << t << " left its pair's stretch";
          // The walking order: forward from the first item, or backward from the last.
          const int64_t want = split.backward(t) ? last - 1 - int64_t(k) : first + int64_t(k);
          ASSERT_EQ(v[k], want) << "thread " << t << "'s item " << k;
          ++seen[size_t(v[k])];
        }
      }
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[size_t(i)], 1) << "item " << i;
      // The pairs' stretches: proportional to their threads (the last thread of an odd team alone).
      if (T > 1) {
        EXPECT_EQ(split.pair_first(0), 0);
        EXPECT_EQ(split.pair_last(T - 1), n);
        EXPECT_EQ(split.pair_last(1), n * 2 / T);
      }
    }
}

TEST(MeetSplit, ThreadHeldBackGetsNothing) {
  // Thread 1 starts only when thread 0 has run out of items: thread 0 has taken its pair's whole
  // stretch (a static split would have left it half).
  const int64_t n = 9;
  MeetSplit split(n, 2);
  std::vector<int64_t> taken[2];
  std::atomic<bool> done{false};
  int team = 0;
#pragma omp parallel num_threads(2)
  {
    const int t = omp_get_thread_num();
    if (t == 0) team = omp_get_num_threads();
    if (t == 1)
      while (!done.load()) {
      }
    split.run(t, [&](int64_t i) { taken[t].push_back(i); });
    if (t == 0) done.store(true);
  }
  ASSERT_EQ(team, 2) << "OpenMP gave a smaller team";
  ASSERT_EQ(taken[0].size(), size_t(n));
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(taken[0][size_t(i)], i);
  EXPECT_TRUE(taken[1].empty());
}

TEST(MeetSplit, TeamsBeyondThePairCountersSplitStatically) {
  // 200 threads (more than 2 x kMaxPairs): thread t walks its own static share [n t / T, n (t + 1)
  // / T) forward. run needs no team for that, so the threads' calls can be made one after another.
  const int T = 2 * MeetSplit::kMaxPairs + 72;
  for (int64_t n : {0, 7, 200, 1001}) {
    MeetSplit split(n, T);
    std::vector<int> seen(size_t(n), 0);
    for (int t = 0; t < T; ++t) {
      int64_t next = n * t / T;
      EXPECT_FALSE(split.backward(t));
      split.run(t, [&](int64_t i) {
        ASSERT_EQ(i, next) << "thread " << t << " of " << T << ", " << n << " items";
        ++next;
        ++seen[size_t(i)];
      });
      EXPECT_EQ(next, n * (t + 1) / T) << "thread " << t << " stopped short";
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[size_t(i)], 1) << "item " << i << " of " << n;
  }
}

}  // namespace
}  // namespace locus::kernels
