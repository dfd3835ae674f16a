// Fuzz target: the .pb (TensorProto) reader. External data resolves in a folder that does not exist.
#include <cstddef>
#include <cstdint>

#include "kiln/onnx/model_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)kiln::onnx::parse_tensor(data, size, "<fuzz>", "/nonexistent-fuzz-dir");
  return 0;
}
