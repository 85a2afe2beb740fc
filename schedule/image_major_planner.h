// The image-major planner: at batch N > 1, which leading nodes of a network run image by image
// (each thread one whole image through them, batch 1) instead of layer by layer over the batch.
//
// Layer by layer, the first layers of a CNN write and read back N images' worth of their largest
// activations (MobileNetV2 at batch 8: the stem's output is 12.8 MB), which the L2 cannot hold;
// image by image, one image's are the working set, and a layer's output is read by the next while
// it is still in the L2 or near it. The price: each image reads the weights again, so only layers
// whose weights are small next to their activations go image-major.
//
// Input: per node, in graph order, a plain description (the native backend makes it from the graph:
// runtime/native/image_major.cpp). The prefix is the longest run of leading nodes that
//   - are per image (their runtime values are [N, ...] and no image reads another's: convs,
//     pooling, element-wise ops on same-shaped operands),
//   - read at least 1/kImageMajorMinInputFraction of the L2 per image (the activations that leave
//     the L2 layer by layer; an eighth, so that int8 blocks, whose activations are a quarter of fp32
//     ones, qualify too), and
//   - have at most a kImageMajorMaxWeightRatio-th of their per-image input + output in weights,
// cut back to the last node after which exactly one runtime value crosses to the rest (the value the
// image-major lanes hand over). Plain data in, plain plan out: tests/image_major_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace locus::schedule {

inline constexpr int64_t kImageMajorMinInputFraction = 8;  // input per image >= L2 / 8
inline constexpr int64_t kImageMajorMaxWeightRatio = 4;    // weights <= (input + output per image) / 4

struct ImageMajorNode {
  std::string name;
  bool per_image = false;     // see above
  int64_t in_bytes = 0;       // runtime inputs, per image
  int64_t out_bytes = 0;      // outputs, per image
  int64_t weight_bytes = 0;   // constant inputs
  bool single_cut_after = false;  // exactly one runtime value crosses from nodes [0, this] to the rest
  std::string crossing;           // with single_cut_after: that value's name (what the lanes hand over)
};

struct ImageMajorPlan {
  int64_t nodes = 0;   // the prefix: nodes [0, nodes) run image-major; 0 = none
  std::string why;     // with nodes == 0, why not; else what stopped the prefix
};

ImageMajorPlan plan_image_major(const std::vector<ImageMajorNode>& nodes, int64_t batch, int64_t l2_bytes);

}  // namespace locus::schedule
