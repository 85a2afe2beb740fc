// Counting what a graph costs: parameters and multiply-accumulates, the one MAC counter of the
// project (locus info, locus decompose, the network benchmark's GFLOP/s).
#pragma once

#include <cstdint>

#include "graph/ir.h"
#include "graph/op_registry.h"

namespace locus {

// Elements of a shape shape inference has already checked (no limit: checked_numel in graph/ir.h is
// for shapes read from a file).
int64_t shape_elements(const Shape& s);

// Elements of all float constants (weights, biases, folded BatchNorm included).
int64_t count_parameters(const Graph& g);
// The MAC formula of each op that multiplies (by op key: "Conv", "locus.FusedInvertedResidual"),
// named by what it counts. Ops without an entry count 0 (element-wise, pooling, data movement).
using MacCounter = int64_t (*)(const Graph& g, const Node& n);
using MacTable = OpRegistry<MacCounter>;
const MacTable& mac_table();
// Multiply-accumulates of one node (Conv, Gemm, MatMul, FusedInvertedResidual: all its stages; 0 for
// element-wise and data movement).
int64_t node_macs(const Graph& g, const Node& n);
// Sum over the nodes: the same before and after fusion.
int64_t graph_macs(const Graph& g);

}  // namespace locus
