// Vectorized float math for the fast kernels (AVX2/FMA; callers check sgemm::available()). Each function has a
// plain counterpart that the reference kernels use, and the kernels built on these are tested against it.
#pragma once

#include <cstdint>

namespace kiln::vmath {

// x[i] = exp(x[i] - shift) for every i (inputs at or below `shift`: a softmax row minus its max), and returns
// their sum. Relative error about 2e-7; results below 2^-126 flush to zero; NaN stays NaN.
float exp_shifted_sum(float* x, int64_t n, float shift);

// x[i] = GELU(x[i]) = x / 2 * (1 + erf(x / sqrt 2)), erf to about 2e-7 absolute (Abramowitz and Stegun 7.1.26).
void gelu(float* x, int64_t n);

// y[i] = (x[i] - mean) / sqrt(var + eps) * scale[i] (+ bias[i] when bias is not null) over one row of n
// floats; mean and variance accumulate in double. y may be x.
void layernorm_row(const float* x, const float* scale, const float* bias, float* y, int64_t n, double eps);

}  // namespace kiln::vmath
