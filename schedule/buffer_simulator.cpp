#include "schedule/buffer_simulator.h"

#include <algorithm>
#include <deque>

namespace locus::schedule {

namespace {

struct Block {
  int64_t r0, r1, c0, c1;
  int64_t size() const { return (r1 - r0) * (c1 - c0); }
  bool operator==(const Block&) const = default;
};

// LRU window of at most `cap` blocks of one operand; most recently used at the back.
struct Window {
  size_t cap;
  std::deque<Block> blocks;
  int64_t entries = 0;
  // Makes `b` resident; returns the entries loaded from DRAM.
  int64_t touch(const Block& b) {
    auto it = std::find(blocks.begin(), blocks.end(), b);
    if (it != blocks.end()) {
      Block hit = *it;
      blocks.erase(it);
      blocks.push_back(hit);
      return 0;
    }
    while (!blocks.empty() && blocks.size() >= cap) {
      entries -= blocks.front().size();
      blocks.pop_front();
    }
    blocks.push_back(b);
    entries += b.size();
    return b.size();
  }
};

}  // namespace

SimResult BufferSimulator::run(const Plan& plan) const {
  const bool rows = rows_oriented(plan.order);
  const size_t stream_cap = size_t(1 + std::max<int64_t>(plan.resident_strips, 0));
  Window a{rows ? size_t(1) : stream_cap, {}};
  Window b{rows ? stream_cap : size_t(1), {}};
  bool has_c = false;  // a C tile is being accumulated on chip
  Block c{0, 0, 0, 0};
  SimResult r;
  const int64_t K = plan.shape.K;
  for (const TileVisit& v : plan.sequence()) {
    ++r.steps;
    r.loads_a += a.touch({v.i0, v.i1, v.k0, v.k1});
    r.loads_b += b.touch({v.k0, v.k1, v.j0, v.j1});
    Block ct{v.i0, v.i1, v.j0, v.j1};
    if (!has_c || !(c == ct)) {
      if (has_c) r.stores_c += c.size();  // an unfinished C tile has to leave (never for valid plans)
      c = ct;
      has_c = true;
      if (v.k0 != 0) r.reloads_c += ct.size();
    }
    const int64_t on_chip = a.entries + b.entries + c.size();
    r.peak_entries = std::max(r.peak_entries, on_chip);
    if (on_chip > S_) ++r.violations;
    if (v.k1 == K) {
      r.stores_c += c.size();
      has_c = false;
    }
  }
  if (has_c) r.stores_c += c.size();
  return r;
}

}  // namespace locus::schedule
