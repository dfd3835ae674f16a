// What the optimizer passes share: who produces and who reads each value, constants, and node removal.
#pragma once

#include <functional>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kiln/ir/graph.h"
#include "kiln/optimizer/optimizer.h"

namespace kiln::opt {

// A snapshot of the graph's edges. Passes build one, rewrite, and build a fresh one after a change.
class GraphView {
 public:
  explicit GraphView(const ir::Graph& g);

  // The node producing `name`, or -1 (graph input, initializer, outer scope).
  int producer(const std::string& name) const;
  // Node indices that read `name` (once per node, in node order).
  const std::vector<size_t>& readers(const std::string& name) const;
  // Readers, plus one for a graph output and one for any subgraph that reads it.
  size_t use_count(const std::string& name) const;
  bool is_graph_output(const std::string& name) const { return outputs_.count(name) > 0; }
  // Read from inside some node's subgraph (renaming it would need the subgraph rewritten too).
  bool read_by_subgraph(const std::string& name) const { return subgraph_reads_.count(name) > 0; }
  // The only reader of `name` when it has exactly one use; -1 otherwise.
  int single_reader(const std::string& name) const;

 private:
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<size_t>> readers_;
  std::unordered_set<std::string> outputs_;
  std::unordered_set<std::string> subgraph_reads_;
};

// An ai.onnx node of type `op`.
inline bool is_onnx(const ir::Node& n, const char* op) {
  return n.op_type == op && (n.domain.empty() || n.domain == "ai.onnx");
}
inline bool is_kiln(const ir::Node& n, const char* op) { return n.op_type == op && n.domain == kKilnDomain; }

// A constant of the graph: an initializer that is not also a graph input (a feed cannot replace it).
const Tensor* constant_tensor(const ir::Graph& g, const std::string& name);
// The constant as float values, when it is a float32/float64 constant.
std::optional<std::vector<double>> constant_values(const ir::Graph& g, const std::string& name);
// A constant scalar (any numeric dtype, one element) near `value`.
bool is_constant_scalar(const ir::Graph& g, const std::string& name, double value, double tol = 1e-6);

// Quantization parameters (QuantizeLinear/DequantizeLinear, QLinear* inputs). A constant float32 scalar:
bool scalar_f32(const ir::Graph& g, const std::string& name);
// its value (scalar_f32 checked).
float scalar_value(const ir::Graph& g, const std::string& name);
// A constant scalar zero point of uint8 or int8 (or none, "": uint8 0).
bool scalar_zero_point(const ir::Graph& g, const std::string& name);
// A zero point (scalar_zero_point checked) as (is int8, value): none is uint8 0.
std::pair<bool, int32_t> zero_point_value(const ir::Graph& g, const std::string& name);
// Whether two scales (float32 scalars) or two zero points are the same value, or the same name.
bool same_scale(const ir::Graph& g, const std::string& a, const std::string& b);
bool same_zero_point(const ir::Graph& g, const std::string& a, const std::string& b);

// A Clip's bounds when they are constants (attributes before opset 11, inputs from it; an absent one: the float
// range's end); nullopt when one is not a constant scalar.
std::optional<std::pair<float, float>> clip_bounds(const ir::Model& m, const ir::Node& n);
// Every name read by the graph's nodes, nested subgraphs included.
void collect_reads(const ir::Graph& g, std::unordered_set<std::string>& reads);
// Every value node n reads: its inputs and what its subgraphs read from outside them (the layout passes call
// `need` on each, to convert what a plain consumer needs).
void for_each_read(const ir::Node& n, const std::function<void(const std::string&)>& need);
// The other input of a two-input node, given one of them; "" when `known` is not an input.
std::string other_input(const ir::Node& n, const std::string& known);

// Replaces every read of `from` by `to` in the graph's nodes (not in subgraphs).
void rename_reads(ir::Graph& g, const std::string& from, const std::string& to);
// Removes the nodes whose op_type was set to "" by a pass.
void sweep_removed(ir::Graph& g);
inline void mark_removed(ir::Node& n) { n.op_type.clear(); }

// A value or initializer name not used in the graph yet, built from `base`.
std::string fresh_name(const ir::Graph& g, const std::string& base);
// Adds an initializer and returns its name.
std::string add_initializer(ir::Graph& g, const std::string& base, Tensor t);
// Makes sure the model imports the ai.kiln domain.
void import_kiln_domain(ir::Model& m);

int64_t attr_int(const ir::Node& n, const std::string& name, int64_t def);
float attr_float(const ir::Node& n, const std::string& name, float def);
std::vector<int64_t> attr_ints(const ir::Node& n, const std::string& name);
void set_attr(ir::Node& n, ir::Attribute a);

}  // namespace kiln::opt
