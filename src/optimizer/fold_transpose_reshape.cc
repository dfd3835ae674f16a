// Transpose of a Transpose becomes one Transpose (none when the permutations cancel); Reshape of a Reshape
// becomes one Reshape when the second shape has no 0 (copy-this-dim) entries. The first node must have no
// other reader.
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {

int fold_transpose_reshape(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  for (bool changed = true; changed;) {
    changed = false;
    GraphView view(g);
    for (auto& second : g.nodes) {
      const bool transpose = is_onnx(second, "Transpose");
      if ((!transpose && !is_onnx(second, "Reshape")) || second.inputs.empty()) continue;
      const int p = view.producer(second.inputs[0]);
      if (p < 0 || view.single_reader(second.inputs[0]) < 0) continue;
      ir::Node& first = g.nodes[static_cast<size_t>(p)];
      if (first.op_type != second.op_type || first.domain != second.domain || first.inputs.empty()) continue;
      if (transpose) {
        auto p1 = attr_ints(first, "perm"), p2 = attr_ints(second, "perm");
        if (p1.empty() || p1.size() != p2.size()) continue;  // default perms need the rank
        std::vector<int64_t> perm(p2.size());
        bool identity = true, valid = true;
        for (size_t i = 0; i < p2.size(); ++i) {
          if (p2[i] < 0 || p2[i] >= static_cast<int64_t>(p1.size())) valid = false;
          if (!valid) break;
          perm[i] = p1[static_cast<size_t>(p2[i])];
          identity = identity && perm[i] == static_cast<int64_t>(i);
        }
        if (!valid) continue;
        if (identity && !view.is_graph_output(second.outputs[0]) && !view.read_by_subgraph(second.outputs[0])) {
          rename_reads(g, second.outputs[0], first.inputs[0]);
          mark_removed(second);
        } else {
          ir::Attribute a;
          a.name = "perm";
          a.type = ir::AttrType::kInts;
          a.ints = perm;
          set_attr(second, a);
          second.inputs[0] = first.inputs[0];
        }
      } else {
        if (second.inputs.size() < 2) continue;
        const Tensor* shape = constant_tensor(g, second.inputs[1]);
        if (!shape || shape->dtype() != DType::kInt64) continue;
        bool has_zero = false;
        for (int64_t d : shape->to_vector<int64_t>()) has_zero = has_zero || d == 0;
        if (has_zero) continue;
        second.inputs[0] = first.inputs[0];
      }
      mark_removed(first);
      ++rewrites;
      changed = true;
      break;  // the view is stale now
    }
    sweep_removed(g);
  }
  return rewrites;
}

}  // namespace kiln::opt
