// LoRA adapters in ONNX Runtime's adapter format (.onnx_adapter, FlatBuffers, format version 1): named parameters
// that a run feeds to the model's inputs of the same names (RunOptions::add_active_adapter), over the values the
// model holds for them as initializers. One base model then serves several fine-tunings, each a small file.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln {

struct LoraAdapter {
  static constexpr int kFormatVersion = 1;  // the only version of the format so far

  int format_version = kFormatVersion;
  int adapter_version = 0;
  int model_version = 0;  // the version of the model the adapter was made for (the writer's number)
  std::vector<std::pair<std::string, Tensor>> parameters;

  // Reads an adapter file; its parameters view one copy of the file's bytes. Errors name the file and what is
  // wrong: not an adapter (the identifier "TORT"), a format version kiln does not read, a structure that fails
  // the FlatBuffers verifier, a parameter whose bytes disagree with its type and shape, a duplicated name.
  static StatusOr<LoraAdapter> load(const std::string& path);
  static StatusOr<LoraAdapter> from_bytes(const void* data, size_t size, const std::string& what = "adapter");
  // The file's bytes, and the file itself (written whole to a temporary file, then renamed into place).
  StatusOr<std::string> serialize() const;
  Status save(const std::string& path) const;
};

}  // namespace kiln
