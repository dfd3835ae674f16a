// Structural checks on kiln's IR that need no operator knowledge: names, edges, cycles, order, declared types.
#pragma once

#include <string>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::ir {

struct Problem {
  enum class Severity { kError, kWarning, kNote };
  Severity severity = Severity::kError;
  std::string where;    // "node 'Conv_2' (Conv)", "graph input 'x'", "model"
  std::string message;  // what is wrong and what was expected

  std::string to_string() const;  // "error: node 'Conv_2' (Conv): ..."
};

struct Report {
  std::vector<Problem> problems;
  bool valid() const;  // no errors (warnings and notes allowed)
  size_t count(Problem::Severity s) const;
  void add(Problem::Severity s, std::string where, std::string message);
};

// Checks the main graph and every subgraph: duplicate or empty names, inputs that nothing produces,
// outputs that nothing produces, cycles, nodes out of topological order, initializers whose dtype or
// shape conflicts with their declaration, nodes in domains the model imports no opset for.
void verify_model(const Model& model, Report& report);

}  // namespace kiln::ir
