#include "runtime/memory_planner.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>

namespace locus {

static int64_t align_up(int64_t v) { return (v + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

MemoryPlan plan_memory(const std::vector<BufferRequest>& req) {
  MemoryPlan plan;
  plan.offsets.assign(req.size(), 0);
  std::vector<size_t> order(req.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return req[a].bytes > req[b].bytes; });
  // Steps are renumbered densely from the smallest first; each step lists the placed buffers alive
  // in it, so finding the buffers that overlap a request costs the buffers alive during its
  // lifetime, not every buffer placed so far (a 100k-node chain plans in linear time).
  int lo = 0, hi = -1;
  for (size_t i = 0; i < req.size(); ++i) {
    lo = i == 0 ? std::min(req[i].first, req[i].last) : std::min({lo, req[i].first, req[i].last});
    hi = i == 0 ? std::max(req[i].first, req[i].last) : std::max({hi, req[i].first, req[i].last});
  }
  std::vector<std::vector<int>> alive(req.empty() ? 0 : size_t(int64_t(hi) - lo + 1));
  struct Placed { int64_t off, size; };
  std::vector<Placed> placed(req.size());
  std::vector<size_t> seen(req.size(), SIZE_MAX);  // request index that last collected buffer i
  std::vector<std::pair<int64_t, int64_t>> busy;
  for (size_t idx : order) {
    const auto& r = req[idx];
    int64_t size = align_up(std::max<int64_t>(r.bytes, 1));
    plan.unshared_bytes += r.bytes;
    // collect ranges of buffers alive at the same time, sorted by offset
    busy.clear();
    const int first = std::min(r.first, r.last), last = std::max(r.first, r.last);
    for (int t = first; t <= last; ++t)
      for (int other : alive[size_t(t - lo)])
        if (seen[size_t(other)] != idx) {
          seen[size_t(other)] = idx;
          busy.push_back({placed[size_t(other)].off, placed[size_t(other)].off + placed[size_t(other)].size});
        }
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (auto& [b, e] : busy) {
      if (off + size <= b) break;
      off = std::max(off, e);
    }
    placed[idx] = {off, size};
    for (int t = first; t <= last; ++t) alive[size_t(t - lo)].push_back(int(idx));
    plan.offsets[idx] = off;
    plan.arena_bytes = std::max(plan.arena_bytes, off + size);
  }
  return plan;
}

std::vector<BufferRequest> value_lifetimes(const Graph& g) {
  const int end = int(g.nodes.size());
  std::map<std::string, BufferRequest> req;
  for (auto& in : g.inputs) req[in] = {in, 0, 0, 0};
  for (int s = 0; s < end; ++s) {
    for (auto& in : g.nodes[size_t(s)].inputs)
      if (auto it = req.find(in); it != req.end()) it->second.last = s;
    for (auto& out : g.nodes[size_t(s)].outputs)
      if (!out.empty()) req[out] = {out, 0, s, s};
  }
  for (auto& out : g.outputs)
    if (auto it = req.find(out); it != req.end()) it->second.last = end;
  std::vector<BufferRequest> list;
  list.reserve(req.size());
  for (auto& [name, r] : req) {
    // float32 values take 4 bytes, the quantized ops' uint8 / int8 values 1 (an unknown dtype counts 4)
    const size_t es = dtype_size(g.info(name).dtype);
    r.bytes = checked_numel(g.info(name).shape, name) * int64_t(es ? es : sizeof(float));
    list.push_back(r);
  }
  return list;
}

namespace {

// Bytes alive at each step of [lo, hi] (size(r) of each request alive then), by a difference array.
template <class Size>
std::vector<int64_t> live_by_step(const std::vector<BufferRequest>& requests, int lo, int hi, const Size& size) {
  if (hi < lo) return {};
  std::vector<int64_t> live(size_t(hi - lo) + 2, 0);
  for (const BufferRequest& r : requests) {
    const int first = std::max(r.first, lo), last = std::min(r.last, hi);
    if (first > last) continue;
    live[size_t(first - lo)] += size(r);
    live[size_t(last - lo) + 1] -= size(r);
  }
  for (size_t i = 1; i < live.size(); ++i) live[i] += live[i - 1];
  live.pop_back();
  return live;
}

}  // namespace

int64_t peak_live_bytes(const std::vector<BufferRequest>& requests) {
  int lo = 0, hi = -1;
  for (size_t i = 0; i < requests.size(); ++i) {
    lo = i == 0 ? requests[i].first : std::min(lo, requests[i].first);
    hi = i == 0 ? requests[i].last : std::max(hi, requests[i].last);
  }
  const std::vector<int64_t> live = live_by_step(requests, lo, hi, [](const BufferRequest& r) { return r.bytes; });
  return live.empty() ? 0 : std::max<int64_t>(0, *std::max_element(live.begin(), live.end()));
}

std::vector<int64_t> placed_live_bytes(const std::vector<BufferRequest>& requests, int steps) {
  std::vector<int64_t> live =
      live_by_step(requests, 0, steps - 1, [](const BufferRequest& r) { return align_up(std::max<int64_t>(r.bytes, 1)); });
  live.resize(size_t(std::max(steps, 0)), 0);
  return live;
}

}  // namespace locus
