// The meet-in-the-middle split: items [0, n) over a team of T threads, balanced at run time while
// every thread's items stay contiguous.
//
// The team is cut into pairs (thread 2p and 2p + 1; an odd team's last thread is alone). Pair p owns
// a contiguous stretch of the items in proportion to its threads: [n * 2p / T, n * min(2p + 2, T) /
// T), which is the union of its two threads' static stretches. In a pair, the even thread takes items
// from the front of the stretch, one at a time, and the odd thread from the back, until they meet:
// each claim is one atomic increment of the pair's count, so a thread whose vCPU runs slower (a
// shared machine's other tenants) simply ends up with fewer items. A static split waits for the
// slower thread instead: measured on a 2-vCPU KVM guest, 20-25% of the fused blocks' thread time
// was idle in the machine's slow stretches (docs/threads.md).
//
// Why contiguous: consecutive items share data (a fused block's band reuses the expanded halo rows
// of the band before it; a conv's neighbouring output rows read overlapping input rows), and the
// next layer's static split then finds most of its rows in its own core's cache.
//
// Which thread runs an item changes from run to run, so an item's work must not depend on it (nor on
// the thread's previous item, except for reuse of equal values): then runs stay reproducible bit for
// bit.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

namespace locus::kernels {

class MeetSplit {
 public:
  // Pairs with a counter each; a larger team (more than 2 x kMaxPairs threads) splits statically.
  static constexpr int kMaxPairs = 64;

  // Items [0, n) for a team of T >= 1 threads; one object shared by the team (meet_split_parallel).
  MeetSplit(int64_t n, int T) : n_(n), T_(std::max(T, 1)), paired_(T_ <= 2 * kMaxPairs) {
    for (int p = 0; paired_ && p < (T_ + 1) / 2; ++p) counts_[size_t(p)].v.store(0, std::memory_order_relaxed);
  }

  // Thread t's pair owns items [pair_first(t), pair_last(t)) (with a static split: thread t's own).
  int64_t pair_first(int t) const { return paired_ ? n_ * (t / 2 * 2) / T_ : n_ * t / T_; }
  int64_t pair_last(int t) const { return paired_ ? n_ * std::min(t / 2 * 2 + 2, T_) / T_ : n_ * (t + 1) / T_; }
  // Whether thread t walks its pair's stretch backward (from the end).
  bool backward(int t) const { return paired_ && t % 2 == 1; }

  // Runs fn(item) for every item thread t claims, in its walking order (forward from the pair's
  // first item, or backward from its last). Call it from thread t of the team, once.
  template <class F>
  void run(int t, const F& fn) {
    const int64_t first = pair_first(t), last = pair_last(t), len = last - first;
    if (!paired_) {
      for (int64_t step = 0; step < len; ++step) fn(first + step);
      return;
    }
    std::atomic<int64_t>& count = counts_[size_t(t / 2)].v;
    const bool back = backward(t);
    for (int64_t step = 0; count.fetch_add(1, std::memory_order_relaxed) < len; ++step)
      fn(back ? last - 1 - step : first + step);
  }

 private:
  int64_t n_;
  int T_;
  bool paired_;
  struct alignas(64) Count {  // a cache line each: pairs do not contend
    std::atomic<int64_t> v;
  };
  std::array<Count, kMaxPairs> counts_;
};

// Runs body(t, split) on each thread t of a parallel region of (at most) `threads` threads, split
// being one MeetSplit of n items over the team that actually formed (OpenMP may give fewer threads
// than asked for). body typically holds per-thread state and calls split.run(t, ...).
template <class Body>
void meet_split_parallel(int64_t n, int threads, const Body& body) {
  std::optional<MeetSplit> split;
#pragma omp parallel num_threads(threads)
  {
#pragma omp single
    split.emplace(n, omp_get_num_threads());
    body(omp_get_thread_num(), *split);
  }
}

}  // namespace locus::kernels
