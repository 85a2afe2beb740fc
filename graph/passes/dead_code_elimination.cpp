// Pass `dead-code-elimination`.
// Matches: nodes none of whose outputs is read by another node or is a graph output, and constants
//   nobody reads.
// Guarantees: graph outputs and everything they depend on are kept; node order is preserved.
#include <set>

#include "graph/passes/pass_manager.h"

namespace locus {
namespace {

int eliminate_dead_code(Graph& g, std::vector<PassRemark>&) {
  std::set<std::string> live(g.outputs.begin(), g.outputs.end());
  std::vector<bool> keep(g.nodes.size(), false);
  int removed = 0;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    for (auto& o : n.outputs)
      if (!o.empty() && live.count(o)) keep[i] = true;
    if (keep[i]) {
      for (auto& in : n.inputs)
        if (!in.empty()) live.insert(in);
    } else {
      ++removed;
      for (auto& o : n.outputs) g.values.erase(o);
    }
  }
  g.erase_nodes(keep);
  for (auto it = g.constants.begin(); it != g.constants.end();) {
    if (!live.count(it->first)) {
      it = g.constants.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

}  // namespace

std::unique_ptr<Pass> make_dead_code_elimination_pass() {
  return make_pass("dead-code-elimination", "removes nodes and constants that no graph output depends on",
                   eliminate_dead_code);
}

}  // namespace locus
