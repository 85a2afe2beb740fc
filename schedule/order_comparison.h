// The thesis's single-layer comparison of tile visiting orders (issue 19, docs/scan-order.md): one
// 1x1 convolution (a GEMM, tiling_planner.h) on a buffer of S entries, its DRAM traffic when the
// same tiles are visited in row-major, column-major and Scan order ("fixed" tiles: the choices of a
// fixed-dataflow accelerator), and when each order gets its own best tiles ("free": what the
// planner does when it may choose the tile shape for the order).
//
// Fixed tile choices (each clamped to the GEMM's extent; powers of two, as array-sized tiles are):
//   os-square  output-stationary squares: m = n = k = t, the largest power of two with 3t^2 <= S
//              (the buffer in three equal parts); when K <= t the whole reduction is on chip.
//   full-k     full-K strips: k = K, m = n = t, the largest power of two with m.K + K.n + m.n <= S;
//              none when even t = 1 does not fit (2K + 1 > S).
//   thesis     method.md sections 3-4: k = K, an m x K strip of A stationary while K x n strips of B
//              stream past it, the leftover holding extra B strips that Scan reuses at every turn.
//              The method does not fix m and n; here half the buffer holds the stationary strip and
//              its C tile (m the largest power of two with m.(K + n) <= S/2) and the other half the
//              streaming strips, n the largest power of two with K.n <= S/8 (four strips: the working
//              one and three extra). None when m = n = 1 does not fit in those halves.
// The orders: row = RowMajor, col = ColMajor, scan = the cheaper of ScanRows and ScanCols (the
// serpentine in either orientation). Each order lays out its partial tiles as Plan does (a Scan
// order puts the streaming dimension's fragment at the start of its walk, the turn taken least
// often), so the fragmented tiles at the turns are counted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "schedule/buffer_simulator.h"
#include "schedule/tiling_planner.h"

namespace locus::schedule {

enum class FixedTiles { OsSquare, FullK, Thesis };
const char* fixed_tiles_name(FixedTiles f);  // "os-square", "full-k", "thesis"
std::vector<FixedTiles> all_fixed_tiles();

struct TileSize {
  int64_t m = 0, n = 0, k = 0;
};
// The tiles of choice `f` for `g` on S entries, or none when the choice has no tile that fits.
std::optional<TileSize> fixed_tile_size(const GemmShape& g, int64_t S, FixedTiles f);

// The three orders of the comparison.
enum class CompareOrder { Row, Col, Scan };
const char* compare_order_name(CompareOrder o);  // "row", "col", "scan"

// One order's plan and the buffer simulator's replay of it.
struct OrderResult {
  Plan plan;
  SimResult sim;
  // The simulator counts the modelled traffic and stays within S.
  bool sim_agrees() const {
    return sim.violations == 0 && sim.reloads_c == 0 && sim.loads_a == plan.traffic.reads_a &&
           sim.loads_b == plan.traffic.reads_b && sim.stores_c == plan.traffic.writes_c;
  }
};

struct OrderComparison {
  GemmShape shape;
  int64_t S = 0;
  std::string tiles;  // "os-square", "full-k", "thesis" or "free"
  OrderResult row, col, scan;
  const OrderResult& get(CompareOrder o) const { return o == CompareOrder::Row ? row : o == CompareOrder::Col ? col : scan; }
  // The cheaper conventional order (row on a tie).
  const OrderResult& best_conventional() const {
    return col.plan.traffic.total < row.plan.traffic.total ? col : row;
  }
  // 1 - scan / best conventional, in traffic entries.
  double scan_saving() const;
  bool sim_agrees() const { return row.sim_agrees() && col.sim_agrees() && scan.sim_agrees(); }
};

// The same tiles in the three orders (the simulator run on each). Throws when the tiles exceed S.
OrderComparison compare_fixed(const GemmShape& g, int64_t S, const TileSize& t, const std::string& label);
// Each order with its own best tiles: the planner with `opts` restricted to the order's family.
OrderComparison compare_free(const GemmShape& g, int64_t S, PlannerOptions opts = {});

}  // namespace locus::schedule
