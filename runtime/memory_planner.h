// Memory planner: places every intermediate activation in one arena so that buffers whose lifetimes
// do not overlap share memory. Lifetimes are step intervals [first, last] (inclusive); the planner
// is greedy by size (largest first, lowest offset that does not collide with an already placed
// buffer alive at the same time), which is simple and close to optimal for CNN chains.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/ir.h"

namespace locus {

struct BufferRequest {
  std::string name;
  int64_t bytes = 0;
  int first = 0, last = 0;  // steps during which the buffer must stay intact
};

struct MemoryPlan {
  std::vector<int64_t> offsets;  // per request, bytes from the arena start (aligned)
  int64_t arena_bytes = 0;       // peak: arena size
  int64_t unshared_bytes = 0;    // sum of all requests (what no reuse would need)
};

inline constexpr int64_t kArenaAlignment = 64;

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests);

// One request per runtime value of g (graph inputs and node outputs), in name order: inputs live
// from step 0, a node's output from its step, each until its last reader; graph outputs until the
// end (step g.nodes.size()). Bytes are the value's dtype size per element (4 for float32, 1 for the
// uint8 / int8 values of quantized graphs).
std::vector<BufferRequest> value_lifetimes(const Graph& g);

// The most bytes alive at one step: a lower bound of any arena for these requests.
int64_t peak_live_bytes(const std::vector<BufferRequest>& requests);

// Per step s in [0, steps): the bytes plan_memory reserves for the requests alive at s (each
// rounded up to kArenaAlignment, at least one alignment unit), i.e. what an arena holding them
// cannot lend to anything else during s.
std::vector<int64_t> placed_live_bytes(const std::vector<BufferRequest>& requests, int steps);

}  // namespace locus
