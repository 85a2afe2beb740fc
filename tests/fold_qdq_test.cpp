// The fold-qdq pass (graph/passes/fold_qdq.cpp) on a small hand-built QDQ graph: each
// DQ -> Conv/Add/GlobalAveragePool/MatMul -> Q group becomes its quantized op, and the result gives
// the same bytes as the QOperator graph written by hand; a group it must refuse (bias scale not
// x_scale * w_scale) stays float with a missed remark saying why.
#include <gtest/gtest.h>

#include <set>

#include "graph/passes/pass_manager.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"
#include "tests/test_support.h"

using namespace locus;

namespace {

Tensor scalar_u8(uint8_t v) {
  Tensor t(DType::U8, {});
  t.data<uint8_t>()[0] = v;
  return t;
}

struct Params {
  Tensor w{DType::I8, {2, 2, 3, 3}}, b{DType::I32, {2}}, wm{DType::I8, {2, 3}};
  Params() {
    for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = int8_t((i * 37) % 255 - 127);
    b.data<int32_t>()[0] = 300;
    b.data<int32_t>()[1] = -450;
    for (int64_t i = 0; i < wm.numel(); ++i) wm.data<int8_t>()[i] = int8_t(i * 40 - 100);
  }
};

// x -> Q -> [Conv] -> [Add with the quantized input] -> [GlobalAveragePool] -> Reshape -> [MatMul] -> DQ.
// qdq: each [op] as DQ -> float op -> Q; else the QOperator ops. bias_scale_factor != 1 spoils the
// Conv bias scale (the pass must then refuse that group).
Graph build(bool qdq, float bias_scale_factor = 1.f) {
  Params p;
  test::GraphBuilder g;
  const std::string x = g.input("x", {1, 2, 4, 4});
  const float xs = 0.03f, ys = 0.05f;
  const Tensor ws = Tensor::from_f32({2}, {0.004f, 0.007f});
  g.constant("xs", Tensor::scalar_f32(xs));
  g.constant("xz", scalar_u8(120));
  g.constant("ys", Tensor::scalar_f32(ys));
  g.constant("yz", scalar_u8(100));
  g.constant("ws", ws);
  g.constant("wz", Tensor(DType::I8, {2}));
  g.constant("w", p.w);
  g.constant("b", p.b);
  g.constant("bs", Tensor::from_f32({2}, {xs * 0.004f * bias_scale_factor, xs * 0.007f * bias_scale_factor}));
  g.constant("wm", p.wm);
  g.constant("wms", Tensor::from_f32({3}, {0.01f, 0.02f, 0.03f}));
  g.constant("wmz", Tensor(DType::I8, {3}));
  g.constant("shape", Tensor::from_i64({2}, {1, 2}));
  const std::string xq = g.node("QuantizeLinear", {x, "xs", "xz"}, {}, "xq");
  auto dq = [&](const std::string& v, const std::string& s, const std::string& z, int64_t axis = 1) {
    return g.node("DequantizeLinear", z.empty() ? std::vector<std::string>{v, s} : std::vector<std::string>{v, s, z},
                  {{"axis", axis}});
  };
  std::string y1, y2, y3, y4;
  const std::map<std::string, Attr> conv_attrs = {{"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  if (qdq) {
    const std::string c = g.node("Conv", {dq(xq, "xs", "xz"), dq("w", "ws", "wz", 0), dq("b", "bs", "", 0)}, conv_attrs);
    y1 = g.node("QuantizeLinear", {c, "ys", "yz"}, {}, "y1");
    const std::string a = g.node("Add", {dq(y1, "ys", "yz"), dq(xq, "xs", "xz")});
    y2 = g.node("QuantizeLinear", {a, "xs", "xz"}, {}, "y2");
    const std::string p2 = g.node("GlobalAveragePool", {dq(y2, "xs", "xz")});
    y3 = g.node("QuantizeLinear", {p2, "ys", "yz"}, {}, "y3");
    const std::string r = g.node("Reshape", {y3, "shape"});
    const std::string m = g.node("MatMul", {dq(r, "ys", "yz"), dq("wm", "wms", "wmz", 1)});
    y4 = g.node("QuantizeLinear", {m, "xs", "xz"}, {}, "y4");
  } else {
    y1 = g.node("QLinearConv", {xq, "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"}, conv_attrs, "y1");
    y2 = g.node("QLinearAdd", {y1, "ys", "yz", xq, "xs", "xz", "xs", "xz"}, {}, "y2");
    g.g.nodes.back().domain = "com.microsoft";
    y3 = g.node("QLinearGlobalAveragePool", {y2, "xs", "xz", "ys", "yz"}, {}, "y3");
    g.g.nodes.back().domain = "com.microsoft";
    const std::string r = g.node("Reshape", {y3, "shape"});
    y4 = g.node("QLinearMatMul", {r, "ys", "yz", "wm", "wms", "wmz", "xs", "xz"}, {}, "y4");
  }
  g.node("DequantizeLinear", {y4, "xs", "xz"}, {}, "out");
  return g.finish({"out"});
}

Session reference(const Graph& g) {
  SessionOptions o;
  o.backend_name = "reference";
  return Session::from_graph(g, o);
}

}  // namespace

TEST(FoldQdq, EveryGroupBecomesItsQuantizedOpAndMatchesTheQOperatorGraph) {
  Session qdq = reference(build(true));
  Session qop = reference(build(false));
  int applied = 0;
  for (const PassRemark& r : qdq.pass_report().remarks)
    if (r.pass == "fold-qdq" && r.kind == RemarkKind::Applied) ++applied;
  EXPECT_EQ(applied, 4);
  std::map<std::string, int> ops;
  for (const Node& n : qdq.graph().nodes) ++ops[n.op];
  EXPECT_EQ(ops["QLinearConv"], 1);
  EXPECT_EQ(ops["QLinearAdd"], 1);
  EXPECT_EQ(ops["QLinearGlobalAveragePool"], 1);
  EXPECT_EQ(ops["QLinearMatMul"], 1);
  EXPECT_EQ(ops["Conv"] + ops["Add"] + ops["GlobalAveragePool"] + ops["MatMul"], 0);
  EXPECT_EQ(ops["DequantizeLinear"], 1);  // only the output's is left
  std::set<float> seen;  // the outputs are not degenerate (all saturated or all equal)
  for (uint32_t seed : {1u, 2u, 3u}) {
    Tensor x = test::random_tensor({1, 2, 4, 4}, seed);
    auto a = qdq.run({{"x", x}});
    auto b = qop.run({{"x", x}});
    EXPECT_EQ(a[0].bytes, b[0].bytes) << "seed " << seed;
    for (int64_t i = 0; i < a[0].numel(); ++i) seen.insert(a[0].data<float>()[i]);
  }
  EXPECT_GE(seen.size(), 4u);
}

TEST(FoldQdq, AWrongBiasScaleIsRefusedWithAReason) {
  Session s = reference(build(true, 1.5f));
  std::string why;
  int applied = 0;
  for (const PassRemark& r : s.pass_report().remarks) {
    if (r.pass != "fold-qdq") continue;
    if (r.kind == RemarkKind::Applied) ++applied;
    else if (r.node == "y1_q" || r.message.find("bias") != std::string::npos) why = r.message;
  }
  EXPECT_EQ(applied, 3);
  EXPECT_NE(why.find("is not x_scale * w_scale"), std::string::npos) << why;
  int convs = 0;
  for (const Node& n : s.graph().nodes) convs += n.op == "Conv";
  EXPECT_EQ(convs, 1);  // the group stays float, and runs
  EXPECT_EQ(s.run({{"x", test::random_tensor({1, 2, 4, 4}, 1)}})[0].shape, (Shape{1, 3}));
}
