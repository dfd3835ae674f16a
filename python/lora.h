// onnxruntime's LoRA adapter API (python/lora.cc): AdapterFormat (read and write .onnx_adapter files) and
// LoraAdapter (loaded once, made active per run with RunOptions.add_active_adapter).
#pragma once

#include <memory>

#include "kiln/runtime/lora_adapter.h"
#include "module.h"

namespace kiln::python {

struct PyLoraAdapter {
  std::shared_ptr<const LoraAdapter> adapter;  // null until Load()
};

void bind_lora(py::module_& m);

}  // namespace kiln::python
