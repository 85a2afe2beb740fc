// The oneDNN backends ("onednn", "onednn-dwfused") against the native and reference backends: layer
// by layer on small ragged graphs (channel counts that are not multiples of oneDNN's blocks), then
// whole networks, then the real MobileNetV2 against ONNX Runtime's stored outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "importers/onnx/onnx_importer.h"
#include "models/builders.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"
#include "tests/real_model_util.h"

using namespace locus;
using namespace locus::test;  // GraphBuilder, random_tensor, allclose, ...

namespace {

using A = std::map<std::string, Attr>;
using Ints = std::vector<int64_t>;
using Inputs = std::map<std::string, Tensor>;

const std::vector<std::string> kOnednn = {"onednn", "onednn-dwfused"};


std::vector<Tensor> run_with(const Graph& g, const Inputs& in, const std::string& backend, bool optimize = true) {
  SessionOptions o;
  o.backend_name = backend;
  o.pipeline.optimize = optimize;
  return Session::from_graph(g, o).run(in);
}

// Every oneDNN backend agrees with native (optimised graph) and reference (graph as built).
void expect_matches(const Graph& g, const Inputs& in, const std::string& what, bool optimize = true,
                    double rtol = 1e-4, double atol = 1e-4) {
  auto nat = run_with(g, in, "native", optimize);
  auto ref = run_with(g, in, "reference", false);
  for (auto& b : kOnednn) {
    auto got = run_with(g, in, b, optimize);
    ASSERT_EQ(got.size(), nat.size()) << what << " [" << b << "]";
    for (size_t i = 0; i < got.size(); ++i) {
      std::string why;
      EXPECT_TRUE(allclose(got[i], nat[i], rtol, atol, why)) << what << " [" << b << " vs native] output " << i << ": " << why;
      EXPECT_TRUE(allclose(got[i], ref[i], rtol, atol, why)) << what << " [" << b << " vs reference] output " << i << ": " << why;
    }
  }
}

// "onednn-dwfused: F of E pw->dw pairs fused..." -> {F, E}; {-1, -1} if absent.
std::pair<int, int> fused_counts(const std::string& describe) {
  int f = -1, e = -1;
  auto pos = describe.find("onednn-dwfused: ");
  if (pos == std::string::npos || std::sscanf(describe.c_str() + pos, "onednn-dwfused: %d of %d", &f, &e) != 2) return {-1, -1};
  return {f, e};
}

}  // namespace

TEST(OnednnBackend, IsRegistered) {
  auto names = backend_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "onednn"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "onednn-dwfused"), names.end());
  EXPECT_EQ(make_backend("onednn")->name(), "onednn");
  EXPECT_EQ(make_backend("onednn-dwfused")->name(), "onednn-dwfused");
}

TEST(OnednnBackend, ConvVariantsWithFusedReluAndRelu6) {
  struct Case { std::string name; Shape x, w; A attrs; bool bias; };
  std::vector<Case> cases = {
      {"pointwise 1x1", {1, 5, 9, 7}, {6, 5, 1, 1}, {}, true},
      {"depthwise 3x3 s1", {2, 6, 9, 7}, {6, 1, 3, 3}, {{"group", int64_t(6)}, {"pads", Ints{1, 1, 1, 1}}}, true},
      {"depthwise 3x3 s2", {1, 7, 10, 9}, {7, 1, 3, 3}, {{"group", int64_t(7)}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}, false},
      {"depthwise 3x3 s2 asymmetric pads", {1, 12, 11, 8}, {12, 1, 3, 3}, {{"group", int64_t(12)}, {"pads", Ints{0, 1, 1, 0}}, {"strides", Ints{2, 2}}}, true},
      {"stem 3x3 s2", {1, 3, 11, 13}, {8, 3, 3, 3}, {{"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}, true},
      {"grouped 3x3", {1, 4, 8, 8}, {6, 2, 3, 3}, {{"group", int64_t(2)}, {"auto_pad", std::string("SAME_UPPER")}}, true},
      {"strided 1x1", {1, 5, 9, 9}, {3, 5, 1, 1}, {{"strides", Ints{2, 2}}}, false},
      {"stride 3 with leftover rows", {1, 4, 10, 11}, {5, 4, 3, 3}, {{"strides", Ints{3, 3}}}, true},
      {"dilated 7x7", {1, 3, 12, 12}, {4, 3, 7, 7}, {{"pads", Ints{3, 2, 1, 3}}, {"strides", Ints{2, 2}}, {"dilations", Ints{1, 2}}}, true},
  };
  uint32_t seed = 200;
  for (auto& c : cases)
    for (std::string act : {"", "relu", "relu6", "clip", "clip-min-only"}) {
      GraphBuilder b;
      auto x = b.input("x", c.x);
      std::vector<std::string> ins{x, b.random_constant("w", c.w, seed++)};
      if (c.bias) ins.push_back(b.random_constant("b", {c.w[0]}, seed++));
      auto y = b.node("Conv", ins, c.attrs);
      if (act == "relu") y = b.node("Relu", {y});
      if (act == "relu6") y = b.node("Clip", {y, b.constant("lo", Tensor::scalar_f32(0.f)), b.constant("hi", Tensor::scalar_f32(6.f))});
      if (act == "clip") y = b.node("Clip", {y, b.constant("lo", Tensor::scalar_f32(-0.3f)), b.constant("hi", Tensor::scalar_f32(0.5f))});
      if (act == "clip-min-only") y = b.node("Clip", {y, b.constant("lo", Tensor::scalar_f32(0.2f))});  // max = +inf
      Graph g = b.finish({y});
      Inputs in{{"x", random_tensor(c.x, seed++, -4.f, 4.f)}};
      // the session's passes fuse the activation into the Conv: the oneDNN post-op path is tested
      SessionOptions o;
      o.backend_name = "onednn";
      Session s = Session::from_graph(g, o);
      ASSERT_EQ(s.graph().nodes.size(), 1u) << c.name;
      EXPECT_EQ(s.graph().nodes[0].s("locus.activation", ""), act == "relu" ? "relu" : act.empty() ? "" : "clip");
      expect_matches(g, in, c.name + " act=" + act);
    }
}

TEST(OnednnBackend, StandaloneActivationsAndBatchNormWithoutPasses) {
  GraphBuilder b;
  auto x = b.input("x", {2, 5, 6, 7});
  auto c = b.node("Conv", {x, b.random_constant("w", {6, 5, 3, 3}, 1)}, {{"pads", Ints{1, 1, 1, 1}}});
  auto bn = b.node("BatchNormalization", {c, b.random_constant("s", {6}, 2), b.random_constant("bb", {6}, 3),
                                          b.random_constant("m", {6}, 4), b.random_constant("v", {6}, 5, 0.5f, 1.5f)},
                   {{"epsilon", 1e-3f}});
  auto r = b.node("Relu", {bn});
  auto cl = b.node("Clip", {bn, b.constant("lo", Tensor::scalar_f32(0.f)), b.constant("hi", Tensor::scalar_f32(0.7f))});
  Graph g = b.finish({r, cl});
  Inputs in{{"x", random_tensor({2, 5, 6, 7}, 6)}};
  expect_matches(g, in, "conv-bn-relu/clip unoptimised", /*optimize=*/false);
  expect_matches(g, in, "conv-bn-relu/clip optimised");
}

TEST(OnednnBackend, Pooling) {
  GraphBuilder b;
  auto x = b.input("x", {2, 5, 9, 11});
  auto mp = b.node("MaxPool", {x}, {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}});
  auto mpc = b.node("MaxPool", {x}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t(1)}});
  auto mpd = b.node("MaxPool", {x}, {{"kernel_shape", Ints{2, 2}}, {"dilations", Ints{2, 1}}});
  auto ap_in = b.node("AveragePool", {x}, {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}, {"count_include_pad", int64_t(1)}});
  auto ap_ex = b.node("AveragePool", {x}, {{"kernel_shape", Ints{3, 2}}, {"strides", Ints{2, 1}}, {"pads", Ints{1, 0, 1, 1}}});
  auto ap_ceil = b.node("AveragePool", {x}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t(1)}});
  auto gp = b.node("GlobalAveragePool", {x});
  Graph g = b.finish({mp, mpc, mpd, ap_in, ap_ex, ap_ceil, gp});
  expect_matches(g, {{"x", random_tensor({2, 5, 9, 11}, 7)}}, "pooling");
}

TEST(OnednnBackend, PoolingAfterBlockedConv) {
  // conv output in oneDNN's blocked layout feeding the pools directly (ResNet stem, MobileNet head)
  GraphBuilder b;
  auto x = b.input("x", {1, 3, 17, 17});
  auto c = b.node("Relu", {b.node("Conv", {x, b.random_constant("w", {12, 3, 7, 7}, 1), b.random_constant("b", {12}, 2)},
                                  {{"pads", Ints{3, 3, 3, 3}}, {"strides", Ints{2, 2}}})});
  auto mp = b.node("MaxPool", {c}, {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}});
  auto gp = b.node("GlobalAveragePool", {mp});
  auto fl = b.node("Flatten", {gp}, {{"axis", int64_t(1)}});
  Graph g = b.finish({mp, fl});
  expect_matches(g, {{"x", random_tensor({1, 3, 17, 17}, 3)}}, "conv-maxpool-gap-flatten");
}

TEST(OnednnBackend, BinaryOps) {
  GraphBuilder b;
  auto x = b.input("x", {2, 6, 5, 4});
  auto y = b.input("y", {2, 6, 5, 4});
  auto cx = b.node("Conv", {x, b.random_constant("w", {6, 6, 1, 1}, 1)});  // blocked layout
  auto s1 = b.node("Add", {cx, y});                                       // blocked + plain
  auto s2 = b.node("Add", {cx, b.node("Conv", {y, b.random_constant("w2", {6, 6, 3, 3}, 2)}, {{"pads", Ints{1, 1, 1, 1}}})});
  auto s3 = b.node("Mul", {b.random_constant("c", {6, 1, 1}, 3), s2});    // per channel, constant first
  auto s4 = b.node("Sub", {s3, b.random_constant("r", {4}, 4)});          // last axis
  auto s5 = b.node("Div", {s4, b.random_constant("d", {2, 1, 5, 1}, 5, 1.f, 2.f)});
  auto s6 = b.node("Add", {s5, b.constant("k", Tensor::scalar_f32(0.25f))});
  Graph g = b.finish({s1, s6});
  expect_matches(g, {{"x", random_tensor({2, 6, 5, 4}, 6)}, {"y", random_tensor({2, 6, 5, 4}, 7)}}, "binary");
}

TEST(OnednnBackend, GemmForms) {
  GraphBuilder b;
  auto x = b.input("x", {3, 4, 2, 2});
  auto fl = b.node("Flatten", {b.node("Relu", {x})}, {{"axis", int64_t(1)}});  // [3, 16]
  // the classifier form: inner product
  auto g1 = b.node("Gemm", {fl, b.random_constant("w", {10, 16}, 1), b.random_constant("c", {10}, 2)}, {{"transB", int64_t(1)}});
  // transB = 0, alpha, beta, [1, N] bias: still inner product with folded scales
  auto g2 = b.node("Gemm", {fl, b.random_constant("w2", {16, 5}, 3), b.random_constant("c2", {1, 5}, 4)}, {{"alpha", 0.5f}, {"beta", 2.f}});
  // transA and a [M, 1] C: matmul
  auto at = b.input("at", {7, 3});
  auto g3 = b.node("Gemm", {at, b.random_constant("w3", {7, 4}, 5), b.random_constant("c3", {3, 1}, 6)}, {{"transA", int64_t(1)}});
  // no C
  auto g4 = b.node("Gemm", {fl, b.random_constant("w4", {6, 16}, 7)}, {{"transB", int64_t(1)}});
  auto mm = b.node("MatMul", {b.input("m", {2, 3, 7}), b.random_constant("mw", {7, 6}, 8)});
  // everything at run time, alpha and beta: matmul with post-ops
  auto ga = b.input("ga", {3, 5}), gb = b.input("gb", {4, 5}), gc = b.input("gc", {3, 4}), gv = b.input("gv", {4});
  auto g5 = b.node("Gemm", {ga, gb, gc}, {{"transB", int64_t(1)}, {"alpha", 0.7f}, {"beta", 1.5f}});
  auto g6 = b.node("Gemm", {ga, gb, gv}, {{"transB", int64_t(1)}, {"alpha", 2.f}});
  auto g7 = b.node("Gemm", {at, b.input("gk", {7, 2})}, {{"transA", int64_t(1)}, {"alpha", 0.5f}});
  Graph g = b.finish({g1, g2, g3, g4, mm, g5, g6, g7});
  expect_matches(g, {{"x", random_tensor({3, 4, 2, 2}, 9)}, {"at", random_tensor({7, 3}, 10)}, {"m", random_tensor({2, 3, 7}, 11)},
                     {"ga", random_tensor({3, 5}, 12)}, {"gb", random_tensor({4, 5}, 13)}, {"gc", random_tensor({3, 4}, 14)},
                     {"gv", random_tensor({4}, 15)}, {"gk", random_tensor({7, 2}, 16)}},
                 "gemm");
}

TEST(OnednnBackend, ReshapeOfBlockedValueAndConcatSoftmax) {
  GraphBuilder b;
  auto x = b.input("x", {1, 6, 4, 5});
  auto c = b.node("Conv", {x, b.random_constant("w", {10, 6, 3, 3}, 1)}, {{"pads", Ints{1, 1, 1, 1}}});
  auto rs = b.node("Reshape", {c, b.constant("shape", Tensor::from_i64({3}, {1, 10, 20}))});
  auto cat2 = b.node("Concat", {c, x}, {{"axis", int64_t(1)}});
  auto sm = b.node("Softmax", {cat2}, {{"axis", int64_t(1)}});
  auto sq = b.node("Squeeze", {rs, b.constant("axes", Tensor::from_i64({1}, {0}))});
  Graph g = b.finish({sq, sm});
  expect_matches(g, {{"x", random_tensor({1, 6, 4, 5}, 2)}}, "reshape/concat/softmax");
}

TEST(OnednnBackend, UnmappedOpsAreUnsupportedByName) {
  GraphBuilder b;
  auto x = b.input("x", {2, 3, 4, 5});
  auto ga = b.node("Gather", {x, b.input("idx", {2})}, {{"axis", int64_t(1)}});
  b.g.values["idx"].dtype = DType::I64;
  Graph g = b.finish({ga});
  for (auto& name : kOnednn) {
    SessionOptions o;
    o.backend_name = name;
    try {
      Session::from_graph(g, o);
      ADD_FAILURE() << name << " accepted a Gather with runtime indices";
    } catch (const Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find("Gather"), std::string::npos) << e.what();
    }
  }
}

TEST(OnednnBackend, DwFusionOfPointwiseThenDepthwise) {
  // pw(1x1, relu6) -> dw(3x3 s1, relu6) -> pw -> dw(3x3 s2, relu) ; the last pw's output is also a
  // graph output, so only the first pair (and the middle one) may fuse
  GraphBuilder b;
  auto x = b.input("x", {1, 8, 14, 13});
  auto relu6 = [&](const std::string& v) {
    return b.node("Clip", {v, b.constant("z", Tensor::scalar_f32(0.f)), b.constant("six", Tensor::scalar_f32(6.f))});
  };
  auto p1 = relu6(b.node("Conv", {x, b.random_constant("w1", {24, 8, 1, 1}, 1), b.random_constant("b1", {24}, 2)}));
  auto d1 = relu6(b.node("Conv", {p1, b.random_constant("w2", {24, 1, 3, 3}, 3), b.random_constant("b2", {24}, 4)},
                         {{"group", int64_t(24)}, {"pads", Ints{1, 1, 1, 1}}}));
  auto p2 = b.node("Relu", {b.node("Conv", {d1, b.random_constant("w3", {16, 24, 1, 1}, 5)})});
  auto d2 = b.node("Relu", {b.node("Conv", {p2, b.random_constant("w4", {16, 1, 3, 3}, 6)},
                                   {{"group", int64_t(16)}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}})});
  auto p3 = b.node("Conv", {d2, b.random_constant("w5", {8, 16, 1, 1}, 7), b.random_constant("b5", {8}, 8)});
  auto d3 = b.node("Conv", {p3, b.random_constant("w6", {8, 1, 3, 3}, 9)}, {{"group", int64_t(8)}, {"pads", Ints{1, 1, 1, 1}}});
  Graph g = b.finish({d3, p3});
  Inputs in{{"x", random_tensor({1, 8, 14, 13}, 10, -3.f, 3.f)}};
  expect_matches(g, in, "pw->dw chain");

  SessionOptions o;
  o.backend_name = "onednn-dwfused";
  Session s = Session::from_graph(g, o);
  std::string d = s.executable().describe();
  auto [fused, eligible] = fused_counts(d);
  EXPECT_EQ(eligible, 2) << d;  // p3 is a graph output
  EXPECT_EQ(fused, 2) << d;
  SessionOptions plain;
  plain.backend_name = "onednn";
  EXPECT_EQ(fused_counts(Session::from_graph(g, plain).executable().describe()).first, -1);
}

TEST(OnednnBackend, ProfilingAndActivationBytes) {
  Graph g = models::build_mobilenet_v2({.batch = 1, .resolution = 64, .num_classes = 10});
  for (auto& name : kOnednn) {
    SessionOptions o;
    o.backend_name = name;
    Session s = Session::from_graph(g, o);
    EXPECT_GT(s.activation_bytes(), 0);
    // far below the sum of all intermediate values (about 4.5 MB at 64x64)
    EXPECT_LT(s.activation_bytes(), 2 * 1024 * 1024) << name;
    s.executable().set_profiling(true);
    s.run({{"input", random_tensor({1, 3, 64, 64}, 1)}});
    auto t = s.executable().timings();
    EXPECT_GT(t.size(), 40u) << name;
    int convs = 0;
    for (auto& x : t) convs += x.op.find("Conv") != std::string::npos;
    EXPECT_EQ(convs, name == "onednn" ? 52 : 52 - 16) << name;
  }
}

// --- whole networks ---

void expect_network_matches_native(const Graph& g, const Tensor& x, bool check_fusion) {
  auto want = run_with(g, {{"input", x}}, "native");
  for (auto& name : kOnednn) {
    SessionOptions o;
    o.backend_name = name;
    Session s = Session::from_graph(g, o);
    auto got = s.run({{"input", x}});
    std::string why;
    EXPECT_TRUE(allclose(got[0], want[0], 1e-3, 1e-4, why)) << name << ": " << why;
    EXPECT_EQ(argmax(got[0]), argmax(want[0])) << name;
    if (check_fusion && name == "onednn-dwfused") {
      auto [fused, eligible] = fused_counts(s.executable().describe());
      EXPECT_GT(fused, 0) << s.executable().describe();
      EXPECT_EQ(fused, eligible) << s.executable().describe();
    }
  }
}

TEST(OnednnNetwork, BuiltMobileNetV2AgreesWithNative) {
  Graph g = models::build_mobilenet_v2({});
  expect_network_matches_native(g, random_tensor({1, 3, 224, 224}, 11), true);
}

TEST(OnednnNetwork, BuiltResNet50AgreesWithNative) {
  Graph g = models::build_resnet50({});
  expect_network_matches_native(g, random_tensor({1, 3, 224, 224}, 12), false);
}

TEST(OnednnNetwork, BuiltMobileNetV2Batch2AgreesWithNative) {
  Graph g = models::build_mobilenet_v2({.batch = 2, .resolution = 96});
  expect_network_matches_native(g, random_tensor({2, 3, 96, 96}, 13), true);
}

TEST(OnednnNetwork, RealMobileNetV2MatchesOnnxRuntimeOnAllFiveSets) {
  std::string dir = test::mobilenet_fp32_dir();
  if (dir.empty()) GTEST_SKIP() << "../shared/models not found (set LOCUS_MODEL_DIR)";
  for (auto& name : kOnednn) {
    SessionOptions o;
    o.backend_name = name;
    Session s = Session::from_file(dir + "/mobilenetv2-12-fp32-from-int8.onnx", o);
    test::expect_matches_onnx_runtime(s, dir, name);
    if (name == "onednn-dwfused") {
      auto [fused, eligible] = fused_counts(s.executable().describe());
      EXPECT_GT(fused, 0) << s.executable().describe();
      EXPECT_EQ(fused, eligible) << s.executable().describe();
    }
  }
}
