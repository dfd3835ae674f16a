// Fuzz target: engine plan bytes (.kplan) through Session::create_from_plan_bytes and one bounded run
// (fuzz_inputs.h). A plan's header and graph section carry checksums, which nearly every mutation breaks; so that
// mutations reach the FlatBuffers verifier and kiln's own checks behind it, the target first writes the checksums
// the mutated bytes would have (where the header's section bounds fit the input).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_inputs.h"
#include "kiln/runtime/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  if (size >= 64 && std::memcmp(bytes.data(), "KILNPLAN", 8) == 0) {
    uint64_t at = 0, n = 0;
    std::memcpy(&at, bytes.data() + 16, 8);
    std::memcpy(&n, bytes.data() + 24, 8);
    if (at <= size && n <= size - at) {
      const uint64_t sum = kiln::checksum64(bytes.data() + at, n);
      std::memcpy(bytes.data() + 48, &sum, 8);
    }
    const uint64_t header = kiln::checksum64(bytes.data(), 56);
    std::memcpy(bytes.data() + 56, &header, 8);
  }
  auto session = kiln::Session::create_from_plan_bytes(bytes.data(), bytes.size(), kiln_fuzz::bounded_options());
  if (!session.is_ok()) return 0;
  kiln_fuzz::run_once(**session);
  return 0;
}
