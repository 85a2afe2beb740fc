// The op registries (graph/op_registry.h): the oneDNN backend's (runtime/onednn/op_registry.h), the
// reference evaluator's (graph/eval/eval_ops.h) and the MAC table (graph/cost.h). Every op a
// registry claims is built and run on a one-node graph and reported by implementations() under the
// entry's name; a node a registry declines gets a reason naming the op, its domain and the node;
// the thread split of a fused block that keeps a plan says why (the planner's note).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>

#include "graph/cost.h"
#include "graph/eval/eval_ops.h"
#include "graph/ops.h"
#include "runtime/backend.h"
#include "runtime/native/op_registry.h"
#include "runtime/onednn/op_registry.h"
#include "runtime/session.h"
#include "schedule/fused_block_planner.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using namespace locus::test;  // GraphBuilder, random_tensor, allclose, ...

namespace {

using A = std::map<std::string, Attr>;
using Ints = std::vector<int64_t>;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

// A graph whose one node (named "op") runs `op` on small float inputs: x [1, 3, 5, 5], or m [2, 5]
// for the matrix ops and Softmax. Empty graph if the test does not know the op.
struct OneOp {
  Graph g;
  std::map<std::string, Tensor> inputs;
};

OneOp one_op_graph(const std::string& op) {
  GraphBuilder b;
  std::vector<std::string> ins;
  A attrs;
  const bool matrix = op == "Gemm" || op == "MatMul" || op == "Softmax";
  const std::string x = matrix ? b.input("m", {2, 5}) : b.input("x", {1, 3, 5, 5});
  ins.push_back(x);
  auto channel_const = [&](const std::string& name, float lo, float hi, uint32_t seed) {
    return b.random_constant(name, {1, 3, 1, 1}, seed, lo, hi);
  };
  if (op == "Conv") {
    ins.push_back(b.random_constant("w", {4, 3, 3, 3}, 1));
    ins.push_back(b.random_constant("bias", {4}, 2));
    attrs = {{"pads", Ints{1, 1, 1, 1}}};
  } else if (op == "Clip") {
    ins.push_back(b.constant("lo", Tensor::from_f32({}, {-0.25f})));
    ins.push_back(b.constant("hi", Tensor::from_f32({}, {0.5f})));
  } else if (op == "BatchNormalization") {
    ins.push_back(b.random_constant("scale", {3}, 3));
    ins.push_back(b.random_constant("shift", {3}, 4));
    ins.push_back(b.random_constant("mean", {3}, 5));
    ins.push_back(b.random_constant("var", {3}, 6, 0.5f, 2.f));
  } else if (op == "MaxPool" || op == "AveragePool") {
    attrs = {{"kernel_shape", Ints{2, 2}}};
  } else if (op == "Add" || op == "Sub" || op == "Mul") {
    ins.push_back(channel_const("k", -1.f, 1.f, 7));
  } else if (op == "Div") {
    ins.push_back(channel_const("k", 0.5f, 2.f, 7));
  } else if (op == "Reshape") {
    ins.push_back(b.constant("shape", Tensor::from_i64({2}, {1, 75})));
  } else if (op == "Flatten") {
    attrs = {{"axis", int64_t(1)}};
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    ins.push_back(b.constant("axes", Tensor::from_i64({1}, {0})));
  } else if (op == "Concat") {
    ins.push_back(x);
    attrs = {{"axis", int64_t(1)}};
  } else if (op == "Softmax") {
    attrs = {{"axis", int64_t(1)}};
  } else if (op == "Gemm") {
    ins.push_back(b.random_constant("B", {5, 4}, 8));
    ins.push_back(b.random_constant("C", {4}, 9));
  } else if (op == "MatMul") {
    ins.push_back(b.random_constant("B", {5, 4}, 8));
  } else if (op == "Gather") {
    ins.push_back(b.constant("idx", Tensor::from_i64({2}, {0, 2})));
    attrs = {{"axis", int64_t(1)}};
  } else if (op == "Sqrt") {
    ins[0] = b.node("Relu", {x}, {}, "xr");  // of non-negative values (NaN is not close to NaN)
  } else if (op == "Pow") {
    ins.push_back(b.constant("e", Tensor::from_f32({}, {2.f})));
  } else if (op == "ReduceMean") {
    attrs = {{"axes", Ints{2, 3}}, {"keepdims", int64_t(0)}};
  } else if (op == "Transpose") {
    attrs = {{"perm", Ints{0, 2, 3, 1}}};
  } else if (op == "HardSigmoid") {
    attrs = {{"alpha", 0.3f}, {"beta", 0.4f}};
  } else if (op == "Cast") {
    attrs = {{"to", int64_t(1)}};  // float32 -> float32: the runtime values are float
  } else if (op == "Slice") {
    ins.push_back(b.constant("starts", Tensor::from_i64({2}, {1, 1})));
    ins.push_back(b.constant("ends", Tensor::from_i64({2}, {3, 4})));
    ins.push_back(b.constant("axes", Tensor::from_i64({2}, {1, 3})));
  } else if (op == "Resize") {  // PP-OCR's: nearest, asymmetric, floor, 2x (oneDNN's mapping too)
    ins.push_back("");
    ins.push_back(b.constant("scales", Tensor::from_f32({4}, {1, 1, 2, 2})));
    attrs = {{"mode", std::string("nearest")}, {"coordinate_transformation_mode", std::string("asymmetric")},
             {"nearest_mode", std::string("floor")}};
  } else if (op == "ConvTranspose") {
    ins.push_back(b.random_constant("w", {3, 2, 2, 2}, 1));
    ins.push_back(b.random_constant("bias", {2}, 2));
    attrs = {{"strides", Ints{2, 2}}};
  } else if (!(op == "Relu" || op == "GlobalAveragePool" || op == "Identity" || op == "HardSwish" || op == "Sigmoid")) {
    return {};
  }
  b.node(op, ins, attrs, "y");
  b.g.nodes.back().name = "op";
  OneOp r;
  r.g = b.finish({"y"});
  r.inputs[x] = random_tensor(matrix ? Shape{2, 5} : Shape{1, 3, 5, 5}, 11);
  return r;
}

// A one-node graph of a quantized op (key as the registry's: "QLinearConv", "com.microsoft.QLinearAdd"):
// the float input [1,3,5,5] is quantized first (by a node not named "op", except for QuantizeLinear).
OneOp quant_one_op_graph(const std::string& key) {
  GraphBuilder b;
  const std::string x = b.input("x", {1, 3, 5, 5});
  const std::string s = b.constant("s", Tensor::from_f32({}, {0.02f}));
  Tensor zt(DType::U8, {});
  zt.data<uint8_t>()[0] = 128;
  const std::string z = b.constant("z", zt);
  const std::string q = key == "QuantizeLinear" ? x : b.node("QuantizeLinear", {x, s, z}, {}, "xq");
  std::vector<std::string> ins;
  std::string domain;
  std::string op = key;
  if (key == "QuantizeLinear" || key == "DequantizeLinear") {
    ins = {q, s, z};
  } else if (key == "QLinearConv") {
    Tensor w(DType::I8, {4, 3, 3, 3});
    for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = int8_t(i % 7 - 3);
    ins = {q, s, z, b.constant("w", w), b.constant("ws", Tensor::from_f32({4}, {0.1f, 0.2f, 0.3f, 0.4f})),
           b.constant("wz", Tensor(DType::I8, {4})), s, z};
  } else if (key == "QLinearMatMul") {
    Tensor w(DType::I8, {5, 2});
    for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = int8_t(i - 5);
    ins = {q, s, z, b.constant("w", w), s, b.constant("wz", Tensor(DType::I8, {})), s, z};
  } else if (key == "com.microsoft.QLinearAdd") {
    op = "QLinearAdd";
    domain = "com.microsoft";
    ins = {q, s, z, q, s, z, s, z};
  } else if (key == "com.microsoft.QLinearGlobalAveragePool") {
    op = "QLinearGlobalAveragePool";
    domain = "com.microsoft";
    ins = {q, s, z, s, z};
  } else {
    return {};
  }
  b.node(op, ins, {}, "y");
  b.g.nodes.back().name = "op";
  b.g.nodes.back().domain = domain;
  OneOp r;
  r.g = b.finish({"y"});
  r.inputs[x] = random_tensor({1, 3, 5, 5}, 11);
  return r;
}

SessionOptions options(const std::string& backend) {
  SessionOptions o;
  o.backend_name = backend;
  o.pipeline.optimize = false;  // the node stays as built
  return o;
}

// The implementation a session reports for node "op".
std::string implementation_of(const Session& s) {
  for (const NodeImplementation& ni : s.executable().implementations())
    if (ni.node == "op") return ni.implementation;
  return "(none reported)";
}

// A node of op `op` in `domain` named `name`.
Node foreign(const std::string& op, const std::string& domain, const std::string& name) {
  Node n;
  n.op = op;
  n.domain = domain;
  n.name = name;
  n.inputs = {"x"};
  n.outputs = {"y"};
  return n;
}

}  // namespace

TEST(OpKey, QualifiesOnlyOtherDomains) {
  EXPECT_EQ(op_key("", "Conv"), "Conv");
  EXPECT_EQ(op_key("ai.onnx", "Conv"), "Conv");
  EXPECT_EQ(op_key("locus", "FusedInvertedResidual"), "locus.FusedInvertedResidual");
  EXPECT_EQ(op_key(foreign("FusedInvertedResidual", "com.example", "b")), "com.example.FusedInvertedResidual");
}

// What the oneDNN backend claims: every catalogue op but Gather (oneDNN has no gather) and Shape
// (folded at load), and the com.microsoft quantized ops of the int8 MobileNetV2.
TEST(OnednnOpRegistry, ListsItsEntriesWithThePrimitiveThatRunsThem) {
  const onednn::OnednnOpRegistry& r = onednn::onednn_ops();
  std::set<std::string> want{"com.microsoft.QLinearAdd", "com.microsoft.QLinearGlobalAveragePool"};
  for (const std::string& op : supported_ops())
    if (op != "Gather" && op != "Shape") want.insert(op);
  const std::vector<std::string> keys = r.keys();
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), want);
  for (const auto& [key, impl] : r.entries()) {
    // a primitive ("dnnl ...") or a view / alias of the operand's buffer
    const bool named = impl.rfind("dnnl ", 0) == 0 || impl.rfind("view", 0) == 0 || impl.rfind("alias", 0) == 0;
    EXPECT_TRUE(named) << key << ": " << impl;
  }
  EXPECT_EQ(r.find("Conv")->implementation, "dnnl convolution_forward");
  EXPECT_EQ(r.find("Add")->implementation, "dnnl binary_add");
  EXPECT_FALSE(r.handles("locus.FusedInvertedResidual"));
}

// Every op the oneDNN backends claim builds and runs on a one-node graph, agrees with the
// reference, and is reported per node under the registry entry's name. (The quantized ops round
// their own way: their u8 outputs within one step, the dequantized within one scale 0.02; more in
// tests/quant_onednn_test.cpp.)
TEST(OnednnOpRegistry, EveryEntryBuildsOnASmallGraph) {
  for (const std::string& key : onednn::onednn_ops().keys()) {
    OneOp t = one_op_graph(key);
    const bool quant = t.g.nodes.empty();
    if (quant) t = quant_one_op_graph(key);
    ASSERT_FALSE(t.g.nodes.empty()) << "no test graph for " << key;
    const auto want = Session::from_graph(t.g, options("reference")).run(t.inputs);
    for (const char* backend : {"onednn", "onednn-dwfused"}) {
      Session s = Session::from_graph(t.g, options(backend));
      const auto got = s.run(t.inputs);
      ASSERT_EQ(got.size(), 1u) << key;
      std::string why;
      if (quant) {
        ASSERT_EQ(got[0].dtype, want[0].dtype) << key;
        ASSERT_EQ(got[0].shape, want[0].shape) << key;
        const double step = want[0].dtype == DType::F32 ? 0.02 * 1.001 : 1;
        for (int64_t i = 0; i < want[0].numel(); ++i)
          EXPECT_LE(std::fabs(got[0].get(i) - want[0].get(i)), step) << key << " [" << backend << "] element " << i;
      } else {
        EXPECT_TRUE(allclose(got[0], want[0], 1e-4, 1e-5, why)) << key << " [" << backend << "]: " << why;
      }
      EXPECT_EQ(implementation_of(s), onednn::onednn_ops().find(key)->implementation) << key;
    }
  }
}

TEST(OnednnOpRegistry, GemmOnTheMatmulPathSaysSo) {
  GraphBuilder b;
  b.input("a", {5, 2});
  b.node("Gemm", {"a", b.random_constant("B", {5, 4}, 8)}, {{"transA", int64_t(1)}}, "y");
  b.g.nodes.back().name = "op";
  Session s = Session::from_graph(b.finish({"y"}), options("onednn"));
  EXPECT_EQ(implementation_of(s).rfind("dnnl matmul", 0), 0u) << implementation_of(s);
}

TEST(OnednnOpRegistry, DeclinedNodesSayWhy) {
  // an op without an entry: named with its node, all at once
  OneOp gather = one_op_graph("Gather");
  std::string e = error_of([&] { Session::from_graph(gather.g, options("onednn")); });
  EXPECT_NE(e.find("onednn backend cannot run: Gather (node 'op')"), std::string::npos) << e;
  // an entry whose builder declines this node: the builder's reason
  GraphBuilder b;
  b.input("x", {1, 3, 5, 5});
  b.input("w", {4, 3, 1, 1});
  b.node("Conv", {"x", "w"}, {}, "y");
  e = error_of([&] { Session::from_graph(b.finish({"y"}), options("onednn")); });
  EXPECT_NE(e.find("Conv 'Conv_0' with non-constant weights"), std::string::npos) << e;
}

TEST(OnednnOpRegistry, FusedPairsAreReportedForBothNodes) {
  GraphBuilder b;
  b.input("x", {1, 8, 6, 6});
  const std::string m = b.node("Conv", {"x", b.random_constant("w1", {16, 8, 1, 1}, 1)}, {}, "m");
  b.node("Conv", {m, b.random_constant("w2", {16, 1, 3, 3}, 2)},
         {{"group", int64_t(16)}, {"pads", Ints{1, 1, 1, 1}}}, "y");
  Graph g = b.finish({"y"});
  Session s = Session::from_graph(g, options("onednn-dwfused"));
  std::map<std::string, std::string> impl;
  for (const NodeImplementation& ni : s.executable().implementations()) impl[ni.node] = ni.implementation;
  ASSERT_EQ(impl.size(), 2u);
  if (s.executable().describe().find("1 of 1 pw->dw pairs fused") != std::string::npos) {
    EXPECT_EQ(impl["Conv_0"].rfind("dnnl convolution_forward + post_ops::append_dw", 0), 0u) << impl["Conv_0"];
    EXPECT_EQ(impl["Conv_1"], "fused into 'Conv_0' (dnnl post_ops::append_dw)");
  } else {  // oneDNN refused the pair on this machine: both run alone
    EXPECT_EQ(impl["Conv_0"], "dnnl convolution_forward");
    EXPECT_EQ(impl["Conv_1"], "dnnl convolution_forward");
  }
}

// The evaluator implements exactly the catalogue (graph/ops.h), in its domains.
TEST(EvalOpRegistry, ListsTheCatalogueByOpKey) {
  std::set<std::string> want(supported_ops().begin(), supported_ops().end());
  for (const std::string& op : locus_ops()) want.insert(op_key(kLocusDomain, op));
  for (const std::string& op : microsoft_ops()) want.insert(op_key(kMicrosoftDomain, op));
  const std::vector<std::string> keys = eval::eval_ops().keys();
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), want);
  for (const auto& [key, impl] : eval::eval_ops().entries()) EXPECT_EQ(impl.rfind("reference ", 0), 0u) << key;
}

TEST(EvalOpRegistry, EveryEntryRunsInTheReferenceBackend) {
  for (const std::string& key : eval::eval_ops().keys()) {
    // Shape folds at load; the fused ops: fusion_test, qfused_block_test, se_fusion_test, fuse_chain_test
    if (key == "Shape" || key == "locus.FusedInvertedResidual" || key == "locus.FusedQLinearInvertedResidual" ||
        key == "locus.FusedSEBlock" || key == "locus.FusedChain")
      continue;
    OneOp t = one_op_graph(key);
    if (t.g.nodes.empty()) t = quant_one_op_graph(key);
    ASSERT_FALSE(t.g.nodes.empty()) << "no test graph for " << key;
    Session s = Session::from_graph(t.g, options("reference"));
    EXPECT_EQ(s.run(t.inputs).size(), 1u) << key;
    EXPECT_EQ(implementation_of(s), eval::eval_ops().find(key)->implementation) << key;
  }
}

// The op of a locus-domain node in any other domain is not the locus op: declined, naming the domain.
TEST(EvalOpRegistry, ForeignDomainOpIsDeclinedNamingTheDomain) {
  Node n = foreign("FusedInvertedResidual", "com.example", "block1");
  EXPECT_EQ(eval::eval_ops().find(n), nullptr);
  const Tensor x = random_tensor({1, 4, 3, 3}, 1);
  std::string e = error_of([&] { eval::evaluate(n, {&x}); });
  EXPECT_NE(e.find("FusedInvertedResidual of domain 'com.example'"), std::string::npos) << e;
  EXPECT_NE(e.find("'block1'"), std::string::npos) << e;
  EXPECT_THROW(eval::evaluate(n, {&x}), Unsupported);
  // the reference backend refuses such a graph when it compiles it, with the same reason
  Graph g;
  g.inputs = {"x"};
  g.values["x"] = ValueInfo{DType::F32, {1, 4, 3, 3}, true};
  g.values["y"] = ValueInfo{DType::F32, {1, 4, 3, 3}, true};
  g.nodes.push_back(n);
  g.outputs = {"y"};
  e = error_of([&] { make_backend("reference")->compile(g, {}); });
  EXPECT_NE(e.find("reference backend cannot run"), std::string::npos) << e;
  EXPECT_NE(e.find("FusedInvertedResidual of domain 'com.example' (node 'block1')"), std::string::npos) << e;
  // and so does the native backend
  EXPECT_EQ(native::native_ops().find(n), nullptr);
}

TEST(MacTable, ListsTheOpsThatMultiply) {
  const std::vector<std::string> keys = mac_table().keys();
  EXPECT_EQ(keys, (std::vector<std::string>{"Conv", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul", "locus.FusedChain",
                                            "locus.FusedInvertedResidual", "locus.FusedQLinearInvertedResidual",
                                            "locus.FusedSEBlock"}));
  EXPECT_EQ(mac_table().find(foreign("FusedInvertedResidual", "com.example", "b")), nullptr);
  for (const auto& [key, what] : mac_table().entries()) EXPECT_FALSE(what.empty()) << key;
}

// A fused block whose thread split keeps its plan says why. H = W = 5, E = 96: the best plan for
// S = 6000 is one band of 3 chunks (chunk 32), and 2 threads split the chunks; they want an even
// count: 2 chunks of 48 do not fit S, and 4 chunks of 24 are not multiples of 16 channels.
TEST(FusedBlockPlanNote, ThreadSplitFallbackSaysWhy) {
  schedule::FusedBlockShape s;
  s.H = s.W = 5;
  s.C = s.OC = 32;
  s.E = 96;
  // the candidates the split tries: neither fits or can be cut
  const schedule::FusedPlanAttempt half = schedule::try_fused_block_plan(s, 6000, 5, 48);
  ASSERT_FALSE(half.plan.has_value());
  EXPECT_NE(half.why_not.find("more than S=6000"), std::string::npos) << half.why_not;
  const schedule::FusedBlockPlan p = schedule::plan_fused_block_threads(s, 1, 6000, 2);
  EXPECT_EQ(p.split_chunks, 2);
  EXPECT_EQ(p.chunks, 3);  // kept: 3 chunks on 2 threads
  EXPECT_NE(p.note.find("chunks not re-cut for 2 threads"), std::string::npos) << p.note;
  EXPECT_NE(p.note.find(half.why_not), std::string::npos) << p.note;
  EXPECT_NE(p.describe().find(p.note), std::string::npos);
  // a single thread has nothing to split: no note
  EXPECT_TRUE(schedule::plan_fused_block_threads(s, 1, 6000, 1).note.empty());
}

TEST(FusedBlockPlanNote, NoFitNamesTheSmallestCandidate) {
  schedule::FusedBlockShape s;
  s.H = s.W = 14;
  s.C = s.OC = 64;
  s.E = 384;
  std::string e = error_of([&] { schedule::plan_fused_block(s, 500); });
  EXPECT_NE(e.find("cannot hold any band"), std::string::npos) << e;
  EXPECT_NE(e.find("more than S=500"), std::string::npos) << e;
}

// The reason reaches the user: the native backend reports it as the node's implementation (what
// `locus run --remarks` writes). 7 output rows on 2 threads cannot be split evenly by any band
// height (4 + 3 rows at best, 14% above the mean).
TEST(FusedBlockPlanNote, NativeBackendReportsIt) {
  GraphBuilder b;
  b.input("x", {1, 16, 7, 7});
  const std::string e = b.node("Conv", {"x", b.random_constant("we", {96, 16, 1, 1}, 1)}, {}, "e");
  const std::string d =
      b.node("Conv", {e, b.random_constant("wd", {96, 1, 3, 3}, 2)}, {{"group", int64_t(96)}, {"pads", Ints{1, 1, 1, 1}}}, "d");
  b.node("Conv", {d, b.random_constant("wp", {16, 96, 1, 1}, 3)}, {}, "y");
  SessionOptions o;
  o.backend_name = "native";
  o.threads = 2;
  o.backend.l2_bytes = 1 << 20;
  Session s = Session::from_graph(b.finish({"y"}), o);
  const auto plans = s.executable().fused_block_plans();
  ASSERT_EQ(plans.size(), 1u);
  const std::string& note = plans[0].plan.note;
  EXPECT_NE(note.find("bands not rebalanced for 2 threads"), std::string::npos) << note;
  std::string impl;
  for (const NodeImplementation& ni : s.executable().implementations())
    if (ni.node == plans[0].node) impl = ni.implementation;
  EXPECT_EQ(impl, "inverted_residual_nhwc; " + note);
}
