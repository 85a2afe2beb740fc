// Pass `eliminate-identity`.
// Matches: Identity nodes (inference-mode Dropout arrives here as Identity from the importer).
// Guarantees: readers of the Identity's output read its input instead. An Identity whose output is
//   a graph output is kept when its input is a graph input or also a graph output (the output name
//   must survive), otherwise the producer's output is renamed to the graph output.
#include <algorithm>

#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

class EliminateIdentity : public Pass {
 public:
  std::string name() const override { return "eliminate-identity"; }
  std::string description() const override { return "removes Identity nodes by rewiring readers"; }
  int run(Graph& g, std::vector<PassRemark>& remarks) override {
    // Identity nodes are rewired out as they are met and erased together at the end, so that each
    // one costs the readers of its value, not a walk over the whole graph.
    int changes = 0;
    std::vector<bool> keep(g.nodes.size(), true);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].op != "Identity") continue;
      const std::string in = g.nodes[i].input(0), out = g.nodes[i].outputs[0];
      if (g.is_graph_output(out)) {
        const int p = g.producer(in);
        bool in_is_boundary = p < 0 || g.is_graph_output(in);
        if (in_is_boundary) {
          remarks.push_back({name(), g.nodes[i].name, "kept: copies a graph input or output to a graph output"});
          continue;
        }
        // rename the producer's output to the graph output name
        for (size_t k = 0; k < g.nodes[size_t(p)].outputs.size(); ++k)
          if (g.nodes[size_t(p)].outputs[k] == in) g.set_output(p, k, out);
        rewire_readers(g, in, out, int(i));
        g.values.erase(in);
      } else {
        rewire_readers(g, out, in, int(i));
        g.values.erase(out);
      }
      keep[i] = false;
      ++changes;
    }
    g.erase_nodes(keep);
    return changes;
  }

 private:
  // Every live node reading `from` reads `to` instead (`skip`, the Identity, is going).
  static void rewire_readers(Graph& g, const std::string& from, const std::string& to, int skip) {
    for (int c : g.consumers(from)) {
      if (c == skip) continue;
      for (size_t k = 0; k < g.nodes[size_t(c)].inputs.size(); ++k)
        if (g.nodes[size_t(c)].inputs[k] == from) g.set_input(c, k, to);
    }
  }
};

}  // namespace

std::unique_ptr<Pass> make_eliminate_identity_pass() { return std::make_unique<EliminateIdentity>(); }

}  // namespace locus
