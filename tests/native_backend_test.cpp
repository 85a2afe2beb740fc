// The native backend against the reference backend, op by op, on small ragged graphs: this is
// where NHWC layout handling (broadcasts, concat on the channel axis, flatten, softmax on axis 1)
// is checked, plus the arena, the session's input checks and the pointwise tiling settings (on by
// default; options > LOCUS_L2 / LOCUS_TILE_ORDER > the OS; every order matches the reference).
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <optional>

#include "graph/ops.h"
#include "runtime/machine_info.h"
#include "runtime/native/op_registry.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using locus::test::GraphBuilder;
using locus::test::random_tensor;

namespace {

// Runs g with both backends on the given inputs and returns the max abs difference over outputs.
double native_vs_reference(const Graph& g, const std::map<std::string, Tensor>& in, bool optimize = true) {
  SessionOptions ref;
  ref.backend_name = "reference";
  ref.pipeline.optimize = false;
  auto want = Session::from_graph(g, ref).run(in);
  SessionOptions nat;
  nat.pipeline.optimize = optimize;
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

// ---- pointwise tiling (runtime/backend.h: resolve_pointwise_tiling) ----

namespace {

// Sets or unsets LOCUS_L2 and LOCUS_TILE_ORDER for one scope, restoring them afterwards.
class TilingEnv {
 public:
  TilingEnv(const char* l2, const char* order) {
    save("LOCUS_L2", l2);
    save("LOCUS_TILE_ORDER", order);
  }
  ~TilingEnv() {
    for (auto& [name, old] : saved_) {
      if (old) setenv(name.c_str(), old->c_str(), 1);
      else unsetenv(name.c_str());
    }
  }

 private:
  void save(const char* name, const char* v) {
    const char* old = std::getenv(name);
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    if (v) setenv(name, v, 1);
    else unsetenv(name);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// MobileNetV2-shaped 1x1 convs at 28x28 -> 14x14: expansion with a fused clip, projection, a strided
// 1x1 (ResNet-style downsample, gathered rows), expansion again; plus a grouped 1x1 that keeps GEMM.
Graph pointwise_chain() {
  GraphBuilder b;
  auto x = b.input("x", {1, 24, 28, 28});
  auto e = b.node("Conv", {x, b.random_constant("w1", {144, 24, 1, 1}, 1), b.random_constant("b1", {144}, 2)});
  e = b.node("Clip", {e, b.constant("lo", Tensor::scalar_f32(0.f)), b.constant("hi", Tensor::scalar_f32(6.f))});
  auto p = b.node("Conv", {e, b.random_constant("w2", {32, 144, 1, 1}, 3), b.random_constant("b2", {32}, 4)});
  auto s = b.node("Conv", {p, b.random_constant("w3", {64, 32, 1, 1}, 5)}, {{"strides", Ints{2, 2}}});
  auto q = b.node("Conv", {s, b.random_constant("w4", {160, 64, 1, 1}, 6), b.random_constant("b4", {160}, 7)});
  auto g = b.node("Conv", {q, b.random_constant("w5", {40, 40, 1, 1}, 8)}, {{"group", int64_t(4)}});
  return b.finish({g});
}

}  // namespace

TEST(NativeBackend, PointwiseTilingIsTheDefault) {
  TilingEnv env(nullptr, nullptr);
  Session s = Session::from_graph(pointwise_chain());
  auto t = s.executable().pointwise_tiling();
  ASSERT_TRUE(t.has_value());
  auto plans = s.executable().pointwise_plans();
  ASSERT_EQ(plans.size(), 5u);  // every 1x1 conv, in graph order
  EXPECT_EQ(plans[2].stride_h, 2);
  EXPECT_EQ(plans[2].M, 14 * 14);
  EXPECT_EQ(plans[4].groups, 4);
  EXPECT_FALSE(plans[4].plan.has_value());
  EXPECT_EQ(t->order, schedule::TileOrder::Scan);
  EXPECT_EQ(t->order_source, SettingSource::Default);
  const int64_t os_l2 = current_core_cache_bytes(2);
  if (os_l2 < kMinL2Bytes) {
    // The OS does not say: plain GEMM, and describe() says why.
    EXPECT_FALSE(t->enabled());
    EXPECT_NE(s.executable().describe().find("reports no L2 size"), std::string::npos) << s.executable().describe();
    return;
  }
  EXPECT_EQ(t->l2_source, SettingSource::OS);
  EXPECT_EQ(t->l2_bytes, os_l2);
  EXPECT_EQ(t->buffer_entries, int64_t(double(os_l2 / 4) * kL2SafetyFraction));
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(plans[i].plan.has_value()) << plans[i].node << ": " << plans[i].why_not;
    EXPECT_EQ(plans[i].plan->shape.M, plans[i].M);
    EXPECT_EQ(plans[i].plan->S, t->buffer_entries);
    EXPECT_TRUE(plans[i].plan->order == schedule::Order::ScanRows || plans[i].plan->order == schedule::Order::ScanCols);
  }
  EXPECT_EQ(plans[4].why_not, "grouped");
  EXPECT_NE(s.executable().describe().find("4 of 5 1x1 convs planned"), std::string::npos) << s.executable().describe();
}

TEST(NativeBackend, PointwiseTilingOffAndEveryOrderMatchTheReference) {
  TilingEnv env(nullptr, nullptr);
  const Graph g = pointwise_chain();
  std::map<std::string, Tensor> in{{"x", random_tensor({1, 24, 28, 28}, 9)}};
  SessionOptions ref;
  ref.backend_name = "reference";
  ref.pipeline.optimize = false;
  const Tensor want = Session::from_graph(g, ref).run(in)[0];
  // Float accumulation through four layers of up to 144 terms: relative to the largest output.
  double peak = 0;
  for (int64_t i = 0; i < want.numel(); ++i) peak = std::max(peak, double(std::fabs(want.data<float>()[i])));
  const double atol = 1e-5 * peak;
  struct Config {
    int64_t l2;
    std::optional<schedule::TileOrder> order;
    const char* what;
  };
  const Config configs[] = {{0, std::nullopt, "--l2 0"},
                            {-1, schedule::TileOrder::Scan, "scan"},
                            {-1, schedule::TileOrder::Row, "row"},
                            {-1, schedule::TileOrder::Col, "col"},
                            {64 << 10, schedule::TileOrder::Scan, "scan 64K"},
                            {24 << 10, schedule::TileOrder::Col, "col 24K"}};
  for (const Config& c : configs) {
    SessionOptions o;
    o.backend.l2_bytes = c.l2;
    o.backend.tile_order = c.order;
    Session s = Session::from_graph(g, o);
    const Tensor got = s.run(in)[0];
    std::string why;
    EXPECT_TRUE(test::allclose(got, want, 1e-4, atol, why)) << c.what << ": " << why << " (peak " << peak << ")";
    for (auto& r : s.executable().pointwise_plans()) {
      if (c.l2 == 0) {
        EXPECT_FALSE(r.plan.has_value()) << c.what;
        EXPECT_EQ(r.why_not, "off") << c.what;
      }
      if (!r.plan) continue;
      const schedule::Order po = r.plan->order;
      switch (*c.order) {
        case schedule::TileOrder::Row: EXPECT_EQ(po, schedule::Order::RowMajor) << c.what; break;
        case schedule::TileOrder::Col: EXPECT_EQ(po, schedule::Order::ColMajor) << c.what; break;
        case schedule::TileOrder::Scan:
          EXPECT_TRUE(po == schedule::Order::ScanRows || po == schedule::Order::ScanCols) << c.what;
          break;
      }
    }
  }
}

TEST(NativeBackend, PointwiseTilingPrecedenceAndErrors) {
  {
    TilingEnv env("1M", "row");
    PointwiseTilingSettings t = resolve_pointwise_tiling({});
    EXPECT_EQ(t.l2_bytes, 1 << 20);
    EXPECT_EQ(t.l2_source, SettingSource::Env);
    EXPECT_EQ(t.buffer_entries, (1 << 20) / 4 / 2);
    EXPECT_EQ(t.order, schedule::TileOrder::Row);
    EXPECT_EQ(t.order_source, SettingSource::Env);
    BackendOptions o;  // options win over the environment
    o.l2_bytes = 256 << 10;
    o.tile_order = schedule::TileOrder::Col;
    t = resolve_pointwise_tiling(o);
    EXPECT_EQ(t.l2_bytes, 256 << 10);
    EXPECT_EQ(t.l2_source, SettingSource::Option);
    EXPECT_EQ(t.order, schedule::TileOrder::Col);
    EXPECT_EQ(t.order_source, SettingSource::Option);
    o.l2_bytes = 0;
    t = resolve_pointwise_tiling(o);
    EXPECT_FALSE(t.enabled());
    EXPECT_NE(t.describe().find("off"), std::string::npos) << t.describe();
  }
  {
    TilingEnv env("0", nullptr);
    PointwiseTilingSettings t = resolve_pointwise_tiling({});
    EXPECT_FALSE(t.enabled());
    EXPECT_EQ(t.l2_source, SettingSource::Env);
  }
  {
    TilingEnv env("banana", "zigzag");
    EXPECT_NE(error_of([] { resolve_pointwise_tiling({}); }).find("LOCUS_L2='banana' is not a size"), std::string::npos);
    BackendOptions o;
    o.l2_bytes = 1 << 20;  // the variable is not read when the option is given
    EXPECT_NE(error_of([&] { resolve_pointwise_tiling(o); }).find("LOCUS_TILE_ORDER='zigzag'"), std::string::npos);
    o.tile_order = schedule::TileOrder::Scan;
    EXPECT_EQ(error_of([&] { resolve_pointwise_tiling(o); }), "no error");
    // and a session reports a bad variable as one line naming it
    EXPECT_NE(error_of([] { Session::from_graph(pointwise_chain()); }).find("LOCUS_L2='banana'"), std::string::npos);
  }
  {
    TilingEnv env("100", nullptr);
    EXPECT_NE(error_of([] { resolve_pointwise_tiling({}); }).find("LOCUS_L2='100' is below the minimum"), std::string::npos);
  }
  TilingEnv env(nullptr, nullptr);
  BackendOptions o;
  o.l2_bytes = -2;
  EXPECT_NE(error_of([&] { resolve_pointwise_tiling(o); }).find("l2_bytes must be"), std::string::npos);
  o.l2_bytes = 512;
  EXPECT_NE(error_of([&] { resolve_pointwise_tiling(o); }).find("l2_bytes 512 is below the minimum"), std::string::npos);
}

// The native op registry (runtime/native/op_registry.h): every catalogue op a graph can still hold
// after shape inference has an entry with a named implementation (Shape always folds at load), the
// quantized ops included (runtime/native/ops_quant.cpp; com.microsoft's in their domain).
TEST(NativeOpRegistry, CoversTheCatalogueWithNamedImplementations) {
  const native::NativeOpRegistry& r = native::native_ops();
  for (const std::string& op : supported_ops()) {
    if (op == "Shape") continue;
    EXPECT_TRUE(r.handles(op)) << op;
  }
  for (const std::string& op : microsoft_ops()) EXPECT_TRUE(r.handles(op_key(kMicrosoftDomain, op))) << op;
  EXPECT_TRUE(r.handles("locus.FusedInvertedResidual"));
  EXPECT_FALSE(r.handles("FusedInvertedResidual"));  // only in the locus domain
  for (const std::string& key : r.keys()) {
    Node n;
    const auto dot = key.find('.');
    n.op = dot == std::string::npos ? key : key.substr(dot + 1);
    n.domain = dot == std::string::npos ? "" : key.substr(0, dot);
    const native::NativeOp* e = r.find(n);
    ASSERT_NE(e, nullptr) << key;
    EXPECT_EQ(e->op, key);
    EXPECT_FALSE(e->implementation.empty()) << key;
  }
  Node unknown;
  unknown.op = "Erf";
  EXPECT_EQ(r.find(unknown), nullptr);
}
