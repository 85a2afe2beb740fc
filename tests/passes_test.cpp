// The graph passes on hand-built graphs: what each matches, what it guarantees (same numbers,
// checked with the reference backend) and why it refuses.
#include <gtest/gtest.h>

#include <algorithm>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"
#include "graph/passes/pipeline.h"
#include "runtime/backend.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using locus::test::GraphBuilder;

namespace {

int count_op(const Graph& g, const std::string& op) {
  return int(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == op; }));
}

std::vector<Tensor> run_reference(Graph g, const std::map<std::string, Tensor>& in, bool optimize) {
  SessionOptions o;
  o.backend_name = "reference";
  o.pipeline.optimize = optimize;
  return Session::from_graph(std::move(g), o).run(in);
}

Graph conv_bn_graph(bool second_reader, bool clip) {
  GraphBuilder b;
  auto x = b.input("x", {1, 3, 7, 6});
  auto w = b.random_constant("w", {4, 3, 3, 3}, 1);
  auto c = b.node("Conv", {x, w}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"strides", std::vector<int64_t>{2, 2}}});
  auto bn = b.node("BatchNormalization",
                   {c, b.random_constant("s", {4}, 2, 0.5f, 1.5f), b.random_constant("bb", {4}, 3),
                    b.random_constant("m", {4}, 4), b.random_constant("v", {4}, 5, 0.1f, 2.f)},
                   {{"epsilon", 1e-3f}});
  std::vector<std::string> outs;
  if (clip)
    outs.push_back(b.node("Clip", {bn, b.constant("lo", Tensor::scalar_f32(0.f)), b.constant("hi", Tensor::scalar_f32(0.5f))}));
  else
    outs.push_back(bn);
  if (second_reader) outs.push_back(b.node("Relu", {c}));
  return b.finish(outs);
}

}  // namespace

TEST(Passes, FoldBatchNormKeepsNumbersAndRemovesTheNode) {
  Graph g = conv_bn_graph(false, false);
  std::map<std::string, Tensor> in{{"x", test::random_tensor({1, 3, 7, 6}, 9)}};
  auto before = run_reference(g, in, false);
  infer_shapes(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fold_batchnorm_pass()->run(g, remarks), 1);
  ASSERT_EQ(remarks.size(), 1u);  // the rewrite, reported as applied
  EXPECT_EQ(remarks[0].kind, RemarkKind::Applied);
  EXPECT_NE(remarks[0].message.find("folded into"), std::string::npos) << remarks[0].message;
  EXPECT_EQ(count_op(g, "BatchNormalization"), 0);
  ASSERT_EQ(count_op(g, "Conv"), 1);
  EXPECT_EQ(g.nodes[0].outputs[0], g.outputs[0]);
  auto after = run_reference(g, in, false);
  ASSERT_EQ(before[0].numel(), after[0].numel());
  EXPECT_LT(test::max_abs_diff(before[0].data<float>(), after[0].data<float>(), size_t(before[0].numel())), 1e-5);
}

TEST(Passes, FoldBatchNormRefusesWhenConvOutputHasAnotherReader) {
  Graph g = conv_bn_graph(true, false);
  infer_shapes(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fold_batchnorm_pass()->run(g, remarks), 0);
  EXPECT_EQ(count_op(g, "BatchNormalization"), 1);
  ASSERT_EQ(remarks.size(), 1u);
  EXPECT_NE(remarks[0].message.find("also read elsewhere"), std::string::npos) << remarks[0].message;
}

TEST(Passes, FuseActivationAttachesClipBoundsToConv) {
  Graph g = conv_bn_graph(false, true);
  std::map<std::string, Tensor> in{{"x", test::random_tensor({1, 3, 7, 6}, 10)}};
  auto before = run_reference(g, in, false);
  infer_shapes(g);
  PassReport r = PassManager::default_pipeline().run(g);
  ASSERT_EQ(g.nodes.size(), 1u);
  const Node& conv = g.nodes[0];
  EXPECT_EQ(conv.op, "Conv");
  EXPECT_EQ(conv.s("locus.activation", ""), "clip");
  EXPECT_FLOAT_EQ(conv.f("locus.activation_min", -1), 0.f);
  EXPECT_FLOAT_EQ(conv.f("locus.activation_max", -1), 0.5f);
  auto after = run_reference(g, in, false);
  EXPECT_LT(test::max_abs_diff(before[0].data<float>(), after[0].data<float>(), size_t(before[0].numel())), 1e-5);
  // some outputs must actually be clipped for the test to mean anything
  int clipped = 0;
  for (int64_t i = 0; i < after[0].numel(); ++i) clipped += after[0].data<float>()[i] == 0.5f || after[0].data<float>()[i] == 0.f;
  EXPECT_GT(clipped, 0);
}

TEST(Passes, FuseActivationRefusesWhenConvOutputIsAlsoAGraphOutput) {
  GraphBuilder b;
  auto x = b.input("x", {1, 2, 4, 4});
  auto c = b.node("Conv", {x, b.random_constant("w", {2, 2, 1, 1}, 1)});
  auto r = b.node("Relu", {c});
  Graph g = b.finish({c, r});
  infer_shapes(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_fuse_activation_pass()->run(g, remarks), 0);
  EXPECT_EQ(count_op(g, "Relu"), 1);
  ASSERT_FALSE(remarks.empty());
  EXPECT_NE(remarks[0].message.find("also read elsewhere"), std::string::npos);
}

TEST(Passes, ConstantFoldingTurnsTheShapeIdiomIntoAConstantReshape) {
  // X -> GlobalAveragePool -> Shape -> Gather(0) -> Unsqueeze(0) -> Concat([-1]) -> Reshape, as
  // PyTorch exports flatten.
  GraphBuilder b;
  auto x = b.input("x", {2, 5, 3, 3});
  auto p = b.node("GlobalAveragePool", {x});
  auto s = b.node("Shape", {p});
  auto gi = b.node("Gather", {s, b.constant("zero", Tensor::from_i64({}, {0}))}, {{"axis", int64_t(0)}});
  auto u = b.node("Unsqueeze", {gi, b.constant("axes", Tensor::from_i64({1}, {0}))});
  auto c = b.node("Concat", {u, b.constant("minus1", Tensor::from_i64({1}, {-1}))}, {{"axis", int64_t(0)}});
  auto r = b.node("Reshape", {p, c});
  Graph g = b.finish({r});
  // plain shape inference cannot see through the idiom: the Reshape's shape is not a constant
  Graph plain = g;
  EXPECT_THROW(infer_shapes(plain), Unsupported);
  infer_shapes_and_fold(g);
  EXPECT_EQ(g.info(r).shape, (Shape{2, 5}));
  PassManager::default_pipeline().run(g);
  EXPECT_EQ(count_op(g, "Shape") + count_op(g, "Gather") + count_op(g, "Unsqueeze") + count_op(g, "Concat"), 0);
  ASSERT_EQ(count_op(g, "Reshape"), 1);
  const Node& rs = g.nodes.back();
  const Tensor* shape = g.constant(rs.input(1));
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->to_i64(), (std::vector<int64_t>{2, -1}));
}

TEST(Passes, DeadCodeEliminationRemovesUnreadNodesAndConstants) {
  GraphBuilder b;
  auto x = b.input("x", {1, 4});
  auto y = b.node("Relu", {x});
  b.node("Mul", {x, b.random_constant("unused_w", {1, 4}, 3)});  // nobody reads it
  Graph g = b.finish({y});
  infer_shapes(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_dead_code_elimination_pass()->run(g, remarks), 2);  // the Mul and its constant
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_FALSE(g.is_constant("unused_w"));
}

TEST(Passes, EliminateIdentityRewiresReadersAndKeepsOutputNames) {
  GraphBuilder b;
  auto x = b.input("x", {1, 4});
  auto r = b.node("Relu", {x});
  auto i1 = b.node("Identity", {r});
  auto r2 = b.node("Relu", {i1});
  auto out = b.node("Identity", {r2}, {}, "final");
  Graph g = b.finish({out});
  infer_shapes(g);
  std::vector<PassRemark> remarks;
  EXPECT_EQ(make_eliminate_identity_pass()->run(g, remarks), 2);
  EXPECT_EQ(count_op(g, "Identity"), 0);
  EXPECT_EQ(g.nodes.back().outputs[0], "final");
  EXPECT_EQ(g.nodes.back().inputs[0], g.nodes.front().outputs[0]);
}

TEST(Passes, PipelineRejectsUnknownPassNames) {
  GraphBuilder b;
  auto x = b.input("x", {1, 4});
  Graph g = b.finish({b.node("Relu", {x})});
  SessionOptions o;
  o.pipeline.disabled_passes = {"no-such-pass"};
  EXPECT_THROW(Session::from_graph(g, o), Error);
}

// Folding stops at a total: ten foldable Adds of 2^23 elements each (under the per-node limit of
// 2^24) fold only up to 2^26 elements in all; the rest stay nodes for the backend to run (and for
// the memory budget to count).
TEST(Passes, ConstantFoldingStopsAtItsTotalLimit) {
  GraphBuilder b;
  const int64_t n = int64_t(1) << 23;
  b.constant("big", Tensor(DType::F32, {n}));
  auto x = b.input("x", {1});
  std::vector<std::string> outs;
  for (int k = 0; k < 10; ++k) {
    auto c = b.node("Add", {"big", b.constant("k" + std::to_string(k), Tensor::scalar_f32(float(k)))});
    outs.push_back(b.node("Add", {c, x}));
  }
  Graph g = b.finish(outs);
  EXPECT_EQ(infer_shapes_and_fold(g), 8);
  EXPECT_EQ(count_op(g, "Add"), 10 + 2);
  std::vector<PassRemark> remarks;
  Graph again = b.g;
  infer_shapes(again);
  EXPECT_EQ(make_constant_folding_pass()->run(again, remarks), 8);
  ASSERT_EQ(remarks.size(), 2u);
  EXPECT_NE(remarks[0].message.find("total limit"), std::string::npos) << remarks[0].message;
}

// One pipeline for every consumer: the backend's capabilities decide whether blocks are fused (no
// backend-name checks), an unknown pass name is refused, decomposition runs before the passes.
TEST(Pipeline, CapabilitiesDecideFusion) {
  EXPECT_TRUE(make_backend("native")->capabilities().fused_inverted_residual);
  EXPECT_FALSE(make_backend("native-unfused")->capabilities().fused_inverted_residual);
  EXPECT_FALSE(make_backend("onednn")->capabilities().fused_inverted_residual);
  EXPECT_TRUE(make_backend("reference")->capabilities().fused_inverted_residual);
  EXPECT_TRUE(make_backend("accel")->capabilities().fused_inverted_residual);

  GraphBuilder b;
  auto x = b.input("x", {1, 4, 6, 6});
  auto e = b.node("Conv", {x, b.random_constant("we", {8, 4, 1, 1}, 1)});
  auto r = b.node("Relu", {e});
  auto d = b.node("Conv", {r, b.random_constant("wd", {8, 1, 3, 3}, 2)},
                  {{"group", int64_t(8)}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  auto p = b.node("Conv", {d, b.random_constant("wp", {4, 8, 1, 1}, 3)});
  const Graph g = b.finish({p});
  for (bool fuse : {true, false}) {
    Graph h = g;
    PipelineOptions po;
    po.fuse_blocks = fuse;
    prepare_graph(h, po);
    EXPECT_EQ(count_op(h, "FusedInvertedResidual"), fuse ? 1 : 0);
  }
  Graph h = g;
  PipelineOptions bad;
  bad.disabled_passes = {"no-such-pass"};
  EXPECT_THROW(prepare_graph(h, bad), Error);
}
