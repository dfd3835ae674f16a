#include "kernels/x86/vmath.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace kiln::vmath {
namespace {

// exp(x) for x <= 0: 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], p a degree-6 polynomial.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);  // a NaN stays NaN
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// The sum of v[i] - center (or of its squares) in double: four accumulators of 4 lanes, so the adds do not
// wait on one another.
__attribute__((target("avx2,fma"))) double sum_centered(const float* v, int64_t n, float center, bool squares) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
  const __m256 c = _mm256_set1_ps(center);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int h = 0; h < 2; ++h) {
      __m256 d = _mm256_sub_ps(_mm256_loadu_ps(v + i + 8 * h), c);
      if (squares) d = _mm256_mul_ps(d, d);
      acc[2 * h] = _mm256_add_pd(acc[2 * h], _mm256_cvtps_pd(_mm256_castps256_ps128(d)));
      acc[2 * h + 1] = _mm256_add_pd(acc[2 * h + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1)));
    }
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(_mm256_add_pd(acc[0], acc[1]), _mm256_add_pd(acc[2], acc[3])));
  double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; ++i) {
    const float d = v[i] - center;
    s += squares ? static_cast<double>(d) * d : d;
  }
  return s;
}

}  // namespace

__attribute__((target("avx2,fma"))) void softmax_row(float* x, int64_t n, float scale) {
  if (n <= 0) return;
  // The largest of scale * x: the max of x, or its min when scale is negative. A NaN propagates through the
  // sums below.
  __m256 vmax = _mm256_set1_ps(-INFINITY), vmin = _mm256_set1_ps(INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    vmax = _mm256_max_ps(vmax, v);
    vmin = _mm256_min_ps(vmin, v);
  }
  alignas(32) float hi[8], lo[8];
  _mm256_store_ps(hi, vmax);
  _mm256_store_ps(lo, vmin);
  float mx = -INFINITY, mn = INFINITY;
  for (int l = 0; l < 8; ++l) {
    mx = std::max(mx, hi[l]);
    mn = std::min(mn, lo[l]);
  }
  for (int64_t j = i; j < n; ++j) {
    mx = std::max(mx, x[j]);
    mn = std::min(mn, x[j]);
  }
  const float shift = scale * (scale >= 0.0f ? mx : mn);
  const __m256 vs = _mm256_set1_ps(shift), vscale = _mm256_set1_ps(scale);
  __m256 vsum = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp_nonpositive(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), vscale, vs));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vsum);
  float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; i < n; ++i) {
    x[i] = std::exp(std::fma(x[i], scale, -shift));
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  const __m256 vinv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
  for (; i < n; ++i) x[i] *= inv;
}

namespace {

// GELU of one vector: erf(|z|) = 1 - poly(t) exp(-z^2), t = 1 / (1 + p |z|) by a reciprocal estimate and one
// Newton step (relative error about 2^-23, against the division's 2^-24).
__attribute__((target("avx2,fma"), always_inline)) inline __m256 gelu8(__m256 v) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
  // |z| beyond 5 gives erf 1 in float (erfc(5) is 1.5e-12); clamped there, exp(-z^2) and the products stay
  // normal numbers (denormals cost a microcode assist each).
  const __m256 az = _mm256_min_ps(_mm256_andnot_ps(sign, z), _mm256_set1_ps(5.0f));
  const __m256 d = _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), az, one);
  __m256 t = _mm256_rcp_ps(d);
  t = _mm256_mul_ps(t, _mm256_fnmadd_ps(d, t, _mm256_set1_ps(2.0f)));
  __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps(1.061405429f), t, _mm256_set1_ps(-1.453152027f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
  poly = _mm256_mul_ps(poly, t);
  const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
  const __m256 erf_abs = _mm256_fnmadd_ps(poly, e, one);             // erf(|z|)
  const __m256 erf = _mm256_or_ps(erf_abs, _mm256_and_ps(sign, z));  // sign of z
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v), _mm256_add_ps(one, erf));
}

}  // namespace

__attribute__((target("avx2,fma"))) void gelu(float* x, int64_t n) {
  int64_t i = 0;
  // Two vectors at a time: their chains of dependent steps overlap.
  for (; i + 16 <= n; i += 16) {
    const __m256 a = gelu8(_mm256_loadu_ps(x + i)), b = gelu8(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(x + i, a);
    _mm256_storeu_ps(x + i + 8, b);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}

__attribute__((target("avx2"))) void add(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; ++i) y[i] = a[i] + b[i];
}

__attribute__((target("avx2,fma"))) void layernorm_row(const float* x, const float* scale, const float* bias, float* y,
                                                       int64_t n, double eps) {
  if (n <= 0) return;
  const float mean = static_cast<float>(sum_centered(x, n, 0.0f, false) / static_cast<double>(n));
  const float inv = static_cast<float>(1.0 / std::sqrt(sum_centered(x, n, mean, true) / static_cast<double>(n) + eps));
  const __m256 vm = _mm256_set1_ps(mean), vi = _mm256_set1_ps(inv);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 t =
        _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi), _mm256_loadu_ps(scale + i));
    _mm256_storeu_ps(y + i, bias ? _mm256_add_ps(t, _mm256_loadu_ps(bias + i)) : t);
  }
  for (; i < n; ++i) y[i] = (x[i] - mean) * inv * scale[i] + (bias ? bias[i] : 0.0f);
}

}  // namespace kiln::vmath
