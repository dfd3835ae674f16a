#include "optimizer/graph_util.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/kernel.h"

namespace kiln::opt {

void collect_reads(const ir::Graph& g, std::unordered_set<std::string>& reads) {
  for (const auto& n : g.nodes) {
    for (const auto& i : n.inputs) reads.insert(i);
    std::vector<const ir::Graph*> subs;
    ir::Graph::collect_subgraphs(n, subs);
    for (const auto* s : subs) collect_reads(*s, reads);
  }
}

std::string other_input(const ir::Node& n, const std::string& known) {
  if (n.inputs.size() != 2) return "";
  if (n.inputs[0] == known) return n.inputs[1];
  if (n.inputs[1] == known) return n.inputs[0];
  return "";
}

GraphView::GraphView(const ir::Graph& g) {
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& n = g.nodes[k];
    for (const auto& o : n.outputs) {
      if (!o.empty()) producer_[o] = static_cast<int>(k);
    }
    for (const auto& i : n.inputs) {
      if (i.empty()) continue;
      auto& r = readers_[i];
      if (r.empty() || r.back() != k) r.push_back(k);
    }
    std::vector<const ir::Graph*> subs;
    ir::Graph::collect_subgraphs(n, subs);
    for (const auto* s : subs) collect_reads(*s, subgraph_reads_);
  }
  for (const auto& o : g.outputs) outputs_.insert(o.name);
}

int GraphView::producer(const std::string& name) const {
  auto it = producer_.find(name);
  return it == producer_.end() ? -1 : it->second;
}

const std::vector<size_t>& GraphView::readers(const std::string& name) const {
  static const std::vector<size_t> kNone;
  auto it = readers_.find(name);
  return it == readers_.end() ? kNone : it->second;
}

size_t GraphView::use_count(const std::string& name) const {
  return readers(name).size() + (is_graph_output(name) ? 1 : 0) + (read_by_subgraph(name) ? 1 : 0);
}

int GraphView::single_reader(const std::string& name) const {
  if (use_count(name) != 1 || readers(name).size() != 1) return -1;
  return static_cast<int>(readers(name)[0]);
}

const Tensor* constant_tensor(const ir::Graph& g, const std::string& name) {
  if (name.empty()) return nullptr;
  for (const auto& i : g.inputs) {
    if (i.name == name) return nullptr;
  }
  const ir::NamedTensor* t = g.find_initializer(name);
  return t ? &t->tensor : nullptr;
}

std::optional<std::vector<double>> constant_values(const ir::Graph& g, const std::string& name) {
  const Tensor* t = constant_tensor(g, name);
  if (!t || (t->dtype() != DType::kFloat32 && t->dtype() != DType::kFloat64)) return std::nullopt;
  return cpu::to_doubles(*t);
}

bool is_constant_scalar(const ir::Graph& g, const std::string& name, double value, double tol) {
  const Tensor* t = constant_tensor(g, name);
  if (!t || t->num_elements() != 1 || t->dtype() == DType::kString || t->dtype() == DType::kBool) return false;
  if (t->dtype() == DType::kFloat16 || t->dtype() == DType::kBFloat16) return false;
  return std::fabs(cpu::to_doubles(*t)[0] - value) <= tol * std::max(1.0, std::fabs(value));
}

bool scalar_f32(const ir::Graph& g, const std::string& name) {
  const Tensor* t = constant_tensor(g, name);
  return t && t->dtype() == DType::kFloat32 && t->num_elements() == 1;
}

float scalar_value(const ir::Graph& g, const std::string& name) { return constant_tensor(g, name)->data<float>()[0]; }

bool scalar_zero_point(const ir::Graph& g, const std::string& name) {
  if (name.empty()) return true;
  const Tensor* t = constant_tensor(g, name);
  return t && t->num_elements() == 1 && (t->dtype() == DType::kUInt8 || t->dtype() == DType::kInt8);
}

std::pair<bool, int32_t> zero_point_value(const ir::Graph& g, const std::string& name) {
  const Tensor* t = name.empty() ? nullptr : constant_tensor(g, name);
  if (!t) return {false, 0};
  return t->dtype() == DType::kInt8 ? std::pair<bool, int32_t>{true, t->data<int8_t>()[0]}
                                    : std::pair<bool, int32_t>{false, t->data<uint8_t>()[0]};
}

bool same_scale(const ir::Graph& g, const std::string& a, const std::string& b) {
  return a == b || (scalar_f32(g, a) && scalar_f32(g, b) && scalar_value(g, a) == scalar_value(g, b));
}

bool same_zero_point(const ir::Graph& g, const std::string& a, const std::string& b) {
  return a == b ||
         (scalar_zero_point(g, a) && scalar_zero_point(g, b) && zero_point_value(g, a) == zero_point_value(g, b));
}

void rename_reads(ir::Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes) {
    for (auto& i : n.inputs) {
      if (i == from) i = to;
    }
  }
}

void sweep_removed(ir::Graph& g) {
  g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(), [](const ir::Node& n) { return n.op_type.empty(); }),
                g.nodes.end());
}

std::optional<std::pair<float, float>> clip_bounds(const ir::Model& m, const ir::Node& n) {
  float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  if (m.opset("").value_or(0) < 11) {
    return std::make_pair(attr_float(n, "min", lo), attr_float(n, "max", hi));
  }
  for (size_t k = 1; k < n.inputs.size() && k < 3; ++k) {
    if (n.inputs[k].empty()) continue;
    auto v = constant_values(m.graph, n.inputs[k]);
    if (!v || v->size() != 1) return std::nullopt;
    (k == 1 ? lo : hi) = static_cast<float>((*v)[0]);
  }
  return std::make_pair(lo, hi);
}

void for_each_read(const ir::Node& n, const std::function<void(const std::string&)>& need) {
  for (const auto& i : n.inputs) need(i);
  std::vector<const ir::Graph*> subs;
  ir::Graph::collect_subgraphs(n, subs);
  if (subs.empty()) return;
  std::unordered_set<std::string> reads;
  for (const auto* s : subs) collect_reads(*s, reads);
  for (const auto& r : reads) need(r);
}

std::string fresh_name(const ir::Graph& g, const std::string& base) {
  std::unordered_set<std::string> used;
  for (const auto& n : g.nodes) {
    used.insert(n.name);
    for (const auto& o : n.outputs) used.insert(o);
  }
  for (const auto& i : g.initializers) used.insert(i.name);
  for (const auto& i : g.inputs) used.insert(i.name);
  if (!used.count(base)) return base;
  for (int k = 1;; ++k) {
    std::string name = base + "_" + std::to_string(k);
    if (!used.count(name)) return name;
  }
}

std::string add_initializer(ir::Graph& g, const std::string& base, Tensor t) {
  std::string name = fresh_name(g, base);
  g.initializers.push_back(ir::NamedTensor{name, std::move(t), "", true, ""});
  return name;
}

void import_kiln_domain(ir::Model& m) {
  for (const auto& o : m.opset_import) {
    if (o.domain == kKilnDomain) return;
  }
  m.opset_import.push_back({kKilnDomain, kKilnDomainVersion});
}

int64_t attr_int(const ir::Node& n, const std::string& name, int64_t def) {
  const ir::Attribute* a = n.attr(name);
  return a && a->type == ir::AttrType::kInt ? a->i : def;
}

float attr_float(const ir::Node& n, const std::string& name, float def) {
  const ir::Attribute* a = n.attr(name);
  return a && a->type == ir::AttrType::kFloat ? a->f : def;
}

std::vector<int64_t> attr_ints(const ir::Node& n, const std::string& name) {
  const ir::Attribute* a = n.attr(name);
  return a && a->type == ir::AttrType::kInts ? a->ints : std::vector<int64_t>{};
}

void set_attr(ir::Node& n, ir::Attribute a) {
  for (auto& x : n.attributes) {
    if (x.name == a.name) {
      x = std::move(a);
      return;
    }
  }
  n.attributes.push_back(std::move(a));
}

}  // namespace kiln::opt
