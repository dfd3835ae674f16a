// Matrix products with few rows (a classifier's Gemm at batch 1 to 4: [1, 1280] by [1280, 1000]) in bfloat16 with
// float32 accumulation, for bf16 sessions on CPUs with AVX512-BF16. Such a product reads every weight once per call
// and does little with it: its time is the time to bring B from memory, which bfloat16 halves. B is packed once
// into bfloat16 pairs (k even in the low half, k odd in the high half of 32 bits) in panels of 16 columns, the
// layout vdpbf16ps multiplies from; each row of A is rounded to bfloat16 pairs the same way, then every panel's 16
// outputs are sums over K in a fixed order (four interleaved partial sums for one row, two for two, one otherwise),
// whatever the thread count. Tested against the reference Gemm and MatMul (tests/unit/runtime/bf16_test.cc).
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/x86/sgemm.h"

namespace kiln::gemv_bf16 {

// The most rows of A a call takes.
inline constexpr int64_t kMaxRows = 4;

// B [K, N] as bfloat16 pairs: panel p (columns 16p to 16p + 15) holds K2 = ceil(K / 2) rows of 16 pairs, at
// data + p * K2 * 16; pairs past K and columns past N are zero.
struct Packed {
  int64_t K = 0, N = 0;
  std::unique_ptr<uint32_t, void (*)(void*)> data{nullptr, nullptr};
};

// The 32-bit words of a packed [K, N] B.
int64_t packed_words(int64_t K, int64_t N);

// B is [K, N] row-major, or [N, K] when trans_b; rounded to nearest even. Nullptr when out of memory.
std::shared_ptr<Packed> pack(const float* b, int64_t K, int64_t N, bool trans_b);

// Whether this CPU runs multiply(): AVX-512 with the AVX512-BF16 instructions.
bool supported();

// y[M, N] = a[M, K] @ B + bias[N] (nullptr: none), for 1 <= M <= kMaxRows; a's rows `lda` floats apart.
void multiply(const float* a, int64_t M, int64_t lda, const Packed& b, const float* bias, float* y,
              const sgemm::ParallelFor& parallel_for);

}  // namespace kiln::gemv_bf16
