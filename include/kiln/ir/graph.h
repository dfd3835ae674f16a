// kiln's in-memory model: the same information as an ONNX ModelProto, in plain C++ types,
// so that everything above the importer (check, show, extract, optimizer, runtime) never sees protobuf.
// Edges are value names, as in ONNX; a value is produced by one node output, a graph input or an initializer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/shape.h"
#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln::ir {

struct Graph;

// The type of a value: a tensor (dtype + optional shape) or a sequence/map/optional of types.
struct Type {
  enum class Kind { kNone, kTensor, kSparseTensor, kSequence, kMap, kOptional };
  Kind kind = Kind::kNone;
  DType elem_type = DType::kUndefined;       // tensor / sparse tensor element type
  std::optional<Shape> shape;                // nullopt: rank unknown
  std::vector<std::string> dim_denotations;  // per dim, empty when none were given
  DType key_type = DType::kUndefined;        // map key
  std::shared_ptr<Type> value_type;          // sequence element, map value, optional element
  std::string denotation;

  static Type tensor(DType dtype, std::optional<Shape> shape = std::nullopt);
  bool is_tensor() const { return kind == Kind::kTensor; }
  // "tensor(float)[1,3,h,w]", "seq(tensor(int64))", ...
  std::string to_string() const;
  bool operator==(const Type& o) const;
};

struct ValueInfo {
  std::string name;
  Type type;
  std::string doc_string;
};

// A tensor with the name and metadata it has in a model (initializers, tensor attributes).
struct NamedTensor {
  std::string name;
  Tensor tensor;
  std::string doc_string;
  // How the file stored it, kept so that a round trip writes the same fields.
  bool stored_as_raw = true;
  std::string external_location;  // set when the tensor came from an external-data file
};

struct SparseTensor {
  NamedTensor values;
  NamedTensor indices;
  std::vector<int64_t> dims;
};

enum class AttrType {
  kUndefined = 0,
  kFloat = 1,
  kInt = 2,
  kString = 3,
  kTensor = 4,
  kGraph = 5,
  kFloats = 6,
  kInts = 7,
  kStrings = 8,
  kTensors = 9,
  kGraphs = 10,
  kSparseTensor = 11,
  kSparseTensors = 12,
  kTypeProto = 13,
  kTypeProtos = 14,
};
const char* attr_type_name(AttrType t);

struct Attribute {
  std::string name;
  AttrType type = AttrType::kUndefined;
  std::string doc_string;
  std::string ref_attr_name;  // inside functions: refers to an attribute of the calling node
  float f = 0;
  int64_t i = 0;
  std::string s;
  NamedTensor t;
  std::shared_ptr<Graph> g;
  SparseTensor sparse_tensor;
  Type tp;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<NamedTensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  std::vector<SparseTensor> sparse_tensors;
  std::vector<Type> tps;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;                // "" is the default ONNX domain (ai.onnx)
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::vector<Attribute> attributes;
  std::string doc_string;

  const Attribute* attr(const std::string& attr_name) const;
  // "node 'Conv_2' (Conv)" or "node #3 (Conv)" when unnamed; index is the position in its graph.
  std::string describe(size_t index) const;
};

struct Graph {
  std::string name;
  std::string doc_string;
  std::vector<Node> nodes;
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<ValueInfo> value_info;
  std::vector<NamedTensor> initializers;
  std::vector<SparseTensor> sparse_initializers;

  const NamedTensor* find_initializer(const std::string& n) const;
  const ValueInfo* find_value_info(const std::string& n) const;  // inputs, outputs, then value_info
  // Nodes that read a subgraph (If/Loop/Scan bodies), recursively, for visiting.
  static void collect_subgraphs(const Node& node, std::vector<const Graph*>& out);
};

struct OpsetImport {
  std::string domain;
  int64_t version = 0;
};

struct Function {
  std::string name;
  std::string domain;
  std::string doc_string;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<std::string> attributes;
  std::vector<Node> nodes;
  std::vector<OpsetImport> opset_import;
};

struct Model {
  int64_t ir_version = 0;
  std::vector<OpsetImport> opset_import;
  std::string producer_name;
  std::string producer_version;
  std::string domain;
  int64_t model_version = 0;
  std::string doc_string;
  Graph graph;
  std::vector<std::pair<std::string, std::string>> metadata_props;
  std::vector<Function> functions;

  // The opset version imported for `domain` ("" and "ai.onnx" are the same), or nullopt.
  std::optional<int64_t> opset(const std::string& domain) const;
  const Function* find_function(const std::string& domain, const std::string& name) const;
};

// Node indices in an order where every node comes after the producers of its inputs.
// Fails with a message naming the nodes on a cycle when the graph has one. Only edges between nodes
// of this graph count: names from graph inputs, initializers or an enclosing graph are always ready.
StatusOr<std::vector<size_t>> topological_order(const Graph& graph);

// Number of elements and bytes held by the graph's initializers (sub-graphs included).
struct ParameterStats {
  int64_t count = 0;
  int64_t bytes = 0;
};
ParameterStats parameter_stats(const Graph& graph);

}  // namespace kiln::ir
