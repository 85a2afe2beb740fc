// Counting what a graph costs: parameters and multiply-accumulates per node.
#pragma once

#include <cstdint>

#include "graph/ir.h"

namespace locus::cli {

// Elements of all float constants (weights, biases, folded BatchNorm included).
int64_t count_parameters(const Graph& g);
// Multiply-accumulates of one node (Conv, Gemm, MatMul; 0 for element-wise and data movement).
int64_t node_macs(const Graph& g, const Node& n);

}  // namespace locus::cli
