// Structural verification of the IR. Everything here is about names and edges; operator semantics
// (attributes, arities, type rules) are checked in src/onnx/checker.cc against the operator schemas.
#include "kiln/ir/verify.h"

#include <set>
#include <unordered_map>
#include <unordered_set>

namespace kiln::ir {

std::string Problem::to_string() const {
  const char* s = severity == Severity::kError ? "error" : severity == Severity::kWarning ? "warning" : "note";
  return std::string(s) + ": " + (where.empty() ? "" : where + ": ") + message;
}

bool Report::valid() const { return count(Problem::Severity::kError) == 0; }

size_t Report::count(Problem::Severity s) const {
  size_t n = 0;
  for (const auto& p : problems) n += p.severity == s;
  return n;
}

void Report::add(Problem::Severity s, std::string where, std::string message) {
  problems.push_back({s, std::move(where), std::move(message)});
}

namespace {

using Sev = Problem::Severity;

struct GraphVerifier {
  const Model& model;
  Report& report;

  void graph(const Graph& g, const std::unordered_set<std::string>& outer, const std::string& scope);
  void declared_types(const Graph& g, const std::string& scope);
};

void GraphVerifier::declared_types(const Graph& g, const std::string& scope) {
  for (const auto& init : g.initializers) {
    const ValueInfo* decl = nullptr;
    for (const auto* list : {&g.inputs, &g.value_info}) {
      for (const auto& v : *list) {
        if (v.name == init.name) decl = &v;
      }
    }
    if (!decl || decl->type.kind != Type::Kind::kTensor) continue;
    const std::string where = scope + "initializer '" + init.name + "'";
    if (decl->type.elem_type != DType::kUndefined && decl->type.elem_type != init.tensor.dtype()) {
      report.add(Sev::kError, where,
                 std::string("holds ") + dtype_name(init.tensor.dtype()) + " but is declared as " +
                     dtype_name(decl->type.elem_type));
    }
    if (decl->type.shape) {
      const Shape& s = *decl->type.shape;
      const auto& dims = init.tensor.dims();
      bool conflict = s.rank() != dims.size();
      for (size_t i = 0; !conflict && i < dims.size(); ++i) {
        conflict = s[i].is_known() && s[i].value() != dims[i];
      }
      if (conflict) {
        report.add(Sev::kError, where,
                   "has shape " + dims_to_string(dims) + " but is declared with shape " + s.to_string());
      }
    }
  }
}

void GraphVerifier::graph(const Graph& g, const std::unordered_set<std::string>& outer, const std::string& scope) {
  // Where each name comes from, in this graph.
  std::unordered_map<std::string, std::string> source;
  auto define = [&](const std::string& name, const std::string& by) {
    if (name.empty()) return;
    auto [it, fresh] = source.emplace(name, by);
    if (!fresh) {
      report.add(Sev::kError, scope + by, "defines value '" + name + "', which " + it->second + " already defines");
    }
  };
  for (const auto& v : g.inputs) {
    if (v.name.empty()) report.add(Sev::kError, scope + "graph inputs", "an input has an empty name");
    define(v.name, "graph input '" + v.name + "'");
  }
  for (const auto& t : g.initializers) {
    if (t.name.empty()) {
      report.add(Sev::kError, scope + "initializers", "an initializer has an empty name");
      continue;
    }
    auto it = source.find(t.name);
    // An initializer may share its name with a graph input (it is then the input's default value).
    if (it != source.end() && it->second.rfind("graph input", 0) == 0) continue;
    define(t.name, "initializer '" + t.name + "'");
  }
  for (const auto& s : g.sparse_initializers) define(s.values.name, "sparse initializer '" + s.values.name + "'");

  std::unordered_map<std::string, size_t> producer;
  std::unordered_map<std::string, size_t> node_names;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const std::string where = scope + n.describe(i);
    if (n.op_type.empty()) report.add(Sev::kError, where, "has an empty op_type");
    if (!n.name.empty()) {
      auto [it, fresh] = node_names.emplace(n.name, i);
      if (!fresh) {
        report.add(Sev::kWarning, where,
                   "has the same name as node #" + std::to_string(it->second) + "; node names should be unique");
      }
    }
    for (const auto& o : n.outputs) {
      define(o, n.describe(i));
      if (!o.empty()) producer.emplace(o, i);
    }
    const std::string dom = n.domain == "ai.onnx" ? "" : n.domain;
    if (!model.opset(dom) && !model.find_function(n.domain, n.op_type)) {
      report.add(Sev::kError, where,
                 "uses domain '" + (dom.empty() ? std::string("ai.onnx") : dom) +
                     "', but the model imports no opset for it (add it to opset_import)");
    }
  }

  // Every input must come from this graph or an enclosing one; producers must come first (ONNX requires
  // topological order).
  bool order_reported = false;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const std::string where = scope + n.describe(i);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const std::string& in = n.inputs[k];
      if (in.empty()) continue;
      if (!source.count(in) && !outer.count(in)) {
        report.add(
            Sev::kError, where,
            "input " + std::to_string(k) + " '" + in + "' is not produced by any node, graph input or initializer");
        continue;
      }
      auto p = producer.find(in);
      if (!order_reported && p != producer.end() && p->second > i) {
        // Reported once; a cycle is reported separately below with the nodes on it.
        auto order = topological_order(g);
        if (order.is_ok()) {
          report.add(Sev::kError, where,
                     "reads '" + in + "' before " + g.nodes[p->second].describe(p->second) +
                         " produces it: nodes must be listed in topological order");
        }
        order_reported = true;
      }
    }
  }
  auto order = topological_order(g);
  if (!order.is_ok()) report.add(Sev::kError, scope.empty() ? "graph" : scope, order.status().message());

  for (const auto& o : g.outputs) {
    if (o.name.empty()) {
      report.add(Sev::kError, scope + "graph outputs", "an output has an empty name");
    } else if (!source.count(o.name) && !outer.count(o.name)) {
      report.add(Sev::kError, scope + "graph output '" + o.name + "'",
                 "is not produced by any node, graph input or initializer");
    }
  }
  if (g.outputs.empty() && scope.empty()) report.add(Sev::kError, "graph", "has no outputs");

  declared_types(g, scope);

  // Subgraphs see every name of this graph and of the enclosing ones.
  std::unordered_set<std::string> visible = outer;
  for (const auto& [name, by] : source) visible.insert(name);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (const auto& a : n.attributes) {
      std::vector<const Graph*> subs;
      if (a.type == AttrType::kGraph && a.g) subs.push_back(a.g.get());
      for (const auto& sg : a.graphs) subs.push_back(sg.get());
      for (const Graph* sg : subs) {
        graph(*sg, visible, scope + n.describe(i) + " attribute '" + a.name + "' subgraph: ");
      }
    }
  }
}

}  // namespace

void verify_model(const Model& model, Report& report) {
  if (model.ir_version <= 0) report.add(Sev::kError, "model", "has no ir_version");
  std::set<std::string> domains;
  for (const auto& o : model.opset_import) {
    std::string d = o.domain == "ai.onnx" ? "" : o.domain;
    if (!domains.insert(d).second) {
      report.add(Sev::kError, "model", "imports domain '" + o.domain + "' more than once");
    }
    if (o.version <= 0) {
      report.add(Sev::kError, "model",
                 "imports domain '" + o.domain + "' with invalid version " + std::to_string(o.version));
    }
  }
  GraphVerifier v{model, report};
  v.graph(model.graph, {}, "");
}

}  // namespace kiln::ir
