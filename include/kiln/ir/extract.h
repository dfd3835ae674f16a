// Sub-model extraction (onnx.utils.extract_model) and exposing intermediate values as outputs.
#pragma once

#include <string>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::ir {

// The sub-model between `inputs` and `outputs`, node for node what onnx.utils.extract_model gives:
// nodes on a path back from an output, stopping at the given inputs, in their original order; the
// initializers and value_info those nodes use; the model-local functions they call.
// `model` must carry inferred value_info (onnx::infer_shapes) so that cut points have types.
// Fails, naming the value, when a name is unknown or untyped, or when the cut leaves a node input
// that is neither a listed input, an initializer nor produced inside the sub-model.
StatusOr<Model> extract_model(const Model& model, const std::vector<std::string>& inputs,
                              const std::vector<std::string>& outputs);

// Appends each named value as a graph output (no-op for values already outputs), typed from
// `types` (a model with inferred value_info, possibly `model` itself). Fails naming an unknown value.
Status add_outputs(Model& model, const Model& types, const std::vector<std::string>& names);

}  // namespace kiln::ir
