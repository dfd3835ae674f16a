// ir <-> ONNX protobuf conversion. Internal to src/onnx: the only place that sees onnx::ModelProto.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/ir/graph.h"

namespace kiln::onnx {

struct ImportContext {
  std::string label;     // file name or "<bytes>", for messages
  std::string base_dir;  // where external-data locations are resolved
  // Initializers the caller supplies itself: their external data is not read (an empty placeholder is left, which
  // the caller replaces before using the model).
  std::vector<std::string> provided_initializers;
};

// Moves tensor bytes out of `proto` where it can (the proto is left partly emptied).
StatusOr<ir::Model> model_from_proto(::onnx::ModelProto& proto, const ImportContext& ctx);

StatusOr<ir::NamedTensor> tensor_from_proto(::onnx::TensorProto& proto, const ImportContext& ctx);

struct ExportOptions {
  // When set, tensors of at least `threshold` bytes are appended to `external_out` and referenced by `location`.
  std::string* external_out = nullptr;
  size_t threshold = 0;
  std::string location;
};

Status model_to_proto(const ir::Model& model, ::onnx::ModelProto* proto, const ExportOptions& options = {});
// One tensor, its bytes inline.
Status tensor_to_proto(const ir::NamedTensor& tensor, ::onnx::TensorProto* proto);
Status graph_to_proto(const ir::Graph& graph, ::onnx::GraphProto* proto, const ExportOptions& options = {});
void type_to_proto(const ir::Type& type, ::onnx::TypeProto* proto);
ir::Type type_from_proto(const ::onnx::TypeProto& proto);

}  // namespace kiln::onnx
