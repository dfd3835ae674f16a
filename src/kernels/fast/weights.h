// Constant weights prepared once for a fast kernel (packed for the SGEMM, transformed for Winograd) and shared by
// every node that reads the same initializer (exporters reuse one for repeated layers).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/kernel.h"

namespace kiln::cpu {

// What was prepared from a weight: part of the key in the session's shared cache, so that two preparations of
// one initializer never meet.
enum class PreparedWeights : int64_t {
  kSgemmB = 1,       // sgemm::pack_b of a MatMul/Gemm/FusedMatMul B, key fields {K, N, trans_b}
  kConvIm2col,       // sgemm::pack_b of a first-layer convolution's W as [K, M], key fields {K, M}
  kWinograd,         // winograd::transform_weights, key fields {C, M, tile, stride}
  kConvGemmBlocked,  // sgemm::pack_conv_weights_blocked, key fields {C, M, KH, KW, block}
};

// The constant weight `w` prepared once by `make()` (a shared_ptr<T>, null when out of memory) in the session's
// shared cache, keyed by `what`, w's address and `fields`. `action` names the preparation in the error.
template <class T, class Make>
StatusOr<std::shared_ptr<T>> shared_weights(const KernelContext& ctx, PreparedWeights what, const Tensor& w,
                                            std::initializer_list<int64_t> fields, const std::string& action,
                                            Make make) {
  std::vector<int64_t> key{static_cast<int64_t>(what), static_cast<int64_t>(reinterpret_cast<intptr_t>(w.raw_data()))};
  key.insert(key.end(), fields);
  return ctx.shared_cache()->get<T>(key, [&]() -> StatusOr<std::shared_ptr<T>> {
    std::shared_ptr<T> prepared = make();
    if (!prepared) return ctx.error("out of memory " + action);
    return prepared;
  });
}

}  // namespace kiln::cpu
