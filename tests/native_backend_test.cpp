// The native backend against the reference backend, op by op, on small ragged graphs: this is
// where NHWC layout handling (broadcasts, concat on the channel axis, flatten, softmax on axis 1)
// is checked, plus the arena and the session's input checks.
#include <gtest/gtest.h>

#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using locus::test::GraphBuilder;
using locus::test::random_tensor;

namespace {

// Runs g with both backends on the given inputs and returns the max abs difference over outputs.
double native_vs_reference(const Graph& g, const std::map<std::string, Tensor>& in, bool optimize = true) {
  SessionOptions ref;
  ref.backend = "reference";
  ref.optimize = false;
  auto want = Session::from_graph(g, ref).run(in);
  SessionOptions nat;
  nat.optimize = optimize;
  auto got = Session::from_graph(g, nat).run(in);
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    EXPECT_EQ(got[i].shape, want[i].shape) << "output " << i;
    if (got[i].shape != want[i].shape) return INFINITY;
    worst = std::max(worst, test::max_abs_diff(got[i].data<float>(), want[i].data<float>(), size_t(got[i].numel())));
  }
  return worst;
}

using A = std::map<std::string, Attr>;
using Ints = std::vector<int64_t>;

}  // namespace

TEST(NativeBackend, ConvVariantsWithFusedActivations) {
  struct Case { Shape x, w; A attrs; bool bias; std::string act; };
  std::vector<Case> cases = {
      {{1, 5, 9, 7}, {6, 5, 1, 1}, {}, true, "relu"},                                       // pointwise
      {{2, 6, 9, 7}, {6, 1, 3, 3}, {{"group", int64_t(6)}, {"pads", Ints{1, 1, 1, 1}}}, true, "clip"},  // depthwise
      {{1, 7, 10, 9}, {7, 1, 3, 3}, {{"group", int64_t(7)}, {"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}, false, "clip"},
      {{1, 3, 11, 13}, {8, 3, 3, 3}, {{"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}, true, "clip"},  // stem
      {{1, 4, 8, 8}, {6, 2, 3, 3}, {{"group", int64_t(2)}, {"auto_pad", std::string("SAME_UPPER")}}, true, ""},
      {{1, 5, 9, 9}, {3, 5, 1, 1}, {{"strides", Ints{2, 2}}}, false, "relu"},               // strided 1x1
      {{1, 3, 12, 12}, {4, 3, 7, 7}, {{"pads", Ints{3, 2, 1, 3}}, {"strides", Ints{2, 2}}, {"dilations", Ints{1, 2}}}, true, ""},
  };
  uint32_t seed = 100;
  for (auto& c : cases) {
    GraphBuilder b;
    auto x = b.input("x", c.x);
    std::vector<std::string> ins{x, b.random_constant("w", c.w, seed++)};
    if (c.bias) ins.push_back(b.random_constant("b", {c.w[0]}, seed++));
    auto y = b.node("Conv", ins, c.attrs);
    if (c.act == "relu") y = b.node("Relu", {y});
    if (c.act == "clip") y = b.node("Clip", {y, b.constant("lo", Tensor::scalar_f32(-0.2f)), b.constant("hi", Tensor::scalar_f32(0.6f))});
    Graph g = b.finish({y});
    std::map<std::string, Tensor> in{{"x", random_tensor(c.x, seed++)}};
    EXPECT_LT(native_vs_reference(g, in), 1e-4) << "conv case x=" << shape_str(c.x) << " w=" << shape_str(c.w);
  }
}

TEST(NativeBackend, BroadcastingBinaryOpsOnNhwcValues) {
  GraphBuilder b;
  auto x = b.input("x", {2, 3, 4, 5});
  auto y = b.input("y", {2, 3, 4, 5});
  auto s1 = b.node("Add", {x, y});                                          // same shape
  auto s2 = b.node("Mul", {s1, b.random_constant("c", {3, 1, 1}, 1)});      // per channel
  auto s3 = b.node("Sub", {s2, b.random_constant("r", {5}, 2)});            // last axis
  auto s4 = b.node("Div", {s3, b.random_constant("d", {2, 1, 4, 1}, 3, 1.f, 2.f)});
  auto s5 = b.node("Add", {s4, b.constant("k", Tensor::scalar_f32(0.25f))});
  Graph g = b.finish({s5});
  EXPECT_LT(native_vs_reference(g, {{"x", random_tensor({2, 3, 4, 5}, 4)}, {"y", random_tensor({2, 3, 4, 5}, 5)}}), 1e-5);
}

TEST(NativeBackend, LayoutSensitiveOpsOn4DValues) {
  GraphBuilder b;
  auto x = b.input("x", {2, 3, 4, 5});
  auto z = b.input("z", {2, 2, 4, 5});
  auto cat = b.node("Concat", {x, z}, {{"axis", int64_t(1)}});                 // channel axis
  auto sm = b.node("Softmax", {cat}, {{"axis", int64_t(1)}});                  // softmax across channels
  auto fl = b.node("Flatten", {sm}, {{"axis", int64_t(1)}});                   // NHWC -> logical order
  auto rs = b.node("Reshape", {fl, b.constant("shape", Tensor::from_i64({4}, {2, 4, 5, 5}))});  // back to 4-D
  auto mp = b.node("MaxPool", {rs}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t(1)}});
  auto ap = b.node("AveragePool", {rs}, {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}, {"count_include_pad", int64_t(1)}});
  auto gp = b.node("GlobalAveragePool", {ap});
  auto ga = b.node("Gather", {rs, b.constant("idx", Tensor::from_i64({2}, {3, 0}))}, {{"axis", int64_t(1)}});
  auto bn = b.node("BatchNormalization", {ga, b.random_constant("s", {2}, 1), b.random_constant("bb", {2}, 2),
                                          b.random_constant("m", {2}, 3), b.random_constant("v", {2}, 4, 0.5f, 1.f)});
  Graph g = b.finish({mp, gp, bn});
  EXPECT_LT(native_vs_reference(g, {{"x", random_tensor({2, 3, 4, 5}, 6)}, {"z", random_tensor({2, 2, 4, 5}, 7)}}), 1e-5);
}

TEST(NativeBackend, GemmAndMatMulForms) {
  GraphBuilder b;
  auto a = b.input("a", {3, 7});
  auto at = b.input("at", {7, 3});
  auto g1 = b.node("Gemm", {a, b.random_constant("w", {5, 7}, 1), b.random_constant("c", {5}, 2)}, {{"transB", int64_t(1)}, {"alpha", 0.5f}, {"beta", 2.f}});
  auto g2 = b.node("Gemm", {at, b.random_constant("w2", {7, 4}, 3), b.random_constant("c2", {3, 1}, 4)}, {{"transA", int64_t(1)}});
  auto g3 = b.node("Gemm", {a, at}, {});  // runtime B
  auto m3 = b.input("m3", {2, 3, 7});
  auto mm = b.node("MatMul", {m3, b.random_constant("mw", {7, 6}, 5)});
  auto mb = b.input("mb", {2, 7, 2});
  auto mm2 = b.node("MatMul", {m3, mb});
  Graph g = b.finish({g1, g2, g3, mm, mm2});
  EXPECT_LT(native_vs_reference(g, {{"a", random_tensor({3, 7}, 6)}, {"at", random_tensor({7, 3}, 7)},
                                    {"m3", random_tensor({2, 3, 7}, 8)}, {"mb", random_tensor({2, 7, 2}, 9)}}),
            1e-5);
}

TEST(NativeBackend, ArenaIsSmallerThanUnsharedTotalOnAChain) {
  GraphBuilder b;
  auto x = b.input("x", {1, 8, 16, 16});
  std::string y = x;
  for (int i = 0; i < 6; ++i) y = b.node("Relu", {b.node("Add", {y, y})});
  Graph g = b.finish({y});
  Session s = Session::from_graph(g);
  // 13 values of 8 KiB each; a chain needs only two alive at a time
  EXPECT_LE(s.activation_bytes(), 3 * 8 * 16 * 16 * 4);
  auto out = s.run({{"x", random_tensor({1, 8, 16, 16}, 1)}});
  EXPECT_EQ(out[0].shape, (Shape{1, 8, 16, 16}));
}

TEST(NativeBackend, SessionRejectsWrongInputs) {
  GraphBuilder b;
  auto x = b.input("x", {1, 2, 3, 3});
  Graph g = b.finish({b.node("Relu", {x})});
  Session s = Session::from_graph(g);
  auto msg = [&](std::map<std::string, Tensor> in) {
    try {
      s.run(in);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg({{"x", random_tensor({1, 2, 3, 4}, 1)}}).find("has shape [1,2,3,4], the model expects [1,2,3,3]"), std::string::npos);
  EXPECT_NE(msg({{"x", Tensor(DType::I64, {1, 2, 3, 3})}}).find("has type int64"), std::string::npos);
  EXPECT_NE(msg({}).find("missing input 'x'"), std::string::npos);
  EXPECT_NE(msg({{"x", random_tensor({1, 2, 3, 3}, 1)}, {"q", random_tensor({1}, 1)}}).find("no input named 'q'"), std::string::npos);
}
