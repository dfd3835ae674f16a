// MatMul(A, B) + bias with a constant float32 2-D B [K, N] and a constant bias of N elements: Gemm when A is
// known to be 2-D, otherwise ai.kiln FusedMatMul (any rank of A; its leading dims fold into the rows).
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

bool known_rank2(const ir::Graph& g, const std::string& name) {
  const ir::ValueInfo* vi = g.find_value_info(name);
  return vi && vi->type.kind == ir::Type::Kind::kTensor && vi->type.shape && vi->type.shape->rank() == 2;
}

}  // namespace

int fuse_matmul_add(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  for (auto& add : g.nodes) {
    if (!is_onnx(add, "Add") || add.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      const std::string& mm_out = add.inputs[static_cast<size_t>(side)];
      const std::string& bias = add.inputs[static_cast<size_t>(1 - side)];
      const int p = view.producer(mm_out);
      if (p < 0 || view.single_reader(mm_out) < 0) continue;
      ir::Node& mm = g.nodes[static_cast<size_t>(p)];
      if (!is_onnx(mm, "MatMul") || mm.inputs.size() != 2) continue;
      const Tensor* b = constant_tensor(g, mm.inputs[1]);
      const Tensor* c = constant_tensor(g, bias);
      if (!b || !c || b->dtype() != DType::kFloat32 || c->dtype() != DType::kFloat32 || b->rank() != 2) continue;
      const int64_t N = b->dims()[1];
      // The bias must broadcast along the last axis only: [N], [1, N], [1, 1, N], ...
      if (c->num_elements() != N || c->rank() == 0 || c->dims().back() != N) continue;
      if (known_rank2(g, mm.inputs[0]) && c->rank() <= 2) {
        mm.op_type = "Gemm";
        mm.domain.clear();
      } else {
        // A bias of rank > 2 may broadcast A up ([M, K] @ B + [1, 1, N] is 3-D): keep it unless A's rank covers it.
        if (c->rank() > 2) continue;
        mm.op_type = "FusedMatMul";
        mm.domain = kKilnDomain;
        import_kiln_domain(m);
      }
      mm.inputs.push_back(bias);
      mm.outputs[0] = add.outputs[0];
      mark_removed(add);
      ++rewrites;
      break;
    }
  }
  sweep_removed(g);
  return rewrites;
}

}  // namespace kiln::opt
