#include "schedule/image_major_planner.h"

namespace locus::schedule {

ImageMajorPlan plan_image_major(const std::vector<ImageMajorNode>& nodes, int64_t batch, int64_t l2_bytes) {
  ImageMajorPlan p;
  if (batch <= 1) return {0, "batch 1"};
  if (l2_bytes <= 0) return {0, "L2 size unknown"};
  int64_t cut = 0;
  std::string stop = "every node qualifies";
  for (size_t k = 0; k < nodes.size(); ++k) {
    const ImageMajorNode& n = nodes[k];
    if (!n.per_image) {
      stop = "node '" + n.name + "' is not per image";
      break;
    }
    if (n.in_bytes * kImageMajorMinInputFraction < l2_bytes) {
      stop = "node '" + n.name + "' reads under 1/" + std::to_string(kImageMajorMinInputFraction) + " of the L2 per image";
      break;
    }
    if (n.weight_bytes * kImageMajorMaxWeightRatio > n.in_bytes + n.out_bytes) {
      stop = "node '" + n.name + "' has weights over 1/" + std::to_string(kImageMajorMaxWeightRatio) + " of its activations per image";
      break;
    }
    if (n.single_cut_after) cut = int64_t(k) + 1;
  }
  p.nodes = cut;
  p.why = cut > 0 ? stop : (nodes.empty() ? "no nodes" : stop + " (no single-value cut before it)");
  return p;
}

}  // namespace locus::schedule
