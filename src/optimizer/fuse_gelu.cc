// The Erf form of GELU as torch exports it, x * 0.5 * (1 + erf(x / sqrt(2))) in either multiplication order
// (and with x * (1/sqrt(2)) for the division), becomes one ai.kiln Gelu node.
#include <cmath>

#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
int fuse_gelu(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  const double kSqrt2 = std::sqrt(2.0);
  for (auto& erf : g.nodes) {
    if (!is_onnx(erf, "Erf") || erf.inputs.size() != 1 || erf.outputs.size() != 1) continue;
    // x / sqrt(2) or x * (1 / sqrt(2))
    const int pd = view.producer(erf.inputs[0]);
    if (pd < 0 || view.single_reader(erf.inputs[0]) < 0) continue;
    ir::Node& scale = g.nodes[static_cast<size_t>(pd)];
    if (scale.inputs.size() != 2) continue;
    const std::string x = scale.inputs[0];
    if (!((is_onnx(scale, "Div") && is_constant_scalar(g, scale.inputs[1], kSqrt2, 1e-5)) ||
          (is_onnx(scale, "Mul") && is_constant_scalar(g, scale.inputs[1], 1.0 / kSqrt2, 1e-5)))) {
      continue;
    }
    // 1 + erf(.)
    const int pa = view.single_reader(erf.outputs[0]);
    if (pa < 0) continue;
    ir::Node& add = g.nodes[static_cast<size_t>(pa)];
    if (!is_onnx(add, "Add") || !is_constant_scalar(g, other_input(add, erf.outputs[0]), 1.0)) continue;
    // (x * (1 + erf)) * 0.5, or (x * 0.5) * (1 + erf)
    const int pm = view.single_reader(add.outputs[0]);
    if (pm < 0) continue;
    ir::Node& mul1 = g.nodes[static_cast<size_t>(pm)];
    if (!is_onnx(mul1, "Mul")) continue;
    const std::string partner = other_input(mul1, add.outputs[0]);
    ir::Node* half = nullptr;  // the Mul by 0.5
    ir::Node* last = nullptr;  // the node whose output is the GELU
    if (partner == x) {
      const int ph = view.single_reader(mul1.outputs[0]);
      if (ph < 0) continue;
      half = &g.nodes[static_cast<size_t>(ph)];
      if (!is_onnx(*half, "Mul") || !is_constant_scalar(g, other_input(*half, mul1.outputs[0]), 0.5)) continue;
      last = half;
    } else {
      const int ph = view.producer(partner);
      if (ph < 0 || view.single_reader(partner) < 0) continue;
      half = &g.nodes[static_cast<size_t>(ph)];
      if (!is_onnx(*half, "Mul") || other_input(*half, x).empty() ||
          !is_constant_scalar(g, other_input(*half, x), 0.5)) {
        continue;
      }
      last = &mul1;
    }
    ir::Node gelu;
    gelu.op_type = "Gelu";
    gelu.domain = kKilnDomain;
    gelu.name = erf.name.empty() ? "" : erf.name + "_gelu";
    gelu.inputs = {x};
    gelu.outputs = {last->outputs[0]};
    for (ir::Node* n : {&scale, &add, &mul1, half}) {
      if (n != last) mark_removed(*n);
    }
    mark_removed(*last);
    erf = std::move(gelu);  // the fused node takes the Erf's place in the order, after x's producer
    ++rewrites;
  }
  sweep_removed(g);
  if (rewrites) import_kiln_domain(m);
  return rewrites;
}

}  // namespace kiln::opt
