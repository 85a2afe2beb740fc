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
    int changes = 0;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].op != "Identity") continue;
      std::string in = g.nodes[i].input(0), out = g.nodes[i].outputs[0];
      if (g.is_graph_output(out)) {
        int p = g.producer(in);
        bool in_is_boundary = p < 0 || g.is_graph_output(in);
        if (in_is_boundary) {
          remarks.push_back({name(), g.nodes[i].name, "kept: copies a graph input or output to a graph output"});
          continue;
        }
        // rename the producer's output to the graph output name
        for (auto& o : g.nodes[size_t(p)].outputs)
          if (o == in) o = out;
        for (auto& n : g.nodes)
          for (auto& x : n.inputs)
            if (x == in) x = out;
        g.values.erase(in);
      } else {
        for (auto& n : g.nodes)
          for (auto& x : n.inputs)
            if (x == out) x = in;
        g.values.erase(out);
      }
      g.nodes.erase(g.nodes.begin() + long(i));
      --i;
      ++changes;
    }
    return changes;
  }
};

}  // namespace

std::unique_ptr<Pass> make_eliminate_identity_pass() { return std::make_unique<EliminateIdentity>(); }

}  // namespace locus
