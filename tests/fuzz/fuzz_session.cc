// Fuzz target: model bytes through session creation (optimizer, planning) and one run, on inputs shaped from the
// model (fuzz_inputs.h: small tensors, one thread, 64 MiB of memory, 500 ms).
#include <cstddef>
#include <cstdint>

#include "fuzz_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto session = kiln::Session::create_from_bytes(data, size, kiln_fuzz::bounded_options());
  if (!session.is_ok()) return 0;
  kiln_fuzz::run_once(**session);
  return 0;
}
