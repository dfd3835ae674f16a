// An activation after a float32 Conv, FusedConv, FusedMatMul or Gemm (constant B, 2-D C of N, alpha = beta = 1,
// no transA; it becomes a FusedMatMul) becomes the fused node's `activation` (a oneDNN eltwise post-op): Relu,
// LeakyRelu, Clip (constant bounds), Sigmoid, HardSigmoid, HardSwish, Tanh, GELU (exact) and SiLU written as x *
// Sigmoid(x).
#include <limits>

#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

struct Act {
  std::string name;
  std::vector<float> params;
};

// The activation node `n` applies to `x`, if it is one we fuse.
std::optional<Act> activation_of(const ir::Model& m, const ir::Node& n) {
  if (n.inputs.empty() || n.outputs.size() != 1) return std::nullopt;
  if (is_onnx(n, "Relu") || is_onnx(n, "Sigmoid") || is_onnx(n, "HardSwish") || is_onnx(n, "Tanh")) {
    return Act{n.op_type, {}};
  }
  if (is_onnx(n, "LeakyRelu")) return Act{"LeakyRelu", {attr_float(n, "alpha", 0.01f)}};
  if (is_onnx(n, "HardSigmoid")) return Act{"HardSigmoid", {attr_float(n, "alpha", 0.2f), attr_float(n, "beta", 0.5f)}};
  if ((is_onnx(n, "Gelu") && n.attr("approximate") == nullptr) || is_kiln(n, "Gelu")) {
    const ir::Attribute* a = n.attr("approximate");
    if (a && a->s != "none") return std::nullopt;
    return Act{"Gelu", {}};
  }
  if (is_onnx(n, "Clip")) {
    const auto bounds = clip_bounds(m, n);
    if (!bounds) return std::nullopt;
    return Act{"Clip", {bounds->first, bounds->second}};
  }
  return std::nullopt;
}

// A Gemm that FusedMatMul can stand for: Y = A @ op(B) + C with constant float32 B and C of N elements.
bool gemm_as_matmul(const ir::Graph& g, const ir::Node& n) {
  if (!is_onnx(n, "Gemm") || n.inputs.size() < 2 || attr_int(n, "transA", 0) != 0) return false;
  if (attr_float(n, "alpha", 1.0f) != 1.0f || attr_float(n, "beta", 1.0f) != 1.0f) return false;
  const Tensor* b = constant_tensor(g, n.inputs[1]);
  if (!b || b->dtype() != DType::kFloat32 || b->rank() != 2) return false;
  const int64_t N = attr_int(n, "transB", 0) ? b->dims()[0] : b->dims()[1];
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const Tensor* c = constant_tensor(g, n.inputs[2]);
    if (!c || c->dtype() != DType::kFloat32 || c->num_elements() != N || c->rank() == 0 || c->dims().back() != N) {
      return false;
    }
  }
  return true;
}

bool fusable_producer(const ir::Graph& g, const ir::Node& n) {
  if (gemm_as_matmul(g, n)) return true;
  if (is_onnx(n, "Conv")) {
    const Tensor* w = n.inputs.size() > 1 ? constant_tensor(g, n.inputs[1]) : nullptr;
    return w && w->dtype() == DType::kFloat32;
  }
  if (is_kiln(n, "FusedConv") || is_kiln(n, "FusedMatMul")) {
    const ir::Attribute* a = n.attr("activation");
    return !a || a->s.empty();
  }
  return false;
}

void set_activation(ir::Model& m, ir::Node& n, const Act& act) {
  if (is_onnx(n, "Gemm")) {
    // FusedMatMul takes B as [K, N]: a transposed B gets a transposed copy.
    if (attr_int(n, "transB", 0)) {
      const Tensor& b = *constant_tensor(m.graph, n.inputs[1]);
      const int64_t N = b.dims()[0], K = b.dims()[1];
      Tensor t = std::move(Tensor::allocate(DType::kFloat32, {K, N})).value();
      for (int64_t i = 0; i < N; ++i)
        for (int64_t k = 0; k < K; ++k) t.data<float>()[k * N + i] = b.data<float>()[i * K + k];
      n.inputs[1] = add_initializer(m.graph, n.inputs[1] + "_t", std::move(t));
    }
    n.op_type = "FusedMatMul";
    n.domain = kKilnDomain;
    n.attributes.clear();
    import_kiln_domain(m);
  }
  if (is_onnx(n, "Conv")) {
    n.op_type = "FusedConv";
    n.domain = kKilnDomain;
    import_kiln_domain(m);
  }
  ir::Attribute a;
  a.name = "activation";
  a.type = ir::AttrType::kString;
  a.s = act.name;
  set_attr(n, a);
  if (!act.params.empty()) {
    ir::Attribute p;
    p.name = "activation_params";
    p.type = ir::AttrType::kFloats;
    p.floats = act.params;
    set_attr(n, p);
  }
}

}  // namespace

int fuse_activation(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  for (auto& producer : g.nodes) {
    if (!fusable_producer(g, producer) || producer.outputs.empty()) continue;
    const std::string y = producer.outputs[0];
    if (view.is_graph_output(y) || view.read_by_subgraph(y)) continue;
    const auto& readers = view.readers(y);
    if (readers.size() == 1) {
      ir::Node& act_node = g.nodes[readers[0]];
      if (act_node.inputs[0] != y) continue;
      auto act = activation_of(m, act_node);
      if (!act) continue;
      set_activation(m, producer, *act);
      producer.outputs[0] = act_node.outputs[0];
      mark_removed(act_node);
      ++rewrites;
    } else if (readers.size() == 2) {
      // SiLU: Mul(y, Sigmoid(y))
      ir::Node* sig = nullptr;
      ir::Node* mul = nullptr;
      for (size_t r : readers) {
        ir::Node& n = g.nodes[r];
        if (is_onnx(n, "Sigmoid")) sig = &n;
        if (is_onnx(n, "Mul")) mul = &n;
      }
      if (!sig || !mul || mul->inputs.size() != 2 || view.single_reader(sig->outputs[0]) < 0) continue;
      const bool matches = (mul->inputs[0] == y && mul->inputs[1] == sig->outputs[0]) ||
                           (mul->inputs[1] == y && mul->inputs[0] == sig->outputs[0]);
      if (!matches) continue;
      set_activation(m, producer, Act{"Silu", {}});
      producer.outputs[0] = mul->outputs[0];
      mark_removed(*sig);
      mark_removed(*mul);
      ++rewrites;
    }
  }
  sweep_removed(g);
  return rewrites;
}

}  // namespace kiln::opt
