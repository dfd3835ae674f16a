// Prepared weights (the entries of a session's shared KernelCache: SGEMM panels, Winograd transforms, blocked 1x1
// weights) as plain float arrays and back, so that an engine plan can carry them and a session loaded from it finds
// them ready instead of preparing them on its first run. Implemented beside the fast kernels that own the types
// (fast/prepared.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {

struct PreparedArray {
  const float* data = nullptr;
  int64_t count = 0;  // floats
};

// A shared-cache entry in exportable form. The key's first field (the weight's address) is left to the caller,
// which names the weight instead; `fields` are the key's other fields.
struct ExportedWeights {
  CacheEntry entry{};
  std::vector<int64_t> fields;
  std::vector<int64_t> meta;  // the type's own sizes
  std::vector<PreparedArray> arrays;
};

// The entry's arrays (views of `value`, which must outlive them), or nullopt for an entry kiln cannot export
// (oneDNN's reordered weights, whose layout belongs to the primitive).
std::optional<ExportedWeights> export_prepared(const CacheKey& key, const std::shared_ptr<void>& value);

// The entry back, its arrays viewing memory that `owner` keeps alive (a plan's memory map): no copy. An error
// naming what does not fit when `meta` disagrees with the key's `fields` (what a kernel that finds the entry
// expects) or the arrays' sizes with `meta`.
StatusOr<std::shared_ptr<void>> import_prepared(CacheEntry entry, const std::vector<int64_t>& fields,
                                                const std::vector<int64_t>& meta,
                                                const std::vector<PreparedArray>& arrays, std::shared_ptr<void> owner);

}  // namespace kiln::cpu
