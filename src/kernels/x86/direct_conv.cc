#include "kernels/x86/direct_conv.h"

#include <algorithm>
#include <vector>

#include "kernels/x86/vec.h"

namespace kiln::direct_conv {

KILN_BEGIN_AVX2
namespace avx2 {
namespace {
using V = simd::Vec8;
#include "kernels/x86/direct_conv_impl.inc"
}  // namespace
}  // namespace avx2
KILN_END_TARGET

KILN_BEGIN_AVX512
namespace avx512 {
namespace {
using V = simd::Vec16;
#include "kernels/x86/direct_conv_impl.inc"
}  // namespace
}  // namespace avx512
KILN_END_TARGET

int64_t packed_k(const Geometry& g, int64_t block) {
  const int64_t groups = g.blocked_in ? (g.C + block - 1) / block * block : g.C;
  return groups * g.KH * g.KW;
}

std::shared_ptr<pointwise::Weights> pack_weights(const float* w, const Geometry& g, int64_t block) {
  const int64_t K = packed_k(g, block), lanes = g.blocked_in ? block : 1;
  const int64_t CG = g.blocked_in ? (g.C + block - 1) / block : g.C, taps = g.KH * g.KW;
  // [M, K] with K in the order the kernel reads the taps: (channel group, kh, kw, lane); zero for padding lanes.
  std::vector<float> matrix(static_cast<size_t>(g.M * K), 0.0f);
  for (int64_t m = 0; m < g.M; ++m) {
    for (int64_t cg = 0; cg < CG; ++cg) {
      for (int64_t t = 0; t < taps; ++t) {
        for (int64_t l = 0; l < lanes; ++l) {
          const int64_t c = cg * lanes + l;
          if (c >= g.C) break;
          matrix[static_cast<size_t>(m * K + (cg * taps + t) * lanes + l)] = w[(m * g.C + c) * taps + t];
        }
      }
    }
  }
  return pointwise::pack_weights(matrix.data(), g.M, K, block);
}

bool supports(cpu::Isa isa, int64_t block) { return simd::has_block(isa, block); }

void conv_blocked(cpu::Isa isa, const float* x, const Geometry& g, const pointwise::Weights& w, const float* bias,
                  const float* z, float lo, float hi, float* y, int threads, const sgemm::ParallelFor& parallel_for) {
  if (g.N <= 0 || g.OH <= 0 || g.OW <= 0 || w.Mp <= 0) return;
  if (w.block == 16 && isa >= cpu::Isa::kAvx512) {
    avx512::conv(x, g, w, bias, z, lo, hi, y, threads, parallel_for);
  } else {
    avx2::conv(x, g, w, bias, z, lo, hi, y, threads, parallel_for);
  }
}

}  // namespace kiln::direct_conv
