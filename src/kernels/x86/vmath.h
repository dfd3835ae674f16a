// Vectorized float math for the fast kernels, written once (vmath_impl.inc) for 8 lanes (AVX2 + FMA) and 16
// (AVX-512): `isa` picks the width and must be kAvx2 or better. Each function has a plain counterpart that the
// reference kernels use, and the kernels built on these are tested against it. Results may differ between
// widths in the last bits (sums over lanes are paired differently).
#pragma once

#include <cstdint>

#include "kernels/isa.h"

namespace kiln::vmath {

// x = softmax(scale * x) over one row of n floats: exp(scale * x[i] - shift), shift the largest of scale * x,
// summed, then divided by the sum. exp to about 2e-7 relative; results below 2^-126 flush to zero; a NaN makes
// the row NaN.
void softmax_row(cpu::Isa isa, float* x, int64_t n, float scale);

// x[i] = GELU(x[i]) = x / 2 * (1 + erf(x / sqrt 2)), erf to about 2e-7 absolute (Abramowitz and Stegun 7.1.26).
void gelu(cpu::Isa isa, float* x, int64_t n);

// y[i] = a[i] + b[i] for i < n. y may be a or b.
void add(cpu::Isa isa, const float* a, const float* b, float* y, int64_t n);

// y[i] = (x[i] - mean) / sqrt(var + eps) * scale[i] (+ bias[i] when bias is not null) over one row of n
// floats; mean and variance accumulate in double. y may be x.
void layernorm_row(cpu::Isa isa, const float* x, const float* scale, const float* bias, float* y, int64_t n,
                   double eps);

}  // namespace kiln::vmath
