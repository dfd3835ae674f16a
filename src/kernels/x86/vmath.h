// Vectorized float math for the fast kernels (AVX2/FMA; callers check sgemm::available()). Each function has a
// plain counterpart that the reference kernels use, and the kernels built on these are tested against it.
#pragma once

#include <cstdint>

namespace kiln::vmath {

// x = softmax(scale * x) over one row of n floats: exp(scale * x[i] - shift), shift the largest of scale * x,
// summed, then divided by the sum. exp to about 2e-7 relative; results below 2^-126 flush to zero; a NaN makes
// the row NaN.
void softmax_row(float* x, int64_t n, float scale);

// x[i] = GELU(x[i]) = x / 2 * (1 + erf(x / sqrt 2)), erf to about 2e-7 absolute (Abramowitz and Stegun 7.1.26).
void gelu(float* x, int64_t n);

// y[i] = a[i] + b[i] for i < n. y may be a or b.
void add(const float* a, const float* b, float* y, int64_t n);

// y[i] = (x[i] - mean) / sqrt(var + eps) * scale[i] (+ bias[i] when bias is not null) over one row of n
// floats; mean and variance accumulate in double. y may be x.
void layernorm_row(const float* x, const float* scale, const float* bias, float* y, int64_t n, double eps);

}  // namespace kiln::vmath
