// Tiling planner for a pointwise (1x1) convolution seen as a GEMM, C[M x N] = A[M x K] . B[K x N]
// (docs/method.md sections 2-4 and 8).
//
// What it models: an on-chip buffer of S entries (an accelerator's global buffer, or a CPU core's
// L2 expressed in elements) between the MAC units and DRAM. A plan cuts the GEMM into m x k tiles of
// A, k x n tiles of B and m x n tiles of C with m.k + k.n + m.n <= S, and visits the grid of C tiles
// (rows i over M, columns j over N) in one of four orders. It counts DRAM traffic in entries:
//
//  * k = K (the whole reduction strip fits with the candidate's m and n). Partial sums never
//    leave the buffer. In the "rows" orientation (RowMajor, ScanRows) the A strip m x K of row i is
//    stationary (loaded once per row, so A is read exactly once) and the B strips K x n stream past it.
//    The leftover buffer holds `resident_strips` extra B strips, i.e. c = 1 + resident_strips strips
//    live in an LRU window. RowMajor jumps back to column 0 at every row and so reloads all of B per
//    row unless all column strips fit (c >= Nt). ScanRows walks row i left to right and row i + 1
//    right to left, so the c strips at the turn are still on chip and are not reloaded. The "cols"
//    orientation (ColMajor, ScanCols) exchanges the roles of A and B.
//  * k < K (candidates whose m x K and K x n strips do not fit; k is the largest that does):
//    for each C tile the reduction is innermost (k ascending), the C
//    tile is accumulated on chip and written once; A is read ceil(N/n) times and B ceil(M/m) times
//    whatever the order (method.md section 3).
//
// Fragmented edge tiles: in the Scan orders the partial strip of the streaming dimension is put at the
// start of the walk (column 0 for ScanRows, row 0 for ScanCols). That end of the serpentine is the turn
// taken least often (the first turn, and every other one after it, happens at the far end), so the
// strips reused at turns are as often as possible full ones and the short strip is the one loaded.
// The stationary dimension's partial tile is last (its placement does not change the traffic).
//
// The model is exact: BufferSimulator (buffer_simulator.h) replays `Plan::sequence()` against an
// explicit S-entry buffer and counts the same loads and stores.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "schedule/tile_order.h"

namespace locus::schedule {

// The register tile of the micro-kernel that executes a plan: it computes mr rows x nr columns of C
// per call (kernels/native/gemm_microkernel.h: 12 x 16 on AVX-512, 6 x 16 on AVX2, 4 x 16 generic).
// The CPU planners take it from the kernel dispatch table; tiles are rounded to it.
struct RegisterTile {
  int64_t mr = 1, nr = 1;
};

struct GemmShape {
  int64_t M = 0;  // pixels (H x W x batch)
  int64_t K = 0;  // input channels (reduction)
  int64_t N = 0;  // output channels
  int elem_bytes = 4;
};

// DRAM traffic in entries (multiply by elem_bytes for bytes).
struct Traffic {
  int64_t reads_a = 0;
  int64_t reads_b = 0;
  int64_t writes_c = 0;
  int64_t total = 0;
};

// One step: C[i0:i1, j0:j1] += A[i0:i1, k0:k1] . B[k0:k1, j0:j1].
struct TileVisit {
  int64_t i0, i1, j0, j1, k0, k1;
};

// BelowMinimum: the tiles fit but are smaller than the kernel's minimum (PlannerOptions::min_*);
// such alternatives are listed with their traffic and chosen only when the buffer cannot hold any
// tile that meets the minimum (then they are ranked like the others).
enum class Verdict { Chosen, ExceedsBuffer, BelowMinimum, MoreTraffic, LostTie };
const char* verdict_reason(Verdict v);

struct Alternative {
  int64_t m = 0, n = 0, k = 0;
  Order order = Order::RowMajor;
  int64_t resident_strips = 0;
  int64_t buffer_entries = 0;  // m.k + k.n + m.n + resident strips
  Traffic traffic;             // zero when the tiles exceed the buffer
  double efficiency = 0;       // useful MACs / MACs padded to the register tile
  int64_t steps = 0;           // tile visits (Mt . Nt . Kt)
  Verdict verdict = Verdict::MoreTraffic;
};

struct Plan {
  GemmShape shape;
  int64_t S = 0;  // buffer size in entries
  int64_t m_step = 1, n_step = 1;  // the register tile the tiles were rounded to
  int threads = 1;                 // threads the executing kernel splits the walk among
  int64_t m = 0, n = 0, k = 0;
  Order order = Order::ScanRows;
  // Extra strips of the streaming operand (B for the rows orientation, A for cols) kept on chip
  // beyond the working set, capped at (number of streaming strips - 1).
  int64_t resident_strips = 0;
  Traffic traffic;
  std::vector<Alternative> alternatives;  // filled by TilingPlanner::plan only

  // Cut points of the M, N and K axes in the plan's layout (partial tile placement included).
  std::vector<int64_t> m_bounds() const;
  std::vector<int64_t> n_bounds() const;
  std::vector<int64_t> k_bounds() const;
  // m.k + k.n + m.n plus the resident strips: the most the plan keeps on chip.
  int64_t buffer_entries() const;
  // The tile visits in order (reduction innermost).
  std::vector<TileVisit> sequence() const;
  std::string describe() const;
};

struct PlannerOptions {
  int64_t m_step = 1;  // register-tile granularity along M (RegisterTile::mr, e.g. 12)
  int64_t n_step = 1;  // along N (RegisterTile::nr, e.g. 16)
  // Threads the kernel will run the plan with (recorded in the plan; the kernel splits its walk
  // among exactly these).
  int threads = 1;
  // Smallest tiles the executing kernel runs efficiently (each clamped to the GEMM's extent): a CPU
  // kernel pays a fixed cost per tile visit and reloads C once per k range, so tiles that minimise
  // traffic with, say, k = 5 or n = 1 are useless to it. 1 = no constraint (the accelerator model).
  int64_t min_m = 1;
  int64_t min_n = 1;
  int64_t min_k = 1;
  // The visiting orders the planner may choose from (e.g. only Scan, to measure its effect).
  std::vector<Order> orders = {Order::RowMajor, Order::ColMajor, Order::ScanRows, Order::ScanCols};
};

class TilingPlanner {
 public:
  explicit TilingPlanner(int64_t buffer_entries, PlannerOptions opts = {});

  // Enumerates candidate tiles (m, n from a candidate set per axis, k = K if it fits with them, else
  // the largest k < K) and the four orders, returns the cheapest (ties: compute efficiency =
  // useful / register-tile-padded MACs, then m a multiple of m_step (or M), then fewer tile steps,
  // then larger k, then Scan first). Throws locus::Error when S cannot hold any tile.
  Plan plan(const GemmShape& shape) const;

  // The plan for given tiles and order (resident strips from the leftover buffer, exact traffic).
  // Throws when m.k + k.n + m.n > S.
  Plan make_plan(const GemmShape& shape, int64_t m, int64_t n, int64_t k, Order order) const;

  int64_t buffer() const { return S_; }

 private:
  int64_t S_;
  PlannerOptions opts_;
};

}  // namespace locus::schedule
