// Replays a tiling Plan's tile sequence against an explicit on-chip buffer of S entries and counts
// the DRAM traffic it causes, to check the planner's closed-form model (tiling_planner.h).
//
// The buffer holds blocks: A tiles A[i0:i1, k0:k1], B tiles B[k0:k1, j0:j1] and the C tile being
// accumulated. Residency policy (the plan's own): the stationary operand (A for RowMajor/ScanRows,
// B for ColMajor/ScanCols) has one slot, the streaming operand 1 + plan.resident_strips slots, each
// an LRU window (a block is loaded only when it is not already on chip; the least recently used
// block of that operand is evicted to make room). The C tile is allocated at its first k step, kept
// on chip while it accumulates and stored (then freed) at its last. After every step the simulator
// checks that the blocks on chip total at most S entries and counts a violation otherwise.
#pragma once

#include <cstdint>

#include "schedule/tiling_planner.h"

namespace locus::schedule {

struct SimResult {
  int64_t loads_a = 0;   // entries of A read from DRAM
  int64_t loads_b = 0;   // entries of B read from DRAM
  int64_t stores_c = 0;  // entries of C written to DRAM
  int64_t reloads_c = 0;  // entries of partial C sums that had to come back (0 for valid plans)
  int64_t peak_entries = 0;
  int64_t violations = 0;  // steps at which more than S entries were on chip
  int64_t steps = 0;
  int64_t total() const { return loads_a + loads_b + stores_c + reloads_c; }
};

class BufferSimulator {
 public:
  explicit BufferSimulator(int64_t buffer_entries) : S_(buffer_entries) {}
  SimResult run(const Plan& plan) const;

 private:
  int64_t S_;
};

}  // namespace locus::schedule
