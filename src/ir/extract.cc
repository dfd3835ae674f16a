#include "kiln/ir/extract.h"

#include <algorithm>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "kiln/ir/verify.h"

namespace kiln::ir {
namespace {

// A value's declaration: graph inputs/outputs first (as onnx does), then inferred value_info.
StatusOr<ValueInfo> find_typed(const Graph& g, const std::vector<ValueInfo>& io, const std::string& name,
                               const char* role) {
  for (const auto& v : io) {
    if (v.name == name) return v;
  }
  for (const auto& v : g.value_info) {
    if (v.name == name) return v;
  }
  bool exists = g.find_initializer(name) != nullptr;
  for (const auto& n : g.nodes) {
    exists |= std::find(n.outputs.begin(), n.outputs.end(), name) != n.outputs.end();
    exists |= std::find(n.inputs.begin(), n.inputs.end(), name) != n.inputs.end();
  }
  if (!exists) {
    return not_found(std::string(role) + " '" + name + "' is not a value of graph '" + g.name +
                     "' (no node, graph input or initializer has that name)");
  }
  return invalid_argument(std::string(role) + " '" + name + "' has no known type: ONNX shape inference could not " +
                          "infer it, so it cannot become a graph " +
                          (std::string(role) == "input" ? "input" : "output"));
}

}  // namespace

StatusOr<Model> extract_model(const Model& model, const std::vector<std::string>& inputs,
                              const std::vector<std::string>& outputs) {
  const Graph& g = model.graph;
  if (outputs.empty()) return invalid_argument("extract needs at least one output name");
  Graph sub;
  sub.name = "Extracted from {" + g.name + "}";
  for (const auto& name : inputs) {
    KILN_ASSIGN_OR_RETURN(auto v, find_typed(g, g.inputs, name, "input"));
    sub.inputs.push_back(std::move(v));
  }
  for (const auto& name : outputs) {
    KILN_ASSIGN_OR_RETURN(auto v, find_typed(g, g.outputs, name, "output"));
    sub.outputs.push_back(std::move(v));
  }

  // Walk back from each output to the producers of its inputs, stopping at the listed inputs.
  std::unordered_map<std::string, std::vector<size_t>> producers;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& o : g.nodes[i].outputs) producers[o].push_back(i);
  }
  const std::unordered_set<std::string> stop(inputs.begin(), inputs.end());
  std::vector<bool> keep(g.nodes.size(), false);
  std::vector<std::string> todo(outputs.begin(), outputs.end());
  while (!todo.empty()) {
    std::string name = std::move(todo.back());
    todo.pop_back();
    if (stop.count(name)) continue;
    auto it = producers.find(name);
    if (it == producers.end()) continue;
    for (size_t i : it->second) {
      if (keep[i]) continue;
      keep[i] = true;
      for (const auto& in : g.nodes[i].inputs) todo.push_back(in);
    }
  }

  std::unordered_set<std::string> used;
  std::unordered_set<std::string> produced;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!keep[i]) continue;
    sub.nodes.push_back(g.nodes[i]);
    for (const auto& n : g.nodes[i].inputs) used.insert(n);
    for (const auto& n : g.nodes[i].outputs) {
      used.insert(n);
      produced.insert(n);
    }
  }
  for (const auto& t : g.initializers) {
    if (used.count(t.name)) sub.initializers.push_back(t);
  }
  for (const auto& v : g.value_info) {
    if (used.count(v.name)) sub.value_info.push_back(v);
  }
  // A kept node that reads a value from outside the cut makes an invalid model; say which.
  for (size_t k = 0; k < sub.nodes.size(); ++k) {
    for (const auto& in : sub.nodes[k].inputs) {
      if (in.empty() || stop.count(in) || produced.count(in) || sub.find_initializer(in)) continue;
      return invalid_argument(sub.nodes[k].describe(k) + " reads '" + in +
                              "', which the cut leaves outside the sub-model: add '" + in + "' to the inputs");
    }
  }

  Model out;
  out.ir_version = model.ir_version;
  out.opset_import = model.opset_import;
  out.producer_name = "onnx.utils.extract_model";
  out.graph = std::move(sub);
  // Model-local functions called by the kept nodes, and by those functions' nodes in turn.
  std::vector<const Node*> frontier;
  for (const auto& n : out.graph.nodes) frontier.push_back(&n);
  std::set<std::pair<std::string, std::string>> taken;
  while (!frontier.empty()) {
    std::vector<const Node*> next;
    for (const Node* n : frontier) {
      const Function* f = model.find_function(n->domain, n->op_type);
      if (!f || !taken.insert({f->domain, f->name}).second) continue;
      out.functions.push_back(*f);
      for (const auto& fn : f->nodes) next.push_back(&fn);
    }
    frontier = std::move(next);
  }
  return out;
}

Status add_outputs(Model& model, const Model& types, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    bool already = std::any_of(model.graph.outputs.begin(), model.graph.outputs.end(),
                               [&](const ValueInfo& v) { return v.name == name; });
    if (already) continue;
    KILN_ASSIGN_OR_RETURN(auto v, find_typed(types.graph, types.graph.inputs, name, "value"));
    bool in_model = model.graph.find_initializer(name) != nullptr;
    for (const auto& n : model.graph.nodes) {
      in_model |= std::find(n.outputs.begin(), n.outputs.end(), name) != n.outputs.end();
    }
    for (const auto& i : model.graph.inputs) in_model |= i.name == name;
    if (!in_model) return not_found("value '" + name + "' is not in graph '" + model.graph.name + "'");
    model.graph.outputs.push_back(std::move(v));
  }
  return Status::ok();
}

}  // namespace kiln::ir
