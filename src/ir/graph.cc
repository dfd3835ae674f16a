#include "kiln/ir/graph.h"

#include <algorithm>
#include <unordered_map>

namespace kiln::ir {

Type Type::tensor(DType dtype, std::optional<Shape> shape) {
  Type t;
  t.kind = Kind::kTensor;
  t.elem_type = dtype;
  t.shape = std::move(shape);
  return t;
}

std::string Type::to_string() const {
  switch (kind) {
    case Kind::kTensor:
    case Kind::kSparseTensor: {
      std::string s = kind == Kind::kTensor ? "tensor(" : "sparse_tensor(";
      s += dtype_name(elem_type);
      s += ")";
      if (shape) s += shape->to_string();
      return s;
    }
    case Kind::kSequence: return "seq(" + (value_type ? value_type->to_string() : "?") + ")";
    case Kind::kOptional: return "optional(" + (value_type ? value_type->to_string() : "?") + ")";
    case Kind::kMap:
      return std::string("map(") + dtype_name(key_type) + "," + (value_type ? value_type->to_string() : "?") + ")";
    case Kind::kNone: break;
  }
  return "none";
}

bool Type::operator==(const Type& o) const {
  if (kind != o.kind || elem_type != o.elem_type || shape != o.shape || key_type != o.key_type ||
      denotation != o.denotation || dim_denotations != o.dim_denotations)
    return false;
  if (!value_type || !o.value_type) return value_type == o.value_type;
  return *value_type == *o.value_type;
}

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::kFloat: return "float";
    case AttrType::kInt: return "int";
    case AttrType::kString: return "string";
    case AttrType::kTensor: return "tensor";
    case AttrType::kGraph: return "graph";
    case AttrType::kFloats: return "floats";
    case AttrType::kInts: return "ints";
    case AttrType::kStrings: return "strings";
    case AttrType::kTensors: return "tensors";
    case AttrType::kGraphs: return "graphs";
    case AttrType::kSparseTensor: return "sparse_tensor";
    case AttrType::kSparseTensors: return "sparse_tensors";
    case AttrType::kTypeProto: return "type_proto";
    case AttrType::kTypeProtos: return "type_protos";
    case AttrType::kUndefined: break;
  }
  return "undefined";
}

const Attribute* Node::attr(const std::string& attr_name) const {
  for (const auto& a : attributes) {
    if (a.name == attr_name) return &a;
  }
  return nullptr;
}

std::string Node::describe(size_t index) const {
  std::string op = domain.empty() ? op_type : domain + "::" + op_type;
  if (!name.empty()) return "node '" + name + "' (" + op + ")";
  return "node #" + std::to_string(index) + " (" + op + ")";
}

const NamedTensor* Graph::find_initializer(const std::string& n) const {
  for (const auto& t : initializers) {
    if (t.name == n) return &t;
  }
  return nullptr;
}

const ValueInfo* Graph::find_value_info(const std::string& n) const {
  for (const auto* list : {&inputs, &outputs, &value_info}) {
    for (const auto& v : *list) {
      if (v.name == n) return &v;
    }
  }
  return nullptr;
}

void Graph::collect_subgraphs(const Node& node, std::vector<const Graph*>& out) {
  for (const auto& a : node.attributes) {
    if (a.type == AttrType::kGraph && a.g) out.push_back(a.g.get());
    if (a.type == AttrType::kGraphs) {
      for (const auto& g : a.graphs) {
        if (g) out.push_back(g.get());
      }
    }
  }
}

std::optional<int64_t> Model::opset(const std::string& d) const {
  const std::string want = d == "ai.onnx" ? "" : d;
  for (const auto& o : opset_import) {
    const std::string have = o.domain == "ai.onnx" ? "" : o.domain;
    if (have == want) return o.version;
  }
  return std::nullopt;
}

const Function* Model::find_function(const std::string& d, const std::string& n) const {
  for (const auto& f : functions) {
    if (f.domain == d && f.name == n) return &f;
  }
  return nullptr;
}

StatusOr<std::vector<size_t>> topological_order(const Graph& graph) {
  const size_t n = graph.nodes.size();
  std::unordered_map<std::string, size_t> producer;
  for (size_t i = 0; i < n; ++i) {
    for (const auto& o : graph.nodes[i].outputs) {
      if (!o.empty()) producer.emplace(o, i);
    }
  }
  // Kahn's algorithm, taking the lowest ready index first so that an already sorted graph keeps its order.
  std::vector<std::vector<size_t>> consumers(n);
  std::vector<size_t> pending(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& in : graph.nodes[i].inputs) {
      auto it = producer.find(in);
      if (in.empty() || it == producer.end()) continue;
      consumers[it->second].push_back(i);
      ++pending[i];
    }
  }
  std::vector<size_t> ready;
  for (size_t i = n; i-- > 0;) {
    if (pending[i] == 0) ready.push_back(i);
  }
  std::vector<size_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), std::greater<>());
    size_t i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (size_t c : consumers[i]) {
      if (--pending[c] == 0) {
        ready.push_back(c);
        std::push_heap(ready.begin(), ready.end(), std::greater<>());
      }
    }
  }
  if (order.size() == n) return order;
  // The nodes left are on a cycle or downstream of one; peel off the downstream ones (sinks of what is left)
  // so that the message names the cycle itself.
  std::vector<bool> left(n);
  for (size_t i = 0; i < n; ++i) left[i] = pending[i] != 0;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < n; ++i) {
      if (!left[i]) continue;
      bool feeds_left = std::any_of(consumers[i].begin(), consumers[i].end(), [&](size_t c) { return left[c]; });
      if (!feeds_left) {
        left[i] = false;
        changed = true;
      }
    }
  }
  std::string names;
  int listed = 0;
  for (size_t i = 0; i < n && listed < 8; ++i) {
    if (!left[i]) continue;
    if (listed++) names += ", ";
    names += graph.nodes[i].describe(i);
  }
  return invalid_model("graph '" + graph.name + "' has a cycle through " + names);
}

ParameterStats parameter_stats(const Graph& graph) {
  ParameterStats s;
  for (const auto& t : graph.initializers) {
    s.count += t.tensor.num_elements();
    s.bytes += static_cast<int64_t>(t.tensor.nbytes());
  }
  for (const auto& node : graph.nodes) {
    std::vector<const Graph*> subs;
    Graph::collect_subgraphs(node, subs);
    for (const auto* g : subs) {
      auto sub = parameter_stats(*g);
      s.count += sub.count;
      s.bytes += sub.bytes;
    }
  }
  return s;
}

}  // namespace kiln::ir
