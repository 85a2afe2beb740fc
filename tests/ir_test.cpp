// The graph IR itself: topological sorting (and its errors), names, element-count limits, typed
// attribute access.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

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

// ---- the producer/consumer index ----

namespace {
int naive_producer(const Graph& g, const std::string& v) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (auto& o : g.nodes[i].outputs)
      if (o == v) return int(i);
  return -1;
}
std::vector<int> naive_consumers(const Graph& g, const std::string& v) {
  std::vector<int> r;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (std::find(g.nodes[i].inputs.begin(), g.nodes[i].inputs.end(), v) != g.nodes[i].inputs.end())
      r.push_back(int(i));
  return r;
}
void expect_index_matches(const Graph& g, int nvalues, const std::string& when) {
  for (int v = 0; v < nvalues; ++v) {
    const std::string name = "v" + std::to_string(v);
    ASSERT_EQ(g.producer(name), naive_producer(g, name)) << when << ": producer of " << name;
    ASSERT_EQ(g.consumers(name), naive_consumers(g, name)) << when << ": consumers of " << name;
  }
}
}  // namespace

// Random graphs edited through set_input / set_output, appended to and erased from: the index
// answers what a scan of the nodes answers after every step.
TEST(IrUses, IndexFollowsEveryEdit) {
  std::mt19937 rng(5);
  const int nvalues = 40;
  auto value = [&] { return "v" + std::to_string(rng() % nvalues); };
  for (int trial = 0; trial < 20; ++trial) {
    Graph g;
    for (int i = 0; i < 30; ++i) {
      Node n;
      n.op = "Add";
      n.name = "n" + std::to_string(i);
      n.inputs = {value(), value(), rng() % 4 ? value() : ""};
      n.outputs = {value()};
      g.nodes.push_back(n);
    }
    expect_index_matches(g, nvalues, "built");
    for (int step = 0; step < 60; ++step) {
      const int node = int(rng() % g.nodes.size());
      switch (rng() % 5) {
        case 0: g.set_input(node, rng() % g.nodes[size_t(node)].inputs.size(), value()); break;
        case 1: g.set_output(node, 0, value()); break;
        case 2: g.set_input(node, 0, ""); break;
        case 3: {
          Node n = g.nodes[size_t(node)];
          n.outputs = {value()};
          g.nodes.push_back(n);
          break;
        }
        case 4: {
          std::vector<bool> keep(g.nodes.size(), true);
          keep[size_t(node)] = g.nodes.size() < 5;
          g.erase_nodes(keep);
          break;
        }
      }
      expect_index_matches(g, nvalues, "trial " + std::to_string(trial) + " step " + std::to_string(step));
    }
    // a copy starts without the original's index and edits to it do not leak back
    Graph copy = g;
    copy.set_output(0, 0, "v0");
    expect_index_matches(copy, nvalues, "copy");
    expect_index_matches(g, nvalues, "original after the copy's edit");
  }
}
