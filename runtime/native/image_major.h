// Image-major execution of a network's first layers at batch N > 1 (the planner and its reasons:
// schedule/image_major_planner.h). The native backend splits the graph at the planner's cut: the
// prefix, compiled again at batch 1 once per thread (a "lane": its own arena, packed weights and
// scratch, one thread), takes whole images; the rest runs over the batch as before, starting from
// the one value the lanes hand over, which each lane writes into its image's slice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "schedule/image_major_planner.h"

namespace locus::native {

// The planner's input for graph g (one node per graph node, in order; empty when the graph has not
// exactly one runtime input, a 4-D float32 [N, C, H, W]).
std::vector<schedule::ImageMajorNode> image_major_nodes(const Graph& g);

struct ImageMajorSplit {
  schedule::ImageMajorPlan plan;
  std::string cut;   // the value handed over (an output of node plan.nodes - 1)
  Graph prefix;      // nodes [0, plan.nodes) at batch 1, output: cut
  Graph rest;        // the other nodes at batch N, input: cut
};

// The split for g at batch N planned for an L2 of l2_bytes; nullopt when the planner chose no prefix
// (`why` then says why, when non-null).
std::optional<ImageMajorSplit> split_image_major(const Graph& g, int64_t l2_bytes, std::string* why = nullptr);

}  // namespace locus::native
