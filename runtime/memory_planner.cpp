#include "runtime/memory_planner.h"

#include <algorithm>
#include <numeric>

namespace locus {

static int64_t align_up(int64_t v) { return (v + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

MemoryPlan plan_memory(const std::vector<BufferRequest>& req) {
  MemoryPlan plan;
  plan.offsets.assign(req.size(), 0);
  std::vector<size_t> order(req.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return req[a].bytes > req[b].bytes; });
  struct Placed { int64_t off, size; int first, last; };
  std::vector<Placed> placed;
  for (size_t idx : order) {
    const auto& r = req[idx];
    int64_t size = align_up(std::max<int64_t>(r.bytes, 1));
    plan.unshared_bytes += r.bytes;
    // collect ranges of buffers alive at the same time, sorted by offset
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

}  // namespace locus
