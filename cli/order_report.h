// The fixed-tile order comparison (`locus energy --sweep LO:HI --tiles fixed`, `locus info --plans
// --tiles fixed`; docs/scan-order.md): for every distinct 1x1 convolution of a model and every buffer
// size, the DRAM traffic of row-major, column-major and Scan order under the same fixed tiles
// (schedule/order_comparison.h: os-square, full-k, thesis) and with each order's own best tiles
// (free), each checked against the buffer simulator, with the DRAM energy of the best conventional
// order and of Scan from the accelerator model's DRAM model (accel/evaluator.h), per layer and in
// total (layers weighted by how often their shape occurs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "accel/accel_config.h"
#include "accel/evaluator.h"
#include "accel/workload.h"
#include "schedule/order_comparison.h"

namespace locus::cli {

// "fixed" or "free" (the --tiles option); throws UsageError naming the value otherwise.
bool parse_tiles_fixed(const std::string& v);
// The --tiles help text shared by the commands.
extern const char* const kTilesHelp;

// A distinct 1x1 convolution shape of a model: its first layer and how many layers share the shape.
struct DistinctGemm {
  std::string name;  // the first layer with this shape
  schedule::GemmShape shape;
  int64_t count = 0;
  std::optional<accel::Layer> layer;  // the accelerator model's layer (for the DRAM energy)
};
// The Pointwise layers of `wl` (fused groups' stages included), one entry per (M, K, N), in order
// of first appearance; elem_bytes = `elem_bytes`.
std::vector<DistinctGemm> distinct_pointwise(const accel::Workload& wl, int elem_bytes);

// One (layer, buffer size, tile choice) of the comparison. A fixed choice that has no tile for the
// layer on that buffer has no comparison.
struct OrderRow {
  size_t layer = 0;  // index into the DistinctGemm list
  int64_t S = 0;
  std::string tiles;  // os-square, full-k, thesis, free
  std::optional<schedule::OrderComparison> cmp;
  double e_conventional_pj = 0, e_scan_pj = 0;  // DRAM energy (0 when not evaluated)
};

struct OrderTableOptions {
  std::vector<int64_t> sizes;          // buffer sizes in entries
  std::vector<std::string> tiles = {"os-square", "full-k", "thesis", "free"};
  schedule::PlannerOptions free_opts;  // the planner options of the free tiles (orders ignored)
  // With a workload and config: the DRAM energy of each layer's best conventional and Scan plan.
  const accel::Workload* wl = nullptr;
  const accel::AccelConfig* cfg = nullptr;
  accel::Pacing pacing = accel::Pacing::Compute;
  bool progress = false;  // one line per buffer size on stderr
};

// Every row of the comparison (sizes outermost, then tile choices, then layers). Throws Error when
// the simulator disagrees with the modelled traffic of a plan (naming the layer, tiles and order).
std::vector<OrderRow> order_table(const std::vector<DistinctGemm>& layers, const OrderTableOptions& o);

// Prints the rows as a table (per buffer size and tile choice: one line per layer, then the total)
// or as CSV (one line per row, then the totals with layer "total").
void print_order_table(const std::vector<DistinctGemm>& layers, const std::vector<OrderRow>& rows, bool csv,
                       bool with_energy);

// `locus energy MODEL --sweep LO:HI --tiles fixed`: the comparison of every distinct 1x1 conv of
// `wl` at `sizes` on `cfg` (entries of its word size; free tiles with the accelerator model's planner
// options, energy under `pacing`), printed as a table or CSV; with `svg` also a plot of the total
// Scan saving against the buffer size, one line per tile choice.
void print_order_sweep(const accel::Workload& wl, const accel::AccelConfig& cfg, const std::vector<int64_t>& sizes,
                       accel::Pacing pacing, bool csv, const std::string& svg, const std::string& title);

}  // namespace locus::cli
