// Building models in code: the C++ counterpart of python's onnx.helper (make_tensor_value_info, make_tensor,
// make_node, make_graph, make_model) and numpy_helper (Tensor::from_vector / to_vector, to_tensor).
//
//   using namespace kiln::ir::helper;
//   auto a = make_tensor_value_info("a", DType::kFloat32, {10, 10});
//   auto mul = make_node("Mul", {"a", "x"}, {"c"});
//   auto graph = make_graph({mul, add}, "linear_func", {a, x, b}, {output});
//   auto model = make_model(std::move(graph));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::ir::helper {

// The ONNX IR version and default-domain opset python-onnx 1.12's helper uses by default.
inline constexpr int64_t kDefaultIrVersion = 8;
inline constexpr int64_t kDefaultOpset = 17;

// A dimension given as an integer or as a symbolic name ("batch").
struct DimArg {
  Dim dim;
  DimArg(int64_t v) : dim(v) {}                                // NOLINT(google-explicit-constructor)
  DimArg(int v) : dim(static_cast<int64_t>(v)) {}              // NOLINT(google-explicit-constructor)
  DimArg(const char* s) : dim(Dim::symbolic(s)) {}             // NOLINT(google-explicit-constructor)
  DimArg(std::string s) : dim(Dim::symbolic(std::move(s))) {}  // NOLINT(google-explicit-constructor)
  DimArg(Dim d) : dim(std::move(d)) {}                         // NOLINT(google-explicit-constructor)
};

ValueInfo make_tensor_value_info(std::string name, DType elem_type, std::optional<std::vector<DimArg>> shape,
                                 std::string doc_string = "");

// A named tensor from values (stored as raw bytes, like numpy_helper.from_array).
template <typename T>
NamedTensor make_tensor(std::string name, std::vector<int64_t> dims, const std::vector<T>& values) {
  return NamedTensor{std::move(name), Tensor::from_vector<T>(std::move(dims), values), "", true, ""};
}
NamedTensor make_tensor(std::string name, Tensor tensor);

// Typed attributes; the overload picks the ONNX attribute type.
Attribute make_attribute(std::string name, float value);
Attribute make_attribute(std::string name, int64_t value);
Attribute make_attribute(std::string name, int value);
Attribute make_attribute(std::string name, const char* value);
Attribute make_attribute(std::string name, std::string value);
Attribute make_attribute(std::string name, NamedTensor value);
Attribute make_attribute(std::string name, Graph value);
Attribute make_attribute(std::string name, std::vector<float> values);
Attribute make_attribute(std::string name, std::vector<int64_t> values);
Attribute make_attribute(std::string name, std::vector<std::string> values);
Attribute make_attribute(std::string name, std::vector<NamedTensor> values);
Attribute make_attribute(std::string name, std::vector<Graph> values);

Node make_node(std::string op_type, std::vector<std::string> inputs, std::vector<std::string> outputs,
               std::string name = "", std::vector<Attribute> attributes = {}, std::string domain = "",
               std::string doc_string = "");

Graph make_graph(std::vector<Node> nodes, std::string name, std::vector<ValueInfo> inputs,
                 std::vector<ValueInfo> outputs, std::vector<NamedTensor> initializers = {},
                 std::string doc_string = "", std::vector<ValueInfo> value_info = {});

OpsetImport make_opsetid(std::string domain, int64_t version);

// A model with the given opsets (default: ai.onnx 17) and IR version (default 8), like helper.make_model.
Model make_model(Graph graph, std::vector<OpsetImport> opset_imports = {{"", kDefaultOpset}},
                 int64_t ir_version = kDefaultIrVersion);

Function make_function(std::string domain, std::string name, std::vector<std::string> inputs,
                       std::vector<std::string> outputs, std::vector<Node> nodes,
                       std::vector<OpsetImport> opset_imports, std::vector<std::string> attributes = {});

}  // namespace kiln::ir::helper
