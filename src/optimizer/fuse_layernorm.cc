// Layer normalization as exporters before opset 17 write it:
//   d = x - ReduceMean(x); y = d / Sqrt(ReduceMean(Pow(d, 2)) + eps) * gamma + beta
// over trailing axes [-k..-1], with constant gamma and beta, becomes one ai.kiln LayerNormalization; a residual
// Add that only the normalization reads becomes its Skip input.
#include <algorithm>

#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

// The axes of a ReduceMean (attribute, or a constant input from opset 18), when they are -k..-1 and keepdims
// is on; returns -k, or 0 when the node does not qualify.
int64_t trailing_axes(const ir::Graph& g, const ir::Node& n) {
  if (!is_onnx(n, "ReduceMean") || attr_int(n, "keepdims", 1) != 1) return 0;
  std::vector<int64_t> axes = attr_ints(n, "axes");
  if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
    const Tensor* t = constant_tensor(g, n.inputs[1]);
    if (!t || t->dtype() != DType::kInt64) return 0;
    axes = t->to_vector<int64_t>();
  }
  if (axes.empty()) return 0;
  std::sort(axes.begin(), axes.end());
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] != -static_cast<int64_t>(axes.size() - i)) return 0;
  }
  return axes.front();
}

}  // namespace

int fuse_layernorm(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  auto node_at = [&](int k) -> ir::Node* { return k < 0 ? nullptr : &g.nodes[static_cast<size_t>(k)]; };
  for (auto& mean : g.nodes) {
    const int64_t axis = trailing_axes(g, mean);
    if (axis == 0) continue;
    const std::string x = mean.inputs[0];
    ir::Node* sub = node_at(view.single_reader(mean.outputs[0]));
    if (!sub || !is_onnx(*sub, "Sub") || sub->inputs.size() != 2 || sub->inputs[0] != x ||
        sub->inputs[1] != mean.outputs[0]) {
      continue;
    }
    const std::string d = sub->outputs[0];
    if (view.use_count(d) != 2 || view.readers(d).size() != 2) continue;
    ir::Node* pow = nullptr;
    ir::Node* div = nullptr;
    for (size_t r : view.readers(d)) {
      ir::Node& n = g.nodes[r];
      if (is_onnx(n, "Pow") && n.inputs.size() == 2 && n.inputs[0] == d && is_constant_scalar(g, n.inputs[1], 2.0)) {
        pow = &n;
      } else if (is_onnx(n, "Div") && n.inputs.size() == 2 && n.inputs[0] == d) {
        div = &n;
      }
    }
    if (!pow || !div) continue;
    ir::Node* var = node_at(view.single_reader(pow->outputs[0]));
    if (!var || trailing_axes(g, *var) != axis) continue;
    ir::Node* add_eps = node_at(view.single_reader(var->outputs[0]));
    if (!add_eps || !is_onnx(*add_eps, "Add")) continue;
    const std::string eps_name = other_input(*add_eps, var->outputs[0]);
    const Tensor* eps = constant_tensor(g, eps_name);
    if (!eps || eps->num_elements() != 1 || !constant_values(g, eps_name)) continue;
    ir::Node* sqrt = node_at(view.single_reader(add_eps->outputs[0]));
    if (!sqrt || !is_onnx(*sqrt, "Sqrt") || sqrt->outputs[0] != div->inputs[1] ||
        view.single_reader(sqrt->outputs[0]) < 0) {
      continue;
    }
    ir::Node* mul = node_at(view.single_reader(div->outputs[0]));
    if (!mul || !is_onnx(*mul, "Mul")) continue;
    const std::string gamma = other_input(*mul, div->outputs[0]);
    const Tensor* gt = constant_tensor(g, gamma);
    if (!gt || gt->dtype() != DType::kFloat32 || gt->rank() > static_cast<size_t>(-axis)) continue;
    ir::Node* add_beta = node_at(view.single_reader(mul->outputs[0]));
    std::string beta;
    if (add_beta && is_onnx(*add_beta, "Add")) {
      beta = other_input(*add_beta, mul->outputs[0]);
      const Tensor* bt = constant_tensor(g, beta);
      if (!bt || bt->dtype() != DType::kFloat32 || bt->rank() > static_cast<size_t>(-axis)) beta.clear();
    }
    ir::Node* last = beta.empty() ? mul : add_beta;
    ir::Node ln;
    ln.op_type = "LayerNormalization";
    ln.domain = kKilnDomain;
    ln.name = mean.name.empty() ? "" : mean.name + "_layernorm";
    ln.inputs = {x, gamma};
    if (!beta.empty()) ln.inputs.push_back(beta);
    ln.outputs = {last->outputs[0]};
    ir::Attribute a_axis, a_eps;
    a_axis.name = "axis";
    a_axis.type = ir::AttrType::kInt;
    a_axis.i = axis;
    a_eps.name = "epsilon";
    a_eps.type = ir::AttrType::kFloat;
    a_eps.f = static_cast<float>((*constant_values(g, eps_name))[0]);
    ln.attributes = {a_axis, a_eps};
    for (ir::Node* n : {sub, pow, var, add_eps, sqrt, div, mul}) mark_removed(*n);
    if (!beta.empty()) mark_removed(*add_beta);
    mean = std::move(ln);
    ++rewrites;
  }
  sweep_removed(g);
  // A residual Add feeding only the normalization becomes its Skip input: Y = LN(A + B), one pass.
  GraphView after(g);
  for (auto& ln : g.nodes) {
    if (!is_kiln(ln, "LayerNormalization") || ln.inputs.size() > 3 || ln.inputs.empty()) continue;
    const int p = after.producer(ln.inputs[0]);
    if (p < 0) continue;
    ir::Node& add = g.nodes[static_cast<size_t>(p)];
    if (!is_onnx(add, "Add") || add.inputs.size() != 2 || add.inputs[0].empty() || add.inputs[1].empty() ||
        after.single_reader(add.outputs[0]) < 0 || after.read_by_subgraph(add.outputs[0])) {
      continue;
    }
    ln.inputs.resize(3);
    ln.inputs[0] = add.inputs[0];
    ln.inputs.push_back(add.inputs[1]);
    mark_removed(add);
    ++rewrites;
  }
  sweep_removed(g);
  if (rewrites) import_kiln_domain(m);
  return rewrites;
}

}  // namespace kiln::opt
