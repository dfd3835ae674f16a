// Constant weights prepared once for a fast kernel (packed for the SGEMM, transformed for Winograd) and shared by
// every node that reads the same initializer (exporters reuse one for repeated layers).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {

// The constant weight `w` prepared once by `make()` (a shared_ptr<T>, null when out of memory) in the session's
// shared cache, keyed by `what` (a preparation: CacheEntry::kSgemmB, ...), w's address and `fields`. `action` names the
// preparation in the error.
template <class T, class Make>
StatusOr<std::shared_ptr<T>> shared_weights(const KernelContext& ctx, CacheEntry what, const Tensor& w,
                                            std::initializer_list<int64_t> fields, const std::string& action,
                                            Make make) {
  CacheKey key{what, {static_cast<int64_t>(reinterpret_cast<intptr_t>(w.raw_data()))}};
  key.fields.insert(key.fields.end(), fields);
  return ctx.shared_cache()->get<T>(key, [&]() -> StatusOr<std::shared_ptr<T>> {
    std::shared_ptr<T> prepared = make();
    if (!prepared) return ctx.error("out of memory " + action);
    return prepared;
  });
}

}  // namespace kiln::cpu
