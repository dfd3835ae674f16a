// Model validation: ONNX's own checker and shape inference (libonnx) plus kiln's structural checks.
#pragma once

#include <string>
#include <vector>

#include "kiln/core/custom_ops.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/verify.h"

namespace kiln::onnx {

// The highest default-domain opset the linked libonnx knows; newer models are checked structurally.
int max_known_opset();

// Full check: kiln's structural checks (ir::verify), known operators per opset, then (for opsets libonnx
// knows) onnx::checker::check_model and strict shape inference with type checks. With `custom`, the nodes its ops
// serve are checked against what the op declares (input and output counts) and typed by its shape function.
ir::Report check_model(const ir::Model& model, const CustomOps* custom = nullptr);

// Every node of an ONNX-domain operator has as many inputs and outputs as its schema allows at the model's opset
// (what the optimizer's passes and the kernels may then take for granted); the first node that does not, named.
Status check_node_arity(const ir::Model& model);

// ONNX shape inference (non-strict): fills graph.value_info with the inferred type of every intermediate
// value and completes untyped graph outputs (through the shape functions of `custom`'s ops when given). Fails only
// when the model cannot be converted.
Status infer_shapes(ir::Model& model, const CustomOps* custom = nullptr);

// The model in protobuf text format, exactly as python's print(onnx.load(path)) shows it.
StatusOr<std::string> model_text_from_file(const std::string& path);
StatusOr<std::string> model_text(const ir::Model& model);

}  // namespace kiln::onnx
