// Conv + Add (a residual connection): ai.kiln FusedConv(X, W, B, Z) computes Conv(X, W) + B + Z in one pass
// (oneDNN's sum post-op); a Relu after the Add is fused later by fuse_activation. Only float32 convolutions
// (constant float32 W) qualify.
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {

int fuse_conv_add(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  for (auto& add : g.nodes) {
    if (!is_onnx(add, "Add") || add.inputs.size() != 2 || add.inputs[0] == add.inputs[1]) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& conv_out = add.inputs[static_cast<size_t>(side)];
      const std::string z = add.inputs[static_cast<size_t>(1 - side)];
      const int p = view.producer(conv_out);
      if (p < 0 || view.single_reader(conv_out) < 0) continue;
      ir::Node& conv = g.nodes[static_cast<size_t>(p)];
      if (!is_onnx(conv, "Conv") || conv.inputs.size() < 2) continue;
      const Tensor* w = constant_tensor(g, conv.inputs[1]);
      if (!w || w->dtype() != DType::kFloat32) continue;
      // Z must be ready before the convolution runs: it is produced earlier (or is not a node output).
      const int pz = view.producer(z);
      if (pz > p) continue;
      conv.op_type = "FusedConv";
      conv.domain = kKilnDomain;
      conv.inputs.resize(3);
      conv.inputs.push_back(z);
      conv.outputs[0] = add.outputs[0];
      mark_removed(add);
      ++rewrites;
      break;
    }
  }
  sweep_removed(g);
  if (rewrites) import_kiln_domain(m);
  return rewrites;
}

}  // namespace kiln::opt
