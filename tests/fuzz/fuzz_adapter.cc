// Fuzz target: the LoRA adapter reader (ONNX Runtime's .onnx_adapter format). Whatever it accepts must write back
// and read again to the same parameters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kiln/runtime/lora_adapter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto a = kiln::LoraAdapter::from_bytes(data, size, "<fuzz>");
  if (!a.is_ok()) return 0;
  auto bytes = a->serialize();
  if (!bytes.is_ok()) return 0;  // e.g. a name the writer refuses (two parameters of one name are refused on reading)
  auto b = kiln::LoraAdapter::from_bytes(bytes->data(), bytes->size(), "<rewritten>");
  if (!b.is_ok() || b->parameters.size() != a->parameters.size()) std::abort();
  for (size_t i = 0; i < a->parameters.size(); ++i) {
    if (b->parameters[i].first != a->parameters[i].first || !b->parameters[i].second.equals(a->parameters[i].second)) {
      std::abort();
    }
  }
  return 0;
}
