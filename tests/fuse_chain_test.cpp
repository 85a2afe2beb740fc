// The chain fusion (graph/passes/fuse_chain.cpp) and the op it creates (locus.FusedChain): the
// CP-decomposed ResNet-50 bottleneck becomes one node; a chain whose intermediate has a second
// reader is cut there, with a remark naming the reader; MobileNetV2 has no chain to fuse.
#include <gtest/gtest.h>

#include <cmath>

#include "graph/ops.h"
#include "graph/passes/pipeline.h"
#include "models/builders.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using namespace locus::test;

namespace {

int count_op(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& x : g.nodes) n += x.op == op ? 1 : 0;
  return n;
}

const PassRemark* find_remark(const PreparedGraph& p, const std::string& pass, const std::string& node) {
  for (const PassRemark& r : p.report.remarks)
    if (r.pass == pass && r.node == node) return &r;
  return nullptr;
}

TEST(FuseChain, DecomposedResNet50BottlenecksBecomeOneNodeEach) {
  Graph g = models::build_resnet50();
  PipelineOptions po;
  po.fuse_chains = true;
  CpDecomposeOptions d;
  d.policy = RankPolicy::parse("ratio=0.25");
  d.shapes_only = true;
  po.decompose = d;
  const PreparedGraph p = prepare_graph(g, po);
  const Shape out_shape = g.info(g.outputs[0]).shape;
  EXPECT_EQ(out_shape, (Shape{1, 1000}));
  // 16 bottlenecks (3 + 4 + 6 + 3), each conv1 -> [U -> dw -> V] -> conv3 -> Add -> Relu
  ASSERT_EQ(count_op(g, "FusedChain"), 16);
  EXPECT_EQ(count_op(g, "Add"), 0);
  // (the stem's chain has rank ceil(0.25 x 3) = 1: its one-channel 7x7 conv has group 1, no block)
  EXPECT_EQ(count_op(g, "FusedInvertedResidual"), 0);
  int external = 0;
  for (const Node& n : g.nodes) {
    if (n.op != "FusedChain") continue;
    SCOPED_TRACE(n.name);
    EXPECT_EQ(n.domain, kLocusDomain);
    EXPECT_EQ(n.ints("kinds"), (std::vector<int64_t>{0, 0, 1, 0, 0}));
    EXPECT_EQ(n.s("output_activation", ""), "relu");
    EXPECT_EQ(n.inputs.size(), 2u + 2 * 5);
    ASSERT_FALSE(n.input(1).empty());
    external += n.input(1) != n.input(0) ? 1 : 0;  // the projected shortcut of each stage's first block
    // the bottleneck's width: reduce to `width`, U to a quarter of it, expand to 4 x width
    const Shape reduce = g.info(n.input(2)).shape, u = g.info(n.input(4)).shape, expand = g.info(n.input(10)).shape;
    EXPECT_EQ(u[0], (reduce[0] + 3) / 4);
    EXPECT_EQ(expand[0], 4 * reduce[0]);
  }
  EXPECT_EQ(external, 4);
  // shape inference accepts every FusedChain node and gives the same output
  Graph again = g;
  infer_shapes(again);
  EXPECT_EQ(again.info(again.outputs[0]).shape, out_shape);
  int applied = 0;
  for (const PassRemark& r : p.report.remarks) applied += r.pass == "fuse-chain" && r.kind == RemarkKind::Applied;
  EXPECT_EQ(applied, 16);
}

// x -> a (1x1) -> b (1x1) -> dw 3x3 -> c (1x1) -> d (1x1) -> Add(., x) -> Relu, all with Relu
// activations; with `second_reader`, a's output is also read by a Sigmoid (a graph output).
Graph bottleneck(bool second_reader) {
  GraphBuilder b;
  const std::string x = b.input("x", {1, 16, 10, 10});
  auto conv = [&](const std::string& in, int64_t oc, int64_t ic, int64_t k, int64_t group, uint32_t seed, bool relu) {
    const std::string w = b.random_constant("w" + std::to_string(seed), {oc, ic / group, k, k}, seed, -0.3f, 0.3f);
    std::map<std::string, Attr> at{{"group", group}, {"pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2}}};
    const std::string y = b.node("Conv", {in, w}, at);
    return relu ? b.node("Relu", {y}) : y;
  };
  const std::string a = conv(x, 8, 16, 1, 1, 1, true);
  const std::string bb = conv(a, 6, 8, 1, 1, 2, false);
  const std::string dw = conv(bb, 6, 6, 3, 6, 3, false);
  const std::string c = conv(dw, 8, 6, 1, 1, 4, true);
  const std::string d = conv(c, 16, 8, 1, 1, 5, false);
  const std::string y = b.node("Relu", {b.node("Add", {d, x})});
  std::vector<std::string> outs{y};
  if (second_reader) outs.push_back(b.node("Sigmoid", {a}));
  return b.finish(outs);
}

// The default pipeline with fuse-chain on.
PreparedGraph prepare_with_chains(Graph& g) {
  PipelineOptions po;
  po.fuse_chains = true;
  return prepare_graph(g, po);
}

TEST(FuseChain, WholeBottleneckWithTheInputAsResidual) {
  Graph g = bottleneck(false);
  prepare_with_chains(g);
  ASSERT_EQ(count_op(g, "FusedChain"), 1);
  EXPECT_EQ(g.nodes.size(), 1u);
  const Node& n = g.nodes[0];
  EXPECT_EQ(n.input(0), "x");
  EXPECT_EQ(n.input(1), "x");  // the residual is the chain's input
  EXPECT_EQ(n.ints("kinds"), (std::vector<int64_t>{0, 0, 1, 0, 0}));
  EXPECT_EQ(std::get<std::vector<std::string>>(n.attrs.at("activations")),
            (std::vector<std::string>{"relu", "none", "none", "relu", "none"}));
  EXPECT_EQ(n.ints("pads"), (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(g.outputs[0], n.outputs[0]);
  // the intermediates are gone from the graph's values
  for (const auto& [name, info] : g.values) EXPECT_TRUE(name == "x" || name == n.outputs[0]) << name;
}

TEST(FuseChain, IntermediateWithTwoReadersCutsTheChainWithARemark) {
  Graph g = bottleneck(true);
  const PreparedGraph p = prepare_with_chains(g);
  // a's output is read by b and by the Sigmoid: the chain starts after a (b..d with the Add and Relu)
  ASSERT_EQ(count_op(g, "FusedChain"), 1);
  const Node* chain = nullptr;
  const Node* a = nullptr;
  for (const Node& n : g.nodes) {
    if (n.op == "FusedChain") chain = &n;
    if (n.op == "Conv") a = &n;
  }
  ASSERT_TRUE(chain && a);
  EXPECT_EQ(chain->input(0), a->outputs[0]);
  EXPECT_EQ(chain->input(1), "x");  // now another tensor than the chain's input
  EXPECT_EQ(chain->ints("kinds"), (std::vector<int64_t>{0, 1, 0, 0}));
  const PassRemark* r = find_remark(p, "fuse-chain", a->name);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->kind, RemarkKind::Missed);
  EXPECT_NE(r->message.find("also read by"), std::string::npos) << r->message;
  EXPECT_NE(r->message.find("Sigmoid"), std::string::npos) << r->message;
}

// The fused graph on a backend against the unfused graph on the reference backend: the reference
// backend's composition gives the same floats; the native kernel agrees within fp32 tolerance.
TEST(FuseChain, SessionsRunTheFusedChain) {
  const Tensor x = random_tensor({1, 16, 10, 10}, 99);
  for (bool second_reader : {false, true}) {
    SessionOptions plain;
    plain.backend_name = "reference";
    const std::vector<Tensor> want = Session::from_graph(bottleneck(second_reader), plain).run({{"x", x}});
    for (const char* backend : {"reference", "native"}) {
      SCOPED_TRACE(backend);
      SessionOptions so;
      so.backend_name = backend;
      so.pipeline.fuse_chains = true;
      so.threads = 1;
      Session s = Session::from_graph(bottleneck(second_reader), so);
      int chains = 0;
      for (const PassRemark& r : s.pass_report().remarks) chains += r.pass == "fuse-chain" && r.kind == RemarkKind::Applied;
      EXPECT_EQ(chains, 1);
      const std::vector<Tensor> got = s.run({{"x", x}});
      ASSERT_EQ(got.size(), want.size());
      for (size_t o = 0; o < got.size(); ++o) {
        ASSERT_EQ(got[o].shape, want[o].shape);
        const float* g = got[o].data<float>();
        const float* w = want[o].data<float>();
        for (int64_t k = 0; k < got[o].numel(); ++k) {
          if (std::string(backend) == "reference")
            ASSERT_EQ(g[k], w[k]) << k;
          else
            ASSERT_LE(std::fabs(g[k] - w[k]), 1e-4f * (1.f + std::fabs(w[k]))) << k;
        }
      }
    }
  }
}

TEST(FuseChain, OffByDefaultAndMobileNetV2HasNoChain) {
  Graph g = bottleneck(false);
  prepare_graph(g, PipelineOptions{});
  EXPECT_EQ(count_op(g, "FusedChain"), 0);
  Graph m = models::build_mobilenet_v2();
  prepare_with_chains(m);
  EXPECT_EQ(count_op(m, "FusedChain"), 0);
  EXPECT_GT(count_op(m, "FusedInvertedResidual"), 0);
}

}  // namespace
