// Image-major execution at batch > 1: the planner on plain node lists, the graph analysis it is fed
// (which cuts hand over exactly one value), and whole networks (fp32 and int8) run image-major
// against the same session layer by layer and against the reference backend.
#include <gtest/gtest.h>

#include <filesystem>

#include "graph/ops.h"
#include "models/builders.h"
#include "runtime/native/image_major.h"
#include "runtime/session.h"
#include "schedule/image_major_planner.h"
#include "tests/graph_builder_util.h"
#include "tests/test_support.h"

using namespace locus;
using locus::schedule::ImageMajorNode;
using locus::schedule::plan_image_major;
using locus::test::allclose;

namespace {

constexpr int64_t kL2 = 1 << 20;

ImageMajorNode big(const std::string& name, bool cut = true) {
  ImageMajorNode n;
  n.name = name;
  n.per_image = true;
  n.in_bytes = kL2;  // a whole L2 per image
  n.out_bytes = kL2 / 2;
  n.weight_bytes = 1024;
  n.single_cut_after = cut;
  return n;
}

}  // namespace

TEST(ImageMajorPlanner, NothingAtBatchOneOrWithoutAnL2) {
  std::vector<ImageMajorNode> nodes = {big("a"), big("b")};
  EXPECT_EQ(plan_image_major(nodes, 1, kL2).nodes, 0);
  EXPECT_EQ(plan_image_major(nodes, 1, kL2).why, "batch 1");
  EXPECT_EQ(plan_image_major(nodes, 8, 0).nodes, 0);
  EXPECT_EQ(plan_image_major(nodes, 8, kL2).nodes, 2);
}

TEST(ImageMajorPlanner, StopsAtSmallInputsLargeWeightsAndOtherOps) {
  std::vector<ImageMajorNode> nodes = {big("a"), big("b"), big("c"), big("d")};
  const int64_t f = schedule::kImageMajorMinInputFraction;
  nodes[2].in_bytes = kL2 / f - 1;  // just under the threshold
  auto p = plan_image_major(nodes, 4, kL2);
  EXPECT_EQ(p.nodes, 2);
  EXPECT_NE(p.why.find("'c' reads under 1/" + std::to_string(f)), std::string::npos) << p.why;
  nodes[2].in_bytes = kL2 / f;  // exactly the threshold qualifies
  EXPECT_EQ(plan_image_major(nodes, 4, kL2).nodes, 4);

  nodes[1].weight_bytes = (nodes[1].in_bytes + nodes[1].out_bytes) / schedule::kImageMajorMaxWeightRatio + 1;
  p = plan_image_major(nodes, 4, kL2);
  EXPECT_EQ(p.nodes, 1);
  EXPECT_NE(p.why.find("'b' has weights"), std::string::npos) << p.why;
  nodes[1].weight_bytes = 1024;

  nodes[3].per_image = false;
  p = plan_image_major(nodes, 4, kL2);
  EXPECT_EQ(p.nodes, 3);
  EXPECT_NE(p.why.find("'d' is not per image"), std::string::npos) << p.why;
}

TEST(ImageMajorPlanner, CutsBackToTheLastSingleValueBoundary) {
  // b's output and a's both cross after b (a skip connection): the prefix ends after a or after c
  std::vector<ImageMajorNode> nodes = {big("a"), big("b", false), big("c"), big("d", false), big("e")};
  nodes[4].per_image = false;
  EXPECT_EQ(plan_image_major(nodes, 2, kL2).nodes, 3);
  nodes[2].single_cut_after = false;
  nodes[0].single_cut_after = false;
  auto p = plan_image_major(nodes, 2, kL2);
  EXPECT_EQ(p.nodes, 0);
  EXPECT_NE(p.why.find("no single-value cut"), std::string::npos) << p.why;
}

namespace {

// A padded 3x3 conv of x with the 8 -> 8 weights "w" (made on first use).
std::string conv3x3(test::GraphBuilder& b, const std::string& x) {
  if (!b.g.constants.count("w")) b.random_constant("w", {8, 8, 3, 3}, 1);
  return b.node("Conv", {x, "w"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
}

}  // namespace

TEST(ImageMajorNodes, ASkipConnectionIsNoCutUntilItCloses) {
  test::GraphBuilder b;
  std::string a = conv3x3(b, b.input("x", {4, 8, 64, 64}));
  std::string r = b.node("Relu", {a});
  std::string c = conv3x3(b, r);
  std::string s = b.node("Add", {a, c});
  std::string p = b.node("GlobalAveragePool", {s});
  Graph g = b.finish({p});
  infer_shapes(g);
  auto nodes = native::image_major_nodes(g);
  ASSERT_EQ(nodes.size(), 5u);
  EXPECT_TRUE(nodes[0].single_cut_after);   // a's output only
  EXPECT_FALSE(nodes[1].single_cut_after);  // a and r
  EXPECT_FALSE(nodes[2].single_cut_after);  // a and c
  EXPECT_TRUE(nodes[3].single_cut_after);   // s only
  EXPECT_FALSE(nodes[4].single_cut_after);  // the graph output
  EXPECT_FALSE(nodes[4].per_image);         // a global pool: per image too, but not on the list
  EXPECT_TRUE(nodes[0].per_image && nodes[3].per_image);
  EXPECT_EQ(nodes[0].in_bytes, 8 * 64 * 64 * 4);            // per image
  EXPECT_EQ(nodes[3].in_bytes, 2 * 8 * 64 * 64 * 4);        // two operands
  EXPECT_EQ(nodes[0].weight_bytes, 8 * 8 * 9 * 4);
  std::string why;
  auto split = native::split_image_major(g, 128 * 1024, &why);
  ASSERT_TRUE(split.has_value()) << why;
  EXPECT_EQ(split->plan.nodes, 4);
  EXPECT_EQ(split->cut, s);
  EXPECT_EQ(split->prefix.info(s).shape, (Shape{1, 8, 64, 64}));
  EXPECT_EQ(split->rest.inputs, std::vector<std::string>{s});
  EXPECT_EQ(split->rest.nodes.size(), 1u);
  EXPECT_EQ(split->prefix.constants.count("w"), 1u);
  EXPECT_EQ(split->rest.constants.count("w"), 0u);
}

TEST(ImageMajorNodes, NoCutBeforeAQuantizeLinearReadingTheValueAlone) {
  test::GraphBuilder b;
  std::string r = b.node("Relu", {conv3x3(b, b.input("x", {2, 8, 32, 32}))});
  std::string q = b.node("QuantizeLinear", {r, b.constant("s", Tensor::scalar_f32(0.1f))});
  std::string y = b.node("DequantizeLinear", {q, "s"});
  Graph g = b.finish({y});
  infer_shapes(g);
  auto nodes = native::image_major_nodes(g);
  ASSERT_EQ(nodes.size(), 4u);
  EXPECT_TRUE(nodes[0].single_cut_after);   // a, read by the Relu
  EXPECT_FALSE(nodes[1].single_cut_after);  // r, read by the QuantizeLinear alone
  EXPECT_TRUE(nodes[2].per_image);          // the QuantizeLinear itself is per image
  // a graph with two inputs: no prefix, and the reason says so
  test::GraphBuilder b2;
  std::string u = b2.input("u", {4, 8, 64, 64}), v = b2.input("v", {4, 8, 64, 64});
  Graph g2 = b2.finish({b2.node("Add", {u, v})});
  infer_shapes(g2);
  std::string why;
  EXPECT_FALSE(native::split_image_major(g2, 1 << 20, &why).has_value());
  EXPECT_EQ(why, "not one 4-D float input");
}

namespace {

// MobileNetV2 at 160x160 and batch 3 on 2 threads (an uneven split: 2 images, then 1) with the L2
// fixed at 1 MiB: the stem and the first four blocks read at least an eighth of it per image (the
// fourth 154 KB, the fifth 51 KB).
SessionOptions im_options(bool image_major) {
  SessionOptions o;
  o.threads = 2;
  o.backend.l2_bytes = 1 << 20;
  o.backend.image_major = image_major;
  return o;
}

}  // namespace

TEST(ImageMajorNetwork, MobileNetV2AgreesWithLayerByLayerAndTheReference) {
  models::BuildOptions bo;
  bo.batch = 3;
  bo.resolution = 160;
  Graph g = models::build_mobilenet_v2(bo);
  Tensor x = test::random_tensor({3, 3, 160, 160}, 21);
  Session im = Session::from_graph(g, im_options(true));
  const std::string d = im.executable().describe();
  EXPECT_NE(d.find("image-major: the first 5 nodes"), std::string::npos) << d;
  Session lbl = Session::from_graph(g, im_options(false));
  EXPECT_NE(lbl.executable().describe().find("image-major: none"), std::string::npos);
  SessionOptions ref;
  ref.backend_name = "reference";
  auto want = Session::from_graph(g, ref).run({{"input", x}});
  auto got = im.run({{"input", x}});
  auto base = lbl.run({{"input", x}});
  std::string why;
  EXPECT_TRUE(allclose(got[0], base[0], 1e-5, 1e-6, why)) << why;
  EXPECT_TRUE(allclose(got[0], want[0], 1e-3, 1e-4, why)) << why;
  // a second run gives the same (the lanes' arenas are reused)
  auto again = im.run({{"input", x}});
  EXPECT_EQ(again[0].bytes, got[0].bytes);
  // each image as if alone: the batch-1 session's output (its later layers are planned for batch 1:
  // another summation order)
  models::BuildOptions one = bo;
  one.batch = 1;
  Session single = Session::from_graph(models::build_mobilenet_v2(one), im_options(true));
  for (int64_t n = 0; n < 3; ++n) {
    Tensor xn(DType::F32, {1, 3, 160, 160});
    std::copy(x.data<float>() + n * xn.numel(), x.data<float>() + (n + 1) * xn.numel(), xn.data<float>());
    auto yn = single.run({{"input", xn}});
    Tensor gn(DType::F32, {1, 1000});
    std::copy(got[0].data<float>() + n * 1000, got[0].data<float>() + (n + 1) * 1000, gn.data<float>());
    EXPECT_TRUE(allclose(gn, yn[0], 1e-4, 1e-5, why)) << "image " << n << ": " << why;
  }
}

TEST(ImageMajorNetwork, ProfileAndPlansCoverEveryNodeOnce) {
  models::BuildOptions bo;
  bo.batch = 2;
  bo.resolution = 160;
  Graph g = models::build_mobilenet_v2(bo);
  Session im = Session::from_graph(g, im_options(true));
  ASSERT_NE(im.executable().describe().find("image-major: the first 5 nodes"), std::string::npos);
  im.executable().set_profiling(true);
  im.run({{"input", test::random_tensor({2, 3, 160, 160}, 5)}});
  const auto t = im.executable().timings();
  ASSERT_EQ(t.size(), im.graph().nodes.size());
  for (size_t k = 0; k < t.size(); ++k) {
    EXPECT_EQ(t[k].node, im.graph().nodes[k].name);
    EXPECT_GT(t[k].ms, 0.0) << t[k].node;
  }
  EXPECT_EQ(im.executable().implementations().size(), im.graph().nodes.size());
  EXPECT_EQ(im.executable().fused_block_plans().size(), 17u);
  // the lanes' arenas count: more than the layer-by-layer session's rest alone
  EXPECT_GT(im.activation_bytes(), 0);
}

// The real int8 MobileNetV2 at batch 3: its first blocks (the stem fused into the first) run
// image-major, uint8 values handed over; integer arithmetic, so the outputs are those of the
// layer-by-layer session bit for bit.
TEST(ImageMajorNetwork, Int8MobileNetV2IsBitExactWithLayerByLayer) {
  const std::string models = test::shared_models_dir();
  const std::string path = models + "/mobilenetv2-12-int8/mobilenetv2-12-int8.onnx";
  ASSERT_FALSE(models.empty() || !std::filesystem::exists(path))
      << "the int8 model is missing: ../shared/models/mobilenetv2-12-int8 (or $LOCUS_MODEL_DIR)";
  SessionOptions a = im_options(true), b = im_options(false);
  a.batch = b.batch = 3;
  Session im = Session::from_file(path, a), lbl = Session::from_file(path, b);
  const std::string d = im.executable().describe();
  EXPECT_NE(d.find("image-major: the first"), std::string::npos) << d;
  const Tensor x = test::random_tensor({3, 3, 224, 224}, 8, 0.f, 1.f);
  const auto got = im.run({{"input", x}}), want = lbl.run({{"input", x}});
  ASSERT_EQ(got[0].shape, (Shape{3, 1000}));
  EXPECT_EQ(got[0].bytes, want[0].bytes);
}
