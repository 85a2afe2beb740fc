// In-place residual convs (runtime/native/in_place.h): which fused-residual 1x1 convs the native
// backend lets write over their residual, on graphs after the optimisation passes, and the results
// of networks that do, against the reference backend.
#include <gtest/gtest.h>

#include "runtime/memory_planner.h"
#include "runtime/native/in_place.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

using namespace locus;
using locus::test::GraphBuilder;
using locus::test::random_tensor;

namespace {

using Ints = std::vector<int64_t>;

// A 3x3 stem, then `blocks` ResNet bottlenecks (1x1 reduce + relu, 1x1 expand, Add of the block's
// input, Relu), then a last 1x1 conv (so no block output is a graph output unless `output_last`).
// extra_reader: the first block's residual is also read by a node after that block (an Add into the
// second block's output), so it must outlive the first block's expansion.
struct Net {
  Graph g;
  std::string stem, first_out;
};
Net bottlenecks(int blocks, bool output_last = false, bool extra_reader = false, Ints expand_strides = {1, 1}) {
  GraphBuilder b;
  uint32_t seed = 10;
  auto x = b.input("x", {1, 8, 9, 7});
  Net net;
  std::string y = b.node("Conv", {x, b.random_constant("ws", {16, 8, 3, 3}, seed++), b.random_constant("bs", {16}, seed++)},
                         {{"pads", Ints{1, 1, 1, 1}}});
  y = b.node("Relu", {y});
  net.stem = y;
  for (int k = 0; k < blocks; ++k) {
    const std::string n = std::to_string(k);
    auto r = b.node("Relu", {b.node("Conv", {y, b.random_constant("w1_" + n, {4, 16, 1, 1}, seed++),
                                             b.random_constant("b1_" + n, {4}, seed++)})});
    auto e = b.node("Conv", {r, b.random_constant("w2_" + n, {16, 4, 1, 1}, seed++), b.random_constant("b2_" + n, {16}, seed++)},
                    {{"strides", expand_strides}});
    auto out = b.node("Relu", {b.node("Add", {e, y})});
    if (k == 0) net.first_out = out;
    if (extra_reader && k == 1) out = b.node("Add", {out, net.stem});
    y = out;
  }
  if (!output_last) y = b.node("Conv", {y, b.random_constant("wl", {6, 16, 1, 1}, seed++)});
  net.g = b.finish({y});
  return net;
}

// The optimised graph of the native session, its fused-residual convs' outputs in graph order, and
// the aliases the backend plans for it.
struct Planned {
  std::vector<std::string> residual_outputs;
  std::map<std::string, std::string> alias;
  std::map<std::string, std::string> impl;  // node -> implementation
};
Planned plan_of(const Graph& g) {
  Session s = Session::from_graph(g);
  Planned p;
  for (const Node& n : s.graph().nodes)
    if (n.op == "Conv" && n.i("locus.residual", 0)) p.residual_outputs.push_back(n.outputs[0]);
  p.alias = native::in_place_residuals(s.graph(), value_lifetimes(s.graph()));
  for (const NodeImplementation& ni : s.executable().implementations()) p.impl[ni.node] = ni.implementation;
  return p;
}

double native_vs_reference(const Graph& g, int threads) {
  const std::map<std::string, Tensor> in{{"x", random_tensor({1, 8, 9, 7}, 3)}};
  SessionOptions ref;
  ref.backend_name = "reference";
  ref.pipeline.optimize = false;
  auto want = Session::from_graph(g, ref).run(in);
  SessionOptions nat;
  nat.threads = threads;
  auto got = Session::from_graph(g, nat).run(in);
  EXPECT_EQ(got[0].shape, want[0].shape);
  return test::max_abs_diff(got[0].data<float>(), want[0].data<float>(), size_t(got[0].numel()));
}

}  // namespace

TEST(InPlaceResidual, ChainsResolveToTheFirstResidual) {
  const Net net = bottlenecks(3);
  const Planned p = plan_of(net.g);
  ASSERT_EQ(p.residual_outputs.size(), 3u) << "the residual Adds were not fused into the convs";
  // Block 1 writes over the stem's output; blocks 2 and 3 over block 1's and 2's outputs, which
  // live in the stem's memory already.
  ASSERT_EQ(p.alias.size(), 3u);
  for (const std::string& y : p.residual_outputs) {
    ASSERT_TRUE(p.alias.count(y)) << y;
    EXPECT_EQ(p.alias.at(y), net.stem) << y;
  }
  int in_place = 0;
  for (auto& [node, impl] : p.impl) in_place += impl.find("+ residual (in place)") != std::string::npos;
  EXPECT_EQ(in_place, 3);
}

TEST(InPlaceResidual, RefusedWhereTheResidualLivesOnOrTheConvCannotAddIntoIt) {
  {  // the first block's residual (the stem) is read again after the block: block 1 keeps its own memory
    const Planned p = plan_of(bottlenecks(2, false, true).g);
    ASSERT_EQ(p.residual_outputs.size(), 2u);
    EXPECT_FALSE(p.alias.count(p.residual_outputs[0]));
    EXPECT_TRUE(p.alias.count(p.residual_outputs[1]));
  }
  {  // the last block's output is the graph output: it keeps its own memory
    const Planned p = plan_of(bottlenecks(2, true).g);
    ASSERT_EQ(p.residual_outputs.size(), 2u);
    EXPECT_TRUE(p.alias.count(p.residual_outputs[0]));
    EXPECT_FALSE(p.alias.count(p.residual_outputs[1]));
  }
  {  // the residual is a graph input
    GraphBuilder b;
    auto x = b.input("x", {1, 16, 5, 5});
    auto e = b.node("Conv", {x, b.random_constant("w", {16, 16, 1, 1}, 1)});
    auto y = b.node("Conv", {b.node("Relu", {b.node("Add", {e, x})}), b.random_constant("w2", {4, 16, 1, 1}, 2)});
    const Planned p = plan_of(b.finish({y}));
    ASSERT_EQ(p.residual_outputs.size(), 1u);
    EXPECT_TRUE(p.alias.empty());
  }
  {  // a 3x3 conv with a residual (adds in its epilogue, not in place)
    GraphBuilder b;
    auto x = b.input("x", {1, 8, 6, 6});
    auto s = b.node("Relu", {b.node("Conv", {x, b.random_constant("w0", {16, 8, 1, 1}, 1)})});
    auto e = b.node("Conv", {s, b.random_constant("w", {16, 16, 3, 3}, 2)}, {{"pads", Ints{1, 1, 1, 1}}});
    auto y = b.node("Conv", {b.node("Relu", {b.node("Add", {e, s})}), b.random_constant("w2", {4, 16, 1, 1}, 3)});
    const Planned p = plan_of(b.finish({y}));
    ASSERT_EQ(p.residual_outputs.size(), 1u);
    EXPECT_TRUE(p.alias.empty());
  }
}

TEST(InPlaceResidual, NetworksWritingOverTheirResidualsMatchTheReference) {
  for (int threads : {1, 2}) {
    EXPECT_LT(native_vs_reference(bottlenecks(3).g, threads), 1e-4) << "threads " << threads;
    EXPECT_LT(native_vs_reference(bottlenecks(2, false, true).g, threads), 1e-4) << "threads " << threads;
    EXPECT_LT(native_vs_reference(bottlenecks(2, true).g, threads), 1e-4) << "threads " << threads;
  }
}

TEST(InPlaceResidual, AliasedValuesTakeNoMemoryOfTheirOwn) {
  std::vector<BufferRequest> req = {{"a", 100, 0, 2}, {"b", 100, 1, 3}, {"c", 100, 3, 5}, {"d", 50, 0, 1}};
  native::apply_in_place({{"b", "a"}, {"c", "a"}}, req);
  EXPECT_EQ(req[0].first, 0);
  EXPECT_EQ(req[0].last, 5);  // the root lives until the last reader of every value sharing it
  EXPECT_EQ(req[1].bytes, 0);
  EXPECT_EQ(req[2].bytes, 0);
  EXPECT_EQ(req[3].bytes, 50);
  EXPECT_EQ(req[3].last, 1);
}
