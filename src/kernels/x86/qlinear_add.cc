#include "kernels/x86/qlinear_add.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/x86/vec.h"

namespace kiln::qlinear_add {
namespace {

// The scalar form of one element (the tails): the reference's arithmetic. A NaN quotient (from an infinite or NaN
// scale) saturates low, as the reference's saturate(NaN) does.
inline void add1(const Params& p, const uint8_t* a, const uint8_t* b, uint8_t* c) {
  const int32_t ai = p.a_signed ? static_cast<int8_t>(*a) : *a;
  const int32_t bi = p.b_signed ? static_cast<int8_t>(*b) : *b;
  const float fa = static_cast<float>(ai - p.a_zero_point) * p.a_scale;
  const float fb = static_cast<float>(bi - p.b_zero_point) * p.b_scale;
  float q = (p.relu ? std::max(fa + fb, 0.0f) : fa + fb) / p.c_scale;
  const float lo = p.c_signed ? -128.0f : 0.0f, hi = p.c_signed ? 127.0f : 255.0f;
  const float r =
      std::isnan(q) ? lo : std::min(std::max(std::nearbyint(q) + static_cast<float>(p.c_zero_point), lo), hi);
  if (p.c_signed) {
    *reinterpret_cast<int8_t*>(c) = static_cast<int8_t>(r);
  } else {
    *c = static_cast<uint8_t>(r);
  }
}

// The quotient is clamped to +-2^30 before it is converted, so that out-of-range values saturate when packed
// instead of wrapping; the conversion rounds half to even (the default rounding mode), as nearbyint does.
constexpr float kClamp = 1073741824.0f;

// Whether every quotient is finite and within the clamp, whatever the 8-bit values: |A - A_zero_point| and |B -
// B_zero_point| are at most 255, so |sum / C_scale| <= 255 (|A_scale| + |B_scale|) / |C_scale| (with room for the
// float roundings). Then the loops skip the NaN test and the clamp (4 of the AVX-512 loop's 22 vector operations).
inline bool bounded(const Params& p) {
  const double as = std::fabs(static_cast<double>(p.a_scale)), bs = std::fabs(static_cast<double>(p.b_scale)),
               cs = std::fabs(static_cast<double>(p.c_scale));
  return std::isfinite(as) && std::isfinite(bs) && std::isfinite(cs) && cs > 0 &&
         256.0 * (as + bs) / cs < static_cast<double>(kClamp);
}

KILN_BEGIN_AVX2
// 8 values at p widened to int32.
inline __m256i widen8(const uint8_t* p, bool is_signed) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

template <bool kBounded>
inline __m256i quantize8(const Params& p, const uint8_t* a, const uint8_t* b) {
  const __m256 fa =
      _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(a, p.a_signed), _mm256_set1_epi32(p.a_zero_point))),
                    _mm256_set1_ps(p.a_scale));
  const __m256 fb =
      _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(b, p.b_signed), _mm256_set1_epi32(p.b_zero_point))),
                    _mm256_set1_ps(p.b_scale));
  __m256 sum = _mm256_add_ps(fa, fb);
  if (p.relu) sum = _mm256_max_ps(_mm256_setzero_ps(), sum);  // std::max(sum, 0.0f): NaN and -0 pass
  __m256 q = _mm256_div_ps(sum, _mm256_set1_ps(p.c_scale));
  if (!kBounded) {
    q = _mm256_blendv_ps(_mm256_set1_ps(-kClamp), q, _mm256_cmp_ps(q, q, _CMP_ORD_Q));  // NaN saturates low
    q = _mm256_max_ps(_mm256_min_ps(q, _mm256_set1_ps(kClamp)), _mm256_set1_ps(-kClamp));
  }
  return _mm256_add_epi32(_mm256_cvtps_epi32(q), _mm256_set1_epi32(p.c_zero_point));
}

template <bool kBounded>
void add_avx2(const Params& p, const uint8_t* a, const uint8_t* b, uint8_t* c, int64_t begin, int64_t end) {
  // The 16-bit and 8-bit packs work within 128-bit halves: the permute puts the four vectors' 8 bytes back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = begin;
  for (; i + 32 <= end; i += 32) {
    const __m256i q0 = quantize8<kBounded>(p, a + i, b + i), q1 = quantize8<kBounded>(p, a + i + 8, b + i + 8);
    const __m256i q2 = quantize8<kBounded>(p, a + i + 16, b + i + 16);
    const __m256i q3 = quantize8<kBounded>(p, a + i + 24, b + i + 24);
    const __m256i lo = _mm256_packs_epi32(q0, q1), hi = _mm256_packs_epi32(q2, q3);
    const __m256i bytes = p.c_signed ? _mm256_packs_epi16(lo, hi) : _mm256_packus_epi16(lo, hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i), _mm256_permutevar8x32_epi32(bytes, order));
  }
  for (; i < end; ++i) add1(p, a + i, b + i, c + i);
}
KILN_END_TARGET

KILN_BEGIN_AVX512
// The AVX-512 intrinsics in their zero-masking forms with every lane on: GCC 12 warns of the unmasked forms'
// undefined pass-through operand (-Wmaybe-uninitialized) once they are inlined.
constexpr __mmask16 kAll = 0xffff;

inline __m512i widen16(const uint8_t* p, bool is_signed) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return is_signed ? _mm512_maskz_cvtepi8_epi32(kAll, v) : _mm512_maskz_cvtepu8_epi32(kAll, v);
}

inline __m512 dequantize16(const uint8_t* p, bool is_signed, __m512i zero_point, __m512 scale) {
  return _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(kAll, _mm512_sub_epi32(widen16(p, is_signed), zero_point)), scale);
}

template <bool kBounded>
void add_avx512(const Params& p, const uint8_t* a, const uint8_t* b, uint8_t* c, int64_t begin, int64_t end) {
  const __m512i az = _mm512_set1_epi32(p.a_zero_point), bz = _mm512_set1_epi32(p.b_zero_point);
  const __m512i cz = _mm512_set1_epi32(p.c_zero_point);
  const __m512 as = _mm512_set1_ps(p.a_scale), bs = _mm512_set1_ps(p.b_scale), cs = _mm512_set1_ps(p.c_scale);
  const __m512 lo = _mm512_set1_ps(-kClamp), hi = _mm512_set1_ps(kClamp);
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    __m512 sum = _mm512_add_ps(dequantize16(a + i, p.a_signed, az, as), dequantize16(b + i, p.b_signed, bz, bs));
    if (p.relu) sum = _mm512_maskz_max_ps(kAll, _mm512_setzero_ps(), sum);  // NaN and -0 pass, as above
    __m512 q = _mm512_div_ps(sum, cs);
    if (!kBounded) {
      q = _mm512_mask_mov_ps(lo, _mm512_cmp_ps_mask(q, q, _CMP_ORD_Q), q);  // NaN saturates low
      q = _mm512_maskz_max_ps(kAll, _mm512_maskz_min_ps(kAll, q, hi), lo);
    }
    const __m512i r = _mm512_add_epi32(_mm512_maskz_cvtps_epi32(kAll, q), cz);
    // Signed saturation, or (negative values made 0 first) unsigned saturation.
    const __m128i bytes =
        p.c_signed ? _mm512_maskz_cvtsepi32_epi8(kAll, r)
                   : _mm512_maskz_cvtusepi32_epi8(kAll, _mm512_maskz_max_epi32(kAll, r, _mm512_setzero_si512()));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(c + i), bytes);
  }
  for (; i < end; ++i) add1(p, a + i, b + i, c + i);
}
KILN_END_TARGET

}  // namespace

bool supports(cpu::Isa isa) { return isa >= cpu::Isa::kAvx2; }

void add(cpu::Isa isa, const Params& p, const uint8_t* a, const uint8_t* b, uint8_t* c, int64_t begin, int64_t end) {
  const bool in_range = bounded(p);
  if (isa >= cpu::Isa::kAvx512) {
    in_range ? add_avx512<true>(p, a, b, c, begin, end) : add_avx512<false>(p, a, b, c, begin, end);
  } else {
    in_range ? add_avx2<true>(p, a, b, c, begin, end) : add_avx2<false>(p, a, b, c, begin, end);
  }
}

}  // namespace kiln::qlinear_add
