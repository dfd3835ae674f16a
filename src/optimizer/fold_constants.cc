// Constant folding. Constant nodes become initializers; a node whose inputs are all constants runs once, here,
// on the reference kernels, and its outputs become initializers; Shape and Size of a value whose shape is
// fully known (graph inputs, value_info) become constants too, which folds the shape subgraphs exporters write.
// Random ops are never folded, and neither is an output over 16M elements (it would bloat the model). Dequantize
// nodes are folded by a second pass (fold_quantized_constants), after fuse_qdq has taken the int8 weights
// of the quantized convolutions and products.
#include <unordered_set>

#include "kernels/kernel.h"
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

constexpr int64_t kMaxFoldedElements = int64_t{1} << 24;

const std::unordered_set<std::string>& non_deterministic() {
  static const std::unordered_set<std::string> ops = {
      "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout"};
  return ops;
}

// The Constant node's value as a tensor, when it has one of the dense forms.
std::optional<Tensor> constant_node_value(const ir::Node& n) {
  for (const auto& a : n.attributes) {
    if (a.name == "value" && a.type == ir::AttrType::kTensor) return a.t.tensor;
    if (a.name == "value_float" && a.type == ir::AttrType::kFloat) return Tensor::from_vector<float>({}, {a.f});
    if (a.name == "value_floats" && a.type == ir::AttrType::kFloats) {
      return Tensor::from_vector<float>({static_cast<int64_t>(a.floats.size())}, a.floats);
    }
    if (a.name == "value_int" && a.type == ir::AttrType::kInt) return Tensor::from_vector<int64_t>({}, {a.i});
    if (a.name == "value_ints" && a.type == ir::AttrType::kInts) {
      return Tensor::from_vector<int64_t>({static_cast<int64_t>(a.ints.size())}, a.ints);
    }
  }
  return std::nullopt;
}

// The static dims of `name`, when its declared shape is fully known.
std::optional<std::vector<int64_t>> static_dims(const ir::Graph& g, const std::string& name) {
  const ir::ValueInfo* vi = g.find_value_info(name);
  if (!vi || vi->type.kind != ir::Type::Kind::kTensor || !vi->type.shape) return std::nullopt;
  std::vector<int64_t> dims;
  for (size_t i = 0; i < vi->type.shape->rank(); ++i) {
    const Dim& d = (*vi->type.shape)[i];
    if (!d.is_known()) return std::nullopt;
    dims.push_back(d.value());
  }
  return dims;
}

std::optional<Tensor> fold_shape(const ir::Model& m, const ir::Node& n) {
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return std::nullopt;
  auto dims = static_dims(m.graph, n.inputs[0]);
  if (!dims) return std::nullopt;
  if (is_onnx(n, "Size")) {
    int64_t count = 1;
    for (int64_t d : *dims) count *= d;
    return Tensor::from_vector<int64_t>({}, {count});
  }
  const int64_t rank = static_cast<int64_t>(dims->size());
  auto clamp = [rank](int64_t v) { return std::min(rank, std::max<int64_t>(0, v < 0 ? v + rank : v)); };
  const int64_t start = clamp(attr_int(n, "start", 0)), end = clamp(attr_int(n, "end", rank));
  std::vector<int64_t> out;
  for (int64_t i = start; i < end; ++i) out.push_back((*dims)[static_cast<size_t>(i)]);
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(out.size())}, out);
}

// Runs `n` on its constant inputs; nullopt when it cannot be folded (any failure is left for run time to
// report, with the run's context).
std::optional<std::vector<Tensor>> evaluate(const ir::Model& m, const ir::Node& n) {
  const ir::Graph& g = m.graph;
  if (n.inputs.empty() || non_deterministic().count(n.op_type)) return std::nullopt;
  std::vector<const ir::Graph*> subs;
  ir::Graph::collect_subgraphs(n, subs);
  if (!subs.empty()) return std::nullopt;
  std::vector<Value> values;
  values.reserve(n.inputs.size());
  for (const auto& i : n.inputs) {
    if (i.empty()) {
      values.emplace_back();
      continue;
    }
    const Tensor* t = constant_tensor(g, i);
    if (!t) return std::nullopt;
    values.emplace_back(*t);
  }
  const int64_t opset = m.opset(n.domain).value_or(0);
  const std::vector<const cpu::KernelDef*> candidates = cpu::find_candidates(n.domain, n.op_type, opset);
  if (candidates.empty()) return std::nullopt;
  std::vector<const Value*> ins;
  for (size_t k = 0; k < n.inputs.size(); ++k) ins.push_back(n.inputs[k].empty() ? nullptr : &values[k]);
  cpu::KernelContext ctx(n, opset, std::move(ins), n.outputs.size());
  // The same rule as a session with SessionOptions::reference_kernels: folded values do not depend on the CPU.
  const cpu::KernelDef* kernel = cpu::select_kernel(candidates, ctx, true);
  if (!kernel->fn(ctx).is_ok()) return std::nullopt;
  std::vector<Tensor> outs;
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    Value v = ctx.take_output(k);
    if (n.outputs[k].empty()) {
      outs.emplace_back();
      continue;
    }
    if (!v.is_tensor() || v.tensor().num_elements() > kMaxFoldedElements) return std::nullopt;
    outs.push_back(v.tensor());
  }
  return outs;
}

}  // namespace

namespace {

// `quantize_ops`: fold DequantizeLinear too. The first folding leaves it (a QuantizeLinear of constant weights
// becomes their int8 initializer), so that fuse_qdq sees a convolution's int8 weights; fold_quantized_constants,
// after it, folds what it left.
int fold(ir::Model& m, bool quantize_ops) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  std::unordered_set<std::string> inputs;
  for (const auto& i : g.inputs) inputs.insert(i.name);
  // Nodes are in topological order after import, so one sweep folds whole chains.
  for (auto& n : g.nodes) {
    if (n.outputs.empty()) continue;
    if (!quantize_ops && is_onnx(n, "DequantizeLinear")) continue;
    bool clash = false;
    for (const auto& o : n.outputs) clash = clash || inputs.count(o);
    if (clash) continue;
    std::optional<std::vector<Tensor>> outs;
    if (is_onnx(n, "Constant")) {
      if (auto t = constant_node_value(n)) outs = std::vector<Tensor>{*t};
    } else if (is_onnx(n, "Shape") || is_onnx(n, "Size")) {
      if (auto t = fold_shape(m, n)) outs = std::vector<Tensor>{*t};
      if (!outs) outs = evaluate(m, n);
    } else {
      outs = evaluate(m, n);
    }
    if (!outs) continue;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      if (!n.outputs[k].empty()) g.initializers.push_back(ir::NamedTensor{n.outputs[k], (*outs)[k], "", true, ""});
    }
    mark_removed(n);
    ++rewrites;
  }
  sweep_removed(g);
  return rewrites;
}

}  // namespace

int fold_constants(ir::Model& m) { return fold(m, false); }

int fold_quantized_constants(ir::Model& m) { return fold(m, true); }

}  // namespace kiln::opt
