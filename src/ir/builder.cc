#include "kiln/ir/builder.h"

namespace kiln::ir::helper {

ValueInfo make_tensor_value_info(std::string name, DType elem_type, std::optional<std::vector<DimArg>> shape,
                                 std::string doc_string) {
  ValueInfo v;
  v.name = std::move(name);
  v.doc_string = std::move(doc_string);
  std::optional<Shape> s;
  if (shape) {
    s.emplace();
    for (auto& d : *shape) s->push_back(d.dim);
  }
  v.type = Type::tensor(elem_type, std::move(s));
  return v;
}

NamedTensor make_tensor(std::string name, Tensor tensor) {
  return NamedTensor{std::move(name), std::move(tensor), "", true, ""};
}

namespace {
Attribute attr(std::string name, AttrType type) {
  Attribute a;
  a.name = std::move(name);
  a.type = type;
  return a;
}
}  // namespace

Attribute make_attribute(std::string name, float value) {
  auto a = attr(std::move(name), AttrType::kFloat);
  a.f = value;
  return a;
}
Attribute make_attribute(std::string name, int64_t value) {
  auto a = attr(std::move(name), AttrType::kInt);
  a.i = value;
  return a;
}
Attribute make_attribute(std::string name, int value) { return make_attribute(std::move(name), int64_t{value}); }
Attribute make_attribute(std::string name, const char* value) {
  return make_attribute(std::move(name), std::string(value));
}
Attribute make_attribute(std::string name, std::string value) {
  auto a = attr(std::move(name), AttrType::kString);
  a.s = std::move(value);
  return a;
}
Attribute make_attribute(std::string name, NamedTensor value) {
  auto a = attr(std::move(name), AttrType::kTensor);
  a.t = std::move(value);
  return a;
}
Attribute make_attribute(std::string name, Graph value) {
  auto a = attr(std::move(name), AttrType::kGraph);
  a.g = std::make_shared<Graph>(std::move(value));
  return a;
}
Attribute make_attribute(std::string name, std::vector<float> values) {
  auto a = attr(std::move(name), AttrType::kFloats);
  a.floats = std::move(values);
  return a;
}
Attribute make_attribute(std::string name, std::vector<int64_t> values) {
  auto a = attr(std::move(name), AttrType::kInts);
  a.ints = std::move(values);
  return a;
}
Attribute make_attribute(std::string name, std::vector<std::string> values) {
  auto a = attr(std::move(name), AttrType::kStrings);
  a.strings = std::move(values);
  return a;
}
Attribute make_attribute(std::string name, std::vector<NamedTensor> values) {
  auto a = attr(std::move(name), AttrType::kTensors);
  a.tensors = std::move(values);
  return a;
}
Attribute make_attribute(std::string name, std::vector<Graph> values) {
  auto a = attr(std::move(name), AttrType::kGraphs);
  for (auto& g : values) a.graphs.push_back(std::make_shared<Graph>(std::move(g)));
  return a;
}

Node make_node(std::string op_type, std::vector<std::string> inputs, std::vector<std::string> outputs, std::string name,
               std::vector<Attribute> attributes, std::string domain, std::string doc_string) {
  Node n;
  n.op_type = std::move(op_type);
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.name = std::move(name);
  n.attributes = std::move(attributes);
  n.domain = std::move(domain);
  n.doc_string = std::move(doc_string);
  return n;
}

Graph make_graph(std::vector<Node> nodes, std::string name, std::vector<ValueInfo> inputs,
                 std::vector<ValueInfo> outputs, std::vector<NamedTensor> initializers, std::string doc_string,
                 std::vector<ValueInfo> value_info) {
  Graph g;
  g.nodes = std::move(nodes);
  g.name = std::move(name);
  g.inputs = std::move(inputs);
  g.outputs = std::move(outputs);
  g.initializers = std::move(initializers);
  g.doc_string = std::move(doc_string);
  g.value_info = std::move(value_info);
  return g;
}

OpsetImport make_opsetid(std::string domain, int64_t version) { return OpsetImport{std::move(domain), version}; }

Model make_model(Graph graph, std::vector<OpsetImport> opset_imports, int64_t ir_version) {
  Model m;
  m.graph = std::move(graph);
  m.ir_version = ir_version;
  m.opset_import = std::move(opset_imports);
  return m;
}

Function make_function(std::string domain, std::string name, std::vector<std::string> inputs,
                       std::vector<std::string> outputs, std::vector<Node> nodes,
                       std::vector<OpsetImport> opset_imports, std::vector<std::string> attributes) {
  Function f;
  f.domain = std::move(domain);
  f.name = std::move(name);
  f.inputs = std::move(inputs);
  f.outputs = std::move(outputs);
  f.nodes = std::move(nodes);
  f.opset_import = std::move(opset_imports);
  f.attributes = std::move(attributes);
  return f;
}

}  // namespace kiln::ir::helper
