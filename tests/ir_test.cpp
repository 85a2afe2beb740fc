// The graph IR itself: topological sorting (and its errors), names, element-count limits, typed
// attribute access.
#include <gtest/gtest.h>

#include <cmath>

#include "graph/ir.h"

using namespace locus;

namespace {

Node make(const std::string& name, std::vector<std::string> in, std::vector<std::string> out) {
  Node n;
  n.op = "Relu";
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

}  // namespace

TEST(Ir, TopoSortOrdersProducersFirst) {
  Graph g;
  g.inputs = {"x"};
  g.nodes = {make("c", {"b"}, {"c"}), make("a", {"x"}, {"a"}), make("b", {"a"}, {"b"})};
  g.topo_sort();
  ASSERT_EQ(g.nodes.size(), 3u);
  EXPECT_EQ(g.nodes[0].name, "a");
  EXPECT_EQ(g.nodes[1].name, "b");
  EXPECT_EQ(g.nodes[2].name, "c");
}

TEST(Ir, TopoSortRejectsCyclesUndefinedValuesAndDoubleProducers) {
  Graph cyc;
  cyc.inputs = {"x"};
  cyc.nodes = {make("p", {"q_out"}, {"p_out"}), make("q", {"p_out"}, {"q_out"})};
  try {
    cyc.topo_sort();
    FAIL() << "cycle accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  Graph undef;
  undef.nodes = {make("n", {"nowhere"}, {"y"})};
  EXPECT_THROW(undef.topo_sort(), Error);
  Graph twice;
  twice.inputs = {"x"};
  twice.nodes = {make("a", {"x"}, {"y"}), make("b", {"x"}, {"y"})};
  EXPECT_THROW(twice.topo_sort(), Error);
}

TEST(Ir, DeepChainSortsWithoutRecursion) {
  Graph g;
  g.inputs = {"v0"};
  const int n = 200000;  // a recursive sort would overflow the stack here
  for (int i = n; i >= 1; --i) g.nodes.push_back(make("n" + std::to_string(i), {"v" + std::to_string(i - 1)}, {"v" + std::to_string(i)}));
  g.topo_sort();
  EXPECT_EQ(g.nodes.front().name, "n1");
  EXPECT_EQ(g.nodes.back().name, "n" + std::to_string(n));
}

TEST(Ir, CheckedNumelRefusesAbsurdAndNegativeShapes) {
  EXPECT_EQ(checked_numel({2, 3, 4}, "t"), 24);
  EXPECT_EQ(checked_numel({5, 0, 1 << 30}, "t"), 0);
  EXPECT_THROW(checked_numel({1 << 20, 1 << 20}, "t"), Error);
  EXPECT_THROW(checked_numel({-1, 3}, "t"), Error);
  EXPECT_THROW(Tensor(DType::F32, {int64_t(1) << 40}), Error);
}

TEST(Ir, FreshNameAvoidsEveryKindOfName) {
  Graph g;
  g.inputs = {"x"};
  g.constants["w"] = Tensor::scalar_f32(1.f);
  g.nodes = {make("n", {"x"}, {"y"})};
  EXPECT_EQ(g.fresh_name("z"), "z");
  EXPECT_EQ(g.fresh_name("x"), "x_1");
  EXPECT_EQ(g.fresh_name("w"), "w_1");
  EXPECT_EQ(g.fresh_name("y"), "y_1");
}

TEST(Ir, TypedAttributesWithDefaultsAndTypeErrors) {
  Node n;
  n.name = "k";
  n.op = "Conv";
  n.attrs["group"] = int64_t(4);
  n.attrs["strides"] = std::vector<int64_t>{2, 2};
  n.attrs["mode"] = std::string("x");
  EXPECT_EQ(n.i("group", 1), 4);
  EXPECT_EQ(n.i("missing", 7), 7);
  EXPECT_EQ(n.ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_THROW(n.i("mode", 0), Error);
  EXPECT_THROW(n.ints("group"), Error);
}

TEST(Ir, TensorIntegerAccessRejectsNonFiniteFloats) {
  Tensor t = Tensor::from_f32({2}, {3.f, NAN});
  EXPECT_EQ(t.get_int(0), 3);
  EXPECT_THROW(t.get_int(1), Error);
  Tensor e = Tensor::from_i64({0}, {});
  EXPECT_EQ(e.numel(), 0);
}
