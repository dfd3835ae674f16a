// Fuzz target: model bytes through loading (protobuf, kiln's IR import) and the full check (kiln's structural checks,
// ONNX's checker and shape inference).
#include <cstddef>
#include <cstdint>

#include "kiln/onnx/check.h"
#include "kiln/onnx/model_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = kiln::onnx::load_model_from_bytes(data, size, "/nonexistent-fuzz-dir");
  if (!model.is_ok()) return 0;
  (void)kiln::onnx::check_model(*model);
  return 0;
}
