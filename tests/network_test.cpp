// Whole networks: the real MobileNetV2 against ONNX Runtime's stored outputs, and the in-code
// MobileNetV2 and ResNet-50 against the reference backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "importers/onnx/onnx_importer.h"
#include "models/builders.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"
#include "tests/real_model_util.h"

using namespace locus;
using locus::test::allclose;
using locus::test::argmax;
namespace fs = std::filesystem;

namespace {


}  // namespace

TEST(Network, RealMobileNetV2MatchesOnnxRuntimeOnAllFiveSets) {
  std::string dir = test::mobilenet_fp32_dir();
  if (dir.empty()) GTEST_SKIP() << "../shared/models not found (set LOCUS_MODEL_DIR)";
  Session s = Session::from_file(dir + "/mobilenetv2-12-fp32-from-int8.onnx");
  test::expect_matches_onnx_runtime(s, dir, "native");
  // the optimised graph has BatchNorm-free convs with fused ReLU6, no shape idiom left, and all 17
  // inverted-residual blocks fused (1 dw -> 1x1, 16 three-layer, 10 with the residual Add): only
  // the stem 3x3 and the last 1x1 remain as Convs
  int convs = 0, clips = 0, shapes = 0, fused = 0, residual = 0, adds = 0;
  for (auto& n : s.graph().nodes) {
    convs += n.op == "Conv";
    clips += n.op == "Clip";
    adds += n.op == "Add";
    shapes += n.op == "Shape" || n.op == "Gather";
    fused += n.op == "FusedInvertedResidual";
    residual += n.op == "FusedInvertedResidual" && n.i("residual", 0) == 1;
  }
  EXPECT_EQ(fused, 17);
  EXPECT_EQ(residual, 10);
  EXPECT_EQ(convs, 2);
  EXPECT_EQ(adds, 0);
  EXPECT_EQ(clips, 0);
  EXPECT_EQ(shapes, 0);
}

TEST(Network, RealMobileNetV2UnfusedMatchesOnnxRuntime) {
  std::string dir = test::mobilenet_fp32_dir();
  if (dir.empty()) GTEST_SKIP() << "../shared/models not found (set LOCUS_MODEL_DIR)";
  SessionOptions o;
  o.pipeline.disabled_passes = {"fuse-inverted-residual"};
  Session s = Session::from_file(dir + "/mobilenetv2-12-fp32-from-int8.onnx", o);
  test::expect_matches_onnx_runtime(s, dir, "native");
  int convs = 0, fused = 0;
  for (auto& n : s.graph().nodes) {
    convs += n.op == "Conv";
    fused += n.op == "FusedInvertedResidual";
  }
  EXPECT_EQ(convs, 52);
  EXPECT_EQ(fused, 0);
}

TEST(Network, BuiltMobileNetV2NativeAgreesWithReference) {
  Graph g = models::build_mobilenet_v2({});
  Tensor x = test::random_tensor({1, 3, 224, 224}, 11);
  SessionOptions ref;
  ref.backend_name = "reference";
  auto want = Session::from_graph(g, ref).run({{"input", x}});
  auto got = Session::from_graph(g).run({{"input", x}});
  std::string why;
  EXPECT_TRUE(allclose(got[0], want[0], 1e-3, 1e-4, why)) << why;
  EXPECT_EQ(argmax(got[0]), argmax(want[0]));
}

TEST(Network, BuiltResNet50NativeAgreesWithReference) {
  Graph g = models::build_resnet50({});
  Tensor x = test::random_tensor({1, 3, 224, 224}, 12);
  SessionOptions ref;
  ref.backend_name = "reference";
  ref.pipeline.optimize = false;  // the reference runs the graph exactly as built: Conv, BN, Relu, Add, MaxPool
  auto want = Session::from_graph(g, ref).run({{"input", x}});
  Session native = Session::from_graph(g);
  auto got = native.run({{"input", x}});
  ASSERT_EQ(got[0].shape, (Shape{1, 1000}));
  std::string why;
  EXPECT_TRUE(allclose(got[0], want[0], 1e-3, 1e-4, why)) << why;
  EXPECT_EQ(argmax(got[0]), argmax(want[0]));
  // every block's residual Add and the Relu after it run in the epilogue of the block's last conv
  int adds = 0, relus = 0, residual = 0;
  for (const Node& n : native.graph().nodes) {
    adds += n.op == "Add";
    relus += n.op == "Relu";
    residual += n.op == "Conv" && n.i("locus.residual", 0) == 1 && n.s("locus.activation", "") == "relu";
  }
  EXPECT_EQ(adds, 0);
  EXPECT_EQ(relus, 0);
  EXPECT_EQ(residual, 16);
  // the activations are reused: the arena is far below the sum of all intermediate values
  EXPECT_GT(native.activation_bytes(), 0);
  EXPECT_LT(native.activation_bytes(), 16 * 1024 * 1024);
}
