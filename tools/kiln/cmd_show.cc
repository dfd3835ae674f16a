// kiln show MODEL [--format summary|text|json]: what is in a model.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "kiln/onnx/check.h"
#include "kiln/onnx/model_io.h"
#include "kiln/runtime/plan.h"

namespace kiln::cli {
namespace {

using nlohmann::json;

json shape_json(const ir::Type& t) {
  if (!t.shape) return nullptr;
  json dims = json::array();
  for (const auto& d : t.shape->dims()) {
    if (d.is_known())
      dims.push_back(d.value());
    else if (d.is_symbolic())
      dims.push_back(d.symbol());
    else
      dims.push_back(nullptr);
  }
  return dims;
}

std::string dtype_of(const ir::Type& t) {
  if (t.kind == ir::Type::Kind::kTensor) return dtype_name(t.elem_type);
  return t.to_string();
}

json value_json(const ir::ValueInfo& v) {
  return json{
      {"name", v.name}, {"dtype", dtype_of(v.type)}, {"shape", shape_json(v.type)}, {"type", v.type.to_string()}};
}

std::map<std::string, int64_t> op_counts(const ir::Graph& g) {
  std::map<std::string, int64_t> counts;
  for (const auto& n : g.nodes) counts[n.domain.empty() ? n.op_type : n.domain + "::" + n.op_type]++;
  return counts;
}

std::string human_bytes(int64_t b) {
  char buf[32];
  if (b < 1024)
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  else if (b < 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else if (b < 1024LL * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  return buf;
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string opsets_text(const ir::Model& m) {
  std::string s;
  for (const auto& o : m.opset_import) {
    if (!s.empty()) s += ", ";
    s += (o.domain.empty() ? "ai.onnx" : o.domain) + " " + std::to_string(o.version);
  }
  return s;
}

// The inferred type of every value, for the node list (best effort: shape inference may not know the opset).
std::map<std::string, ir::Type> inferred_types(const ir::Model& model, const CustomOps* custom) {
  ir::Model typed = model;
  std::map<std::string, ir::Type> types;
  if (!onnx::infer_shapes(typed, custom).is_ok()) typed = model;
  for (const auto* list : {&typed.graph.inputs, &typed.graph.outputs, &typed.graph.value_info}) {
    for (const auto& v : *list) types.emplace(v.name, v.type);
  }
  for (const auto& t : model.graph.initializers) {
    types.emplace(t.name, ir::Type::tensor(t.tensor.dtype(), t.tensor.shape()));
  }
  return types;
}

json to_json(const ir::Model& m, const CustomOps* custom) {
  json j;
  j["producer_name"] = m.producer_name;
  j["producer_version"] = m.producer_version;
  j["ir_version"] = m.ir_version;
  j["domain"] = m.domain;
  j["model_version"] = m.model_version;
  j["doc_string"] = m.doc_string;
  j["graph_name"] = m.graph.name;
  j["opset_import"] = json::array();
  for (const auto& o : m.opset_import) j["opset_import"].push_back({{"domain", o.domain}, {"version", o.version}});
  j["metadata_props"] = json::object();
  for (const auto& [k, v] : m.metadata_props) j["metadata_props"][k] = v;
  j["inputs"] = json::array();
  for (const auto& v : m.graph.inputs) {
    if (!m.graph.find_initializer(v.name)) j["inputs"].push_back(value_json(v));
  }
  j["outputs"] = json::array();
  for (const auto& v : m.graph.outputs) j["outputs"].push_back(value_json(v));
  j["op_counts"] = op_counts(m.graph);
  j["node_count"] = m.graph.nodes.size();
  auto params = ir::parameter_stats(m.graph);
  j["parameter_count"] = params.count;
  j["parameter_bytes"] = params.bytes;
  j["initializer_count"] = m.graph.initializers.size();
  j["functions"] = json::array();
  for (const auto& f : m.functions) j["functions"].push_back({{"domain", f.domain}, {"name", f.name}});
  auto types = inferred_types(m, custom);
  j["nodes"] = json::array();
  for (const auto& n : m.graph.nodes) {
    json outs = json::array();
    for (const auto& o : n.outputs) {
      auto it = types.find(o);
      outs.push_back(it == types.end()
                         ? json{{"name", o}, {"dtype", nullptr}, {"shape", nullptr}}
                         : json{{"name", o}, {"dtype", dtype_of(it->second)}, {"shape", shape_json(it->second)}});
    }
    j["nodes"].push_back({{"name", n.name},
                          {"op_type", n.op_type},
                          {"domain", n.domain},
                          {"inputs", n.inputs},
                          {"outputs", n.outputs},
                          {"output_types", outs}});
  }
  return j;
}

void print_summary(const std::string& path, const ir::Model& m, std::ostream& os, const CustomOps* custom) {
  const auto params = ir::parameter_stats(m.graph);
  os << "Model        " << path << "\n";
  os << "Producer     " << (m.producer_name.empty() ? "(unknown)" : m.producer_name)
     << (m.producer_version.empty() ? "" : " " + m.producer_version) << "\n";
  os << "IR version   " << m.ir_version << "\n";
  os << "Opsets       " << opsets_text(m) << "\n";
  os << "Graph        " << (m.graph.name.empty() ? "(unnamed)" : m.graph.name) << ", " << m.graph.nodes.size()
     << " nodes, " << m.graph.initializers.size() << " initializers\n";
  os << "Parameters   " << with_commas(params.count) << " (" << human_bytes(params.bytes) << ")\n";
  if (!m.metadata_props.empty()) {
    os << "Metadata\n";
    for (const auto& [k, v] : m.metadata_props) os << "  " << k << " = " << v << "\n";
  }
  size_t width = 4;
  for (const auto* list : {&m.graph.inputs, &m.graph.outputs}) {
    for (const auto& v : *list) width = std::max(width, v.name.size());
  }
  os << "\nInputs\n";
  for (const auto& v : m.graph.inputs) {
    if (m.graph.find_initializer(v.name)) continue;
    os << "  " << v.name << std::string(width - v.name.size() + 2, ' ') << v.type.to_string() << "\n";
  }
  os << "Outputs\n";
  for (const auto& v : m.graph.outputs) {
    os << "  " << v.name << std::string(width - v.name.size() + 2, ' ') << v.type.to_string() << "\n";
  }
  os << "\nOperators\n";
  auto counts = op_counts(m.graph);
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second > b.second; });
  for (const auto& [op, count] : sorted)
    os << "  " << op << std::string(op.size() < 24 ? 24 - op.size() : 1, ' ') << count << "\n";
  if (!m.functions.empty()) {
    os << "\nFunctions\n";
    for (const auto& f : m.functions) os << "  " << f.domain << "::" << f.name << " (" << f.nodes.size() << " nodes)\n";
  }
  os << "\nNodes\n";
  auto types = inferred_types(m, custom);
  for (size_t i = 0; i < m.graph.nodes.size(); ++i) {
    const auto& n = m.graph.nodes[i];
    os << "  " << i << "  " << (n.name.empty() ? "(unnamed)" : n.name) << "  " << n.op_type << "(";
    for (size_t k = 0; k < n.inputs.size(); ++k) os << (k ? ", " : "") << n.inputs[k];
    os << ") -> ";
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      auto it = types.find(n.outputs[k]);
      os << (k ? ", " : "") << n.outputs[k] << ": " << (it == types.end() ? "?" : it->second.to_string());
    }
    os << "\n";
  }
}

}  // namespace

void add_show(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("show", "Describe a model: summary, protobuf text (print(model)) or JSON");
  auto path = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("summary");
  auto libraries = std::make_shared<std::vector<std::string>>();
  cmd->add_option("model", *path, "The .onnx file or .kplan plan")->required();
  add_custom_ops_option(cmd, *libraries);
  cmd->add_option("-f,--format", *format, "summary (default), text or json")
      ->check(CLI::IsMember({"summary", "text", "json"}));
  cmd->callback([&run, path, format, libraries] {
    run = [path, format, libraries] {
      if (is_plan_file(*path)) {
        if (*format == "text") {
          std::cerr << "kiln: '" << *path << "' is a kiln plan: -f text prints ONNX models (use summary or json)\n";
          return kExitUsage;
        }
        return show_plan(*path, *format);
      }
      CustomOps custom;
      if (int code = load_custom_ops(*libraries, custom); code != kExitOk) return code;
      if (*format == "text") {
        auto text = onnx::model_text_from_file(*path);
        if (!text.is_ok()) {
          std::cerr << "kiln: " << text.status().message() << "\n";
          return kExitUsage;
        }
        std::cout << *text;
        return kExitOk;
      }
      ir::Model model;
      int code = kExitOk;
      if (!load_or_report(*path, model, code)) return code;
      if (*format == "json")
        std::cout << to_json(model, &custom).dump(2) << "\n";
      else
        print_summary(*path, model, std::cout, &custom);
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
