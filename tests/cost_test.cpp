// The one MAC counter (graph/cost.h): hand-counted convolutions and GEMMs, and a network counts the
// same fused and unfused (the network benchmark left fused blocks out of its GFLOP/s).
#include <gtest/gtest.h>

#include "graph/cost.h"
#include "graph/ops.h"
#include "models/builders.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

namespace locus {
namespace {

TEST(Cost, HandCountedLayers) {
  test::GraphBuilder b;
  auto x = b.input("x", {2, 6, 9, 7});
  // 3x3 conv, 6 -> 4 channels, stride 2, pad 1: output [2,4,5,4], 6*3*3 MACs per output
  auto c = b.node("Conv", {x, b.random_constant("w", {4, 6, 3, 3}, 1)},
                  {{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"strides", std::vector<int64_t>{2, 2}}});
  // depthwise 3x3 on 4 channels: [2,4,5,4] outputs, 3*3 MACs each
  auto d = b.node("Conv", {c, b.random_constant("wd", {4, 1, 3, 3}, 2)},
                  {{"group", int64_t(4)}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  auto f = b.node("Flatten", {d});
  auto y = b.node("Gemm", {f, b.random_constant("wg", {80, 10}, 3)});
  Graph g = b.finish({y});
  infer_shapes(g);
  EXPECT_EQ(node_macs(g, g.nodes[0]), int64_t(2 * 4 * 5 * 4) * 6 * 9);
  EXPECT_EQ(node_macs(g, g.nodes[1]), int64_t(2 * 4 * 5 * 4) * 9);
  EXPECT_EQ(node_macs(g, g.nodes[2]), 0);
  EXPECT_EQ(node_macs(g, g.nodes[3]), int64_t(2) * 10 * 80);
  EXPECT_EQ(graph_macs(g), int64_t(160) * 54 + 160 * 9 + 1600);
}

// MobileNetV2 is 300.8M MACs (the published figure: 300M); the fused graph counts the same.
TEST(Cost, FusionKeepsTheCount) {
  const Graph built = models::build_mobilenet_v2();
  SessionOptions fused, unfused;
  unfused.pipeline.disabled_passes = {"fuse-inverted-residual"};
  const Session a = Session::from_graph(built, fused), b = Session::from_graph(built, unfused);
  int blocks = 0;
  for (const Node& n : a.graph().nodes) blocks += n.op == "FusedInvertedResidual";
  EXPECT_EQ(blocks, 17);
  EXPECT_EQ(graph_macs(a.graph()), graph_macs(b.graph()));
  EXPECT_GT(graph_macs(b.graph()), 295'000'000);
  EXPECT_LT(graph_macs(b.graph()), 305'000'000);
}

}  // namespace
}  // namespace locus
