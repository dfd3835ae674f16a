// A float32 GEMM for weights known in advance: B is packed once into 16-column panels, then C = A @ B (+ bias)
// runs an AVX2/FMA 6x16 register-blocked micro-kernel over K blocks that stay in L1. Used by MatMul, Gemm and
// FusedMatMul when B is a constant of the model (oneDNN 2.6 repacks B on every call, which costs most of the
// time for the M = 128 products of a transformer). Every output element is computed by one task in a fixed
// order, so results do not depend on the thread count. Tested against the reference kernels
// (tests/unit/runtime/fast_kernels_test.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace kiln::sgemm {

// True when this CPU has AVX2 and FMA (otherwise callers use oneDNN).
bool available();

struct PackedB {
  int64_t K = 0, N = 0;
  std::unique_ptr<float, void (*)(void*)> data{nullptr, nullptr};  // panels of [K][16], zero-padded
};

// B is [K, N] row-major, or [N, K] when trans_b. Nullptr when out of memory.
std::shared_ptr<PackedB> pack_b(const float* b, int64_t K, int64_t N, bool trans_b);

// c[M, N] = a[M, K] (rows `lda` apart) @ B + bias[N] (nullptr: none). `parallel_for(n, fn)` spreads tasks.
using ParallelFor = std::function<void(int64_t n, const std::function<void(int64_t, int64_t)>& fn)>;
void gemm(const float* a, int64_t M, int64_t lda, const PackedB& b, const float* bias, float* c,
          const ParallelFor& parallel_for);

}  // namespace kiln::sgemm
