// Raw ModelProto access for the other src/onnx files (text printing, checker).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "kiln/core/status.h"

namespace kiln::onnx {

// Parses and validates that the bytes are a ModelProto; `label` names the source in errors.
// Bytes that are not an ONNX model at all give kInvalidArgument (the caller passed the wrong file).
StatusOr<::onnx::ModelProto> parse_model_proto(const void* data, size_t size, const std::string& label);
StatusOr<::onnx::ModelProto> read_model_proto(const std::string& path);

}  // namespace kiln::onnx
