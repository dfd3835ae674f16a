#include "kernels/x86/vmath.h"

#include <algorithm>
#include <cmath>

#include "kernels/x86/vec.h"

namespace kiln::vmath {

// The kernels, once per vector width: 8 lanes (AVX2 + FMA) and 16 (AVX-512).
KILN_BEGIN_AVX2
namespace avx2 {
namespace impl {
using V = simd::Vec8;
#include "kernels/x86/vmath_impl.inc"
}  // namespace impl
}  // namespace avx2
KILN_END_TARGET

KILN_BEGIN_AVX512
namespace avx512 {
namespace impl {
using V = simd::Vec16;
#include "kernels/x86/vmath_impl.inc"
}  // namespace impl
}  // namespace avx512
KILN_END_TARGET

void softmax_row(cpu::Isa isa, float* x, int64_t n, float scale) {
  if (isa >= cpu::Isa::kAvx512) return avx512::impl::Ops::softmax_row(x, n, scale);
  avx2::impl::Ops::softmax_row(x, n, scale);
}

void gelu(cpu::Isa isa, float* x, int64_t n) {
  if (isa >= cpu::Isa::kAvx512) return avx512::impl::Ops::gelu(x, n);
  avx2::impl::Ops::gelu(x, n);
}

void add(cpu::Isa isa, const float* a, const float* b, float* y, int64_t n) {
  if (isa >= cpu::Isa::kAvx512) return avx512::impl::Ops::add(a, b, y, n);
  avx2::impl::Ops::add(a, b, y, n);
}

void layernorm_row(cpu::Isa isa, const float* x, const float* scale, const float* bias, float* y, int64_t n,
                   double eps) {
  if (isa >= cpu::Isa::kAvx512) return avx512::impl::Ops::layernorm_row(x, scale, bias, y, n, eps);
  avx2::impl::Ops::layernorm_row(x, scale, bias, y, n, eps);
}

}  // namespace kiln::vmath
