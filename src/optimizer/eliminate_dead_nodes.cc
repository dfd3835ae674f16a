// Removes nodes whose outputs nothing reads (no node, subgraph or graph output), then initializers nothing
// reads (unless they are also graph inputs).
#include <unordered_set>

#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {

int eliminate_dead_nodes(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  for (bool changed = true; changed;) {
    changed = false;
    GraphView view(g);
    for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it) {
      bool used = false;
      for (const auto& o : it->outputs) used = used || (!o.empty() && view.use_count(o) > 0);
      if (!used && !it->op_type.empty()) {
        mark_removed(*it);
        changed = true;
        ++rewrites;
      }
    }
    sweep_removed(g);
  }
  GraphView view(g);
  std::unordered_set<std::string> inputs;
  for (const auto& i : g.inputs) inputs.insert(i.name);
  const size_t before = g.initializers.size();
  std::erase_if(g.initializers,
                [&](const ir::NamedTensor& t) { return !inputs.count(t.name) && view.use_count(t.name) == 0; });
  rewrites += static_cast<int>(before - g.initializers.size());
  return rewrites;
}

}  // namespace kiln::opt
