// Visiting orders of a tiled GEMM (docs/method.md sections 3-4), shared by the planners, the CPU
// kernels that execute their plans, the runtime's settings and the accelerator model.
//
// Order: the concrete order a plan walks its grid of C tiles in (rows i over M, columns j over N).
// TileOrder: the family a user chooses (--tile-order, LOCUS_TILE_ORDER); the planner picks the
// cheapest order of the family (orders_in) by modelled traffic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace locus::schedule {

enum class Order { RowMajor, ColMajor, ScanRows, ScanCols };
const char* order_name(Order o);
// RowMajor and ScanRows keep A stationary and stream B; the other two exchange the roles.
inline bool rows_oriented(Order o) { return o == Order::RowMajor || o == Order::ScanRows; }

// Which visiting orders the planner may choose from: Scan = ScanRows or ScanCols (serpentine),
// Row = RowMajor, Col = ColMajor. Tiles are chosen by modelled traffic within the family.
enum class TileOrder : uint8_t { Scan, Row, Col };
const char* tile_order_name(TileOrder o);
// "scan", "row" or "col" (case-sensitive); returns false for anything else.
bool parse_tile_order(const std::string& s, TileOrder* out);
// The orders of a family.
std::vector<Order> orders_in(TileOrder family);

}  // namespace locus::schedule
