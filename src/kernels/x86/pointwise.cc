#include "kernels/x86/pointwise.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/x86/vec.h"
#include "kiln/core/allocator.h"

namespace kiln::pointwise {

KILN_BEGIN_AVX2
namespace avx2 {
namespace {
using V = simd::Vec8;
#include "kernels/x86/pointwise_impl.inc"
}  // namespace
}  // namespace avx2
KILN_END_TARGET

KILN_BEGIN_AVX512
namespace avx512 {
namespace {
using V = simd::Vec16;
#include "kernels/x86/pointwise_impl.inc"
}  // namespace
}  // namespace avx512
KILN_END_TARGET

std::shared_ptr<Weights> pack_weights(const float* w, int64_t M, int64_t C, int64_t block) {
  auto out = std::make_shared<Weights>();
  out->M = M;
  out->C = C;
  out->block = block;
  out->Mp = (M + block - 1) / block * block;
  out->Cp = (C + block - 1) / block * block;
  const size_t bytes = static_cast<size_t>(out->Mp * out->Cp) * sizeof(float);
  out->data = {static_cast<float*>(allocate_streamed(bytes)), std::free};
  if (!out->data) return nullptr;
  float* d = out->data.get();
  std::memset(d, 0, bytes);
  for (int64_t m = 0; m < M; ++m) {
    float* block_w = d + m / block * out->Cp * block + m % block;
    for (int64_t c = 0; c < C; ++c) block_w[c * block] = w[m * C + c];
  }
  return out;
}

bool supports(cpu::Isa isa, int64_t block) { return simd::has_block(isa, block); }

void conv1x1_blocked(cpu::Isa isa, const float* x, int64_t N, int64_t HW, const Weights& w, const float* bias,
                     const float* z, float lo, float hi, float* y, int threads,
                     const sgemm::ParallelFor& parallel_for) {
  if (N <= 0 || HW <= 0 || w.Mp <= 0) return;
  if (w.block == 16 && isa >= cpu::Isa::kAvx512) {
    avx512::conv(x, N, HW, w, bias, z, lo, hi, y, threads, parallel_for);
  } else {
    avx2::conv(x, N, HW, w, bias, z, lo, hi, y, threads, parallel_for);
  }
}

}  // namespace kiln::pointwise
