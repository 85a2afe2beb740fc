// Pass `fuse-chain`.
// Matches: a residual Add whose operand is the end of a chain of stages (after fold-batchnorm,
//   fuse-activation and fuse-inverted-residual), each stage a 1x1 Conv (stride 1, no pads, group
//   1) or a depthwise Conv (group = channels, dilation 1, any window, stride, pads), with activation
//   none | relu | clip and constant weights and biases, or a FusedInvertedResidual without residual
//   (its stages are taken apart); every intermediate read only by the next stage and not a graph
//   output; optionally a Relu reading only the Add:
//     S_0 -> S_1 -> ... -> S_{n-1} -> Add(., R) [-> Relu]
//   The chain must take at least two nodes (a chain fuse-inverted-residual fused whole is left as
//   it is): a CP-decomposed ResNet-50 bottleneck, conv1 -> FusedInvertedResidual(U, dw, V) ->
//   conv3 -> Add(shortcut) -> Relu, becomes one node. Chains without a residual Add are not fused
//   (MobileNetV2's blocks stay FusedInvertedResidual nodes; their Adds are inside them).
// Guarantees: one FusedChain node (domain locus, contract in graph/ops.h) at the position of the
//   last node, named "<first>..<last>", reading the original constants, writing the last node's
//   output; intermediate values are removed from g.values; the output shape is unchanged.
// Refuses with a remark (missed) on the stage at fault: a stage whose output is also read by
//   another node or is a graph output (the chain then starts after it), a residual of another shape.
// Runs after fuse-inverted-residual when PipelineOptions::fuse_chains (consumers that execute the
//   op: the accelerator model's energy study).
#include <limits>
#include <optional>
#include <set>

#include "graph/ops.h"
#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

constexpr const char* kPassName = "fuse-chain";

bool default_domain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

struct Stage {
  bool dw = false;
  std::string w, b, act = "none";
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  std::vector<int64_t> strides{1, 1}, pads{0, 0, 0, 0};
};

// A Conv's activation (locus.activation*) on a stage.
void conv_activation(const Node& n, Stage& s) {
  s.act = n.s("locus.activation", "none");
  if (s.act == "clip") {
    s.lo = n.f("locus.activation_min", s.lo);
    s.hi = n.f("locus.activation_max", s.hi);
  }
}

// The stages node `n` contributes, or nullopt when it is not a chain stage.
std::optional<std::vector<Stage>> stages_of(const Graph& g, const Node& n) {
  if (n.op == "FusedInvertedResidual" && n.domain == kLocusDomain) {
    if (n.i("residual", 0) != 0) return std::nullopt;
    std::vector<Stage> r;
    auto add = [&](size_t wk, bool dw, const std::string& prefix) {
      Stage s;
      s.dw = dw, s.w = n.input(wk), s.b = n.input(wk + 1);
      s.act = n.s(prefix + "_activation", "none");
      s.lo = n.f(prefix + "_activation_min", s.lo);
      s.hi = n.f(prefix + "_activation_max", s.hi);
      if (dw) s.strides = n.ints(prefix + "_strides", {1, 1}), s.pads = n.ints(prefix + "_pads", {0, 0, 0, 0});
      r.push_back(s);
    };
    if (!n.input(1).empty()) add(1, false, "expand");
    add(3, true, "dw");
    if (!n.input(7).empty()) add(7, true, "dw2");
    if (!n.input(5).empty()) add(5, false, "project");
    return r;
  }
  if (n.op != "Conv" || !default_domain(n) || n.input(1).empty() || !g.is_constant(n.input(1))) return std::nullopt;
  if (!n.input(2).empty() && !g.is_constant(n.input(2))) return std::nullopt;
  if (!n.input(3).empty()) return std::nullopt;  // a fused residual (locus.residual)
  const std::string act = n.s("locus.activation", "none");
  if (act != "none" && act != "relu" && act != "clip") return std::nullopt;
  const Shape w = g.info(n.input(1)).shape, x = g.info(n.input(0)).shape;
  if (w.size() != 4 || x.size() != 4 || n.ints("dilations", {1, 1}) != std::vector<int64_t>{1, 1}) return std::nullopt;
  Stage s;
  s.w = n.input(1), s.b = n.input(2);
  conv_activation(n, s);
  const int64_t group = n.i("group", 1);
  if (group == 1 && w[2] == 1 && w[3] == 1) {
    if (n.ints("strides", {1, 1}) != std::vector<int64_t>{1, 1} ||
        n.ints("pads", {0, 0, 0, 0}) != std::vector<int64_t>{0, 0, 0, 0})
      return std::nullopt;
  } else if (group > 1 && group == x[1] && w[0] == x[1] && w[1] == 1) {
    s.dw = true;
    s.strides = n.ints("strides", {1, 1});
    s.pads = n.ints("pads", {0, 0, 0, 0});
  } else {
    return std::nullopt;
  }
  return std::vector<Stage>{s};
}

struct Match {
  std::vector<int> nodes;  // stage nodes, first to last, then the Add [and the Relu]
  std::vector<Stage> stages;
  std::string x, r, y;
  bool relu = false;
};

class FuseChain : public Pass {
 public:
  std::string name() const override { return kPassName; }
  std::string description() const override {
    return "fuses chains of 1x1 and depthwise convs (and FusedInvertedResidual nodes) ending in a residual Add "
           "[+ Relu], e.g. a CP-decomposed ResNet-50 bottleneck, into one FusedChain";
  }

  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    std::vector<bool> taken(g.nodes.size(), false);
    std::vector<std::pair<Match, Node>> fused;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& add = g.nodes[i];
      if (taken[i] || add.op != "Add" || !default_domain(add) || add.inputs.size() != 2) continue;
      std::optional<Match> m = match(g, int(i), taken, remarks);
      if (!m) continue;
      for (int k : m->nodes) taken[size_t(k)] = true;
      fused.emplace_back(*m, build(g, *m));
    }
    if (fused.empty()) return 0;
    std::vector<bool> keep(g.nodes.size(), true);
    std::set<std::string> node_names;
    for (const Node& n : g.nodes) node_names.insert(n.name);
    for (auto& [m, node] : fused) {
      const int last = m.nodes.back();
      for (int k : m.nodes) {
        node_names.erase(g.nodes[size_t(k)].name);
        if (k != last) {
          for (auto& o : g.nodes[size_t(k)].outputs) g.values.erase(o);
          keep[size_t(k)] = false;
        }
      }
      const std::string base = node.name;
      for (int s = 1; node_names.count(node.name); ++s) node.name = cat(base, "_", s);
      node_names.insert(node.name);
      remarks.push_back({kPassName, node.name,
                         cat("fused ", m.nodes.size(), " nodes (", m.stages.size(), " stages", m.relu ? ", the Add and the Relu" : ", the Add",
                             ") into one chain"),
                         RemarkKind::Applied});
      g.nodes[size_t(last)] = std::move(node);
    }
    g.erase_nodes(keep);
    return int(fused.size());
  }

 private:
  std::optional<Match> match(const Graph& g, int a, const std::vector<bool>& taken, std::vector<PassRemark>& remarks) const {
    const Node& add = g.nodes[size_t(a)];
    for (int k : {0, 1}) {
      const std::string tail = add.input(size_t(k)), r = add.input(size_t(1 - k));
      const int p = g.producer(tail);
      if (p < 0 || taken[size_t(p)] || !stages_of(g, g.nodes[size_t(p)])) continue;
      if (g.info(tail).shape != g.info(r).shape || g.info(add.outputs[0]).shape != g.info(r).shape) {
        remarks.push_back({kPassName, add.name, cat("not fused: the residual '", r, "' has shape ", shape_str(g.info(r).shape),
                                                    ", the chain's output ", shape_str(g.info(tail).shape))});
        continue;
      }
      if (g.is_graph_output(tail) || g.consumers(tail).size() != 1) continue;  // the Add is not the chain's one reader
      Match m;
      m.nodes = {p};
      for (int cur = p;;) {
        const std::string in = g.nodes[size_t(cur)].input(0);
        const int q = g.producer(in);
        if (q < 0 || taken[size_t(q)] || !stages_of(g, g.nodes[size_t(q)])) break;
        std::string others;
        for (int c : g.consumers(in))
          if (c != cur) others += (others.empty() ? "'" : ", '") + g.nodes[size_t(c)].name + "'";
        if (!others.empty() || g.is_graph_output(in)) {
          remarks.push_back({kPassName, g.nodes[size_t(q)].name,
                             cat("not fused into the chain ending at '", add.name, "': its output '", in, "' ",
                                 others.empty() ? std::string("is a graph output") : "is also read by " + others)});
          break;
        }
        m.nodes.insert(m.nodes.begin(), q);
        cur = q;
      }
      if (m.nodes.size() < 2) continue;  // one node: fuse-inverted-residual's or fuse-residual's
      for (int n : m.nodes) {
        auto st = stages_of(g, g.nodes[size_t(n)]);
        m.stages.insert(m.stages.end(), st->begin(), st->end());
      }
      m.x = g.nodes[size_t(m.nodes.front())].input(0);
      m.r = r;
      m.nodes.push_back(a);
      m.y = add.outputs[0];
      const std::vector<int> readers = g.consumers(m.y);
      if (readers.size() == 1 && !g.is_graph_output(m.y) && !taken[size_t(readers[0])]) {
        const Node& relu = g.nodes[size_t(readers[0])];
        if (relu.op == "Relu" && default_domain(relu)) {
          m.relu = true;
          m.nodes.push_back(readers[0]);
          m.y = relu.outputs[0];
        }
      }
      return m;
    }
    return std::nullopt;
  }

  Node build(const Graph& g, const Match& m) const {
    Node n;
    n.op = "FusedChain";
    n.domain = kLocusDomain;
    n.name = g.nodes[size_t(m.nodes.front())].name + ".." + g.nodes[size_t(m.nodes.back())].name;
    n.inputs = {m.x, m.r};
    n.outputs = {m.y};
    std::vector<int64_t> kinds, strides, pads;
    std::vector<std::string> acts;
    std::vector<float> lo, hi;
    for (const Stage& s : m.stages) {
      n.inputs.push_back(s.w);
      n.inputs.push_back(s.b);
      kinds.push_back(s.dw ? 1 : 0);
      strides.insert(strides.end(), s.strides.begin(), s.strides.end());
      pads.insert(pads.end(), s.pads.begin(), s.pads.end());
      acts.push_back(s.act);
      lo.push_back(s.lo);
      hi.push_back(s.hi);
    }
    n.attrs["kinds"] = kinds;
    n.attrs["strides"] = strides;
    n.attrs["pads"] = pads;
    n.attrs["activations"] = acts;
    n.attrs["activation_min"] = lo;
    n.attrs["activation_max"] = hi;
    n.attrs["output_activation"] = std::string(m.relu ? "relu" : "none");
    std::string names;
    for (int k : m.nodes) names += (names.empty() ? "" : ", ") + g.nodes[size_t(k)].name;
    n.attrs["fused_nodes"] = names;
    return n;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_chain_pass() { return std::make_unique<FuseChain>(); }

}  // namespace locus
