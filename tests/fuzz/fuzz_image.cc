// Fuzz target: the PNG/JPEG reader.
#include <cstddef>
#include <cstdint>

#include "kiln/image/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)kiln::image::decode_nchw(data, size, "<fuzz>");
  return 0;
}
