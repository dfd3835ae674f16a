// Identity and inference-mode Dropout pass their input through: readers of the output read the input instead.
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

bool is_passthrough(const ir::Model& m, const ir::Node& n, const GraphView& view) {
  if (is_onnx(n, "Identity")) return n.inputs.size() == 1 && n.outputs.size() == 1;
  if (!is_onnx(n, "Dropout") || n.inputs.empty() || n.outputs.empty()) return false;
  // The mask output must be unused, and the node must be in inference mode.
  if (n.outputs.size() > 1 && !n.outputs[1].empty() && view.use_count(n.outputs[1]) > 0) return false;
  if (m.opset("").value_or(0) < 7 && attr_int(n, "is_test", 0) == 0) return false;
  if (n.inputs.size() > 2 && !n.inputs[2].empty() && !is_constant_scalar(m.graph, n.inputs[2], 0.0)) return false;
  return true;
}

}  // namespace

int eliminate_identity(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  for (auto& n : g.nodes) {
    if (!is_passthrough(m, n, view)) continue;
    const std::string& in = n.inputs[0];
    const std::string out = n.outputs[0];
    // A graph output keeps its name, and subgraphs read names we do not rewrite.
    if (in.empty() || view.is_graph_output(out) || view.read_by_subgraph(out)) continue;
    rename_reads(g, out, in);
    mark_removed(n);
    ++rewrites;
  }
  sweep_removed(g);
  return rewrites;
}

}  // namespace kiln::opt
