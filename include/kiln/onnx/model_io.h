// Reading and writing .onnx files: the only public entry to protobuf-backed code.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/core/value.h"
#include "kiln/ir/graph.h"

namespace kiln::onnx {

// Reads an .onnx file, with its external-data files (memory-mapped, so models over 2 GiB load without a copy).
// Errors name the file, and the tensor for external-data problems: kNotFound / kIoError when a file cannot be
// read, kInvalidArgument when the bytes are not an ONNX model, kInvalidModel when the model's content is malformed.
StatusOr<ir::Model> load_model(const std::string& path);
// The same, without reading the external data of the initializers named in `provided` (the caller supplies them:
// onnxruntime's add_external_initializers); those are left as empty placeholders, to be replaced.
StatusOr<ir::Model> load_model(const std::string& path, const std::vector<std::string>& provided);

// Parses a serialized ModelProto. External data, if any, is looked up relative to `base_dir`;
// `label` names the source in error messages.
StatusOr<ir::Model> load_model_from_bytes(const void* data, size_t size, const std::string& base_dir = "",
                                          const std::string& label = "<bytes>");

struct SaveOptions {
  // Write initializers of at least `size_threshold` bytes to a separate file instead of inline.
  bool external_data = false;
  size_t size_threshold = 1024;
  // File name of the external data, relative to the model's folder; default "<model file name>.data".
  std::string location;
};

// Writes the model atomically: on any error nothing is left at `path` (or at the external-data path).
// A model whose serialized form would exceed protobuf's 2 GiB limit needs external_data.
Status save_model(const ir::Model& model, const std::string& path, const SaveOptions& options = {});

// Reads a serialized TensorProto (.pb, as the ONNX test data and onnx.numpy_helper write them).
// External data is resolved relative to the file's folder.
StatusOr<ir::NamedTensor> load_tensor(const std::string& path);
// The same from the bytes of a serialized TensorProto; `label` names the source in errors, and external data
// (if the tensor refers to any) is resolved relative to `base_dir`.
StatusOr<ir::NamedTensor> parse_tensor(const void* data, size_t size, const std::string& label = "<tensor>",
                                       const std::string& base_dir = ".");

// Writes `tensor` as a serialized TensorProto named `name` (what load_tensor and onnx.numpy_helper read), every
// dtype exactly; atomically: nothing is left at `path` on error.
Status save_tensor(const Tensor& tensor, const std::string& name, const std::string& path);

// Reads a serialized TensorProto, SequenceProto or OptionalProto, whichever `type` (a graph input's or
// output's type) calls for, as the ONNX test data stores them.
StatusOr<Value> load_value(const std::string& path, const ir::Type& type);

// The ModelProto bytes of the model, all tensors inline.
StatusOr<std::string> serialize_model(const ir::Model& model);

}  // namespace kiln::onnx
