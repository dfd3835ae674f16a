// Float vectors for kernels written once for several instruction sets: Vec8 (AVX2 + FMA, 8 lanes) and Vec16
// (AVX-512, 16 lanes) offer the same static operations on their register type R, so that a kernel templated on
// the vector class compiles to either. Each class is defined under its own target pragma, as is the code that
// instantiates a kernel with it (a region between KILN_BEGIN_AVX2 / KILN_BEGIN_AVX512 and KILN_END_TARGET), so
// the translation unit itself needs no -m flags: nothing outside those regions (library templates the compiler
// might share with other files) is compiled for a CPU the program does not check for first.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/isa.h"

#if defined(__clang__)
// clang has no GCC target pragmas: the same regions as a target attribute on every function in them (the fuzz build).
// clang-format off
#define KILN_BEGIN_AVX2 _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define KILN_BEGIN_AVX512 _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512dq,avx512vl,avx2,fma\"))), apply_to = function)")
#define KILN_BEGIN_AVX512_BF16 _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16\"))), apply_to = function)")
// clang-format on
#define KILN_END_TARGET _Pragma("clang attribute pop")
#else
#define KILN_BEGIN_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define KILN_BEGIN_AVX512 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512dq,avx512vl,avx2,fma\")")
// AVX-512 with the AVX512-BF16 instructions (vcvtne2ps2bf16, vdpbf16ps): code that runs only where has_bf16().
#define KILN_BEGIN_AVX512_BF16 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx512bf16\")")
#define KILN_END_TARGET _Pragma("GCC pop_options")
#endif

namespace kiln::simd {

// Whether a channel block of `block` lanes has a vector class with `isa`: 8 lanes (Vec8) with AVX2, 16 (Vec16)
// with AVX-512.
inline bool has_block(cpu::Isa isa, int64_t block) {
  return (block == 8 && isa >= cpu::Isa::kAvx2) || (block == 16 && isa >= cpu::Isa::kAvx512);
}

KILN_BEGIN_AVX2
struct Vec8 {
  using R = __m256;
  using D = __m256d;  // half of R's lanes in double
  static constexpr int64_t kLanes = 8;
  static inline __attribute__((always_inline)) D dzero() { return _mm256_setzero_pd(); }
  static inline __attribute__((always_inline)) D dadd(D a, D b) { return _mm256_add_pd(a, b); }
  // v's lower and upper halves in double.
  static inline __attribute__((always_inline)) void widen(R v, D (&out)[2]) {
    out[0] = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    out[1] = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  }
  static inline __attribute__((always_inline)) void dstore(double* p, D d) { _mm256_storeu_pd(p, d); }
  // The lanes of d summed in pairs.
  static inline double dsum(D d) {
    alignas(32) double l[4];
    _mm256_store_pd(l, d);
    return (l[0] + l[1]) + (l[2] + l[3]);
  }
  static inline __attribute__((always_inline)) R zero() { return _mm256_setzero_ps(); }
  static inline __attribute__((always_inline)) R set1(float v) { return _mm256_set1_ps(v); }
  static inline __attribute__((always_inline)) R load(const float* p) { return _mm256_loadu_ps(p); }
  static inline __attribute__((always_inline)) void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static inline __attribute__((always_inline)) R add(R a, R b) { return _mm256_add_ps(a, b); }
  static inline __attribute__((always_inline)) R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static inline __attribute__((always_inline)) R min(R a, R b) { return _mm256_min_ps(a, b); }
  static inline __attribute__((always_inline)) R max(R a, R b) { return _mm256_max_ps(a, b); }
  // a * b + c and c - a * b, each rounded once.
  static inline __attribute__((always_inline)) R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static inline __attribute__((always_inline)) R fnmadd(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
  // a * b - c, rounded once.
  static inline __attribute__((always_inline)) R fmsub(R a, R b, R c) { return _mm256_fmsub_ps(a, b, c); }
  static inline __attribute__((always_inline)) R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static inline __attribute__((always_inline)) R round(R a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for whole-number n in [-126, 127].
  static inline __attribute__((always_inline)) R pow2(R n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  // About 1/a (relative error up to 1.5 * 2^-12).
  static inline __attribute__((always_inline)) R rcp(R a) { return _mm256_rcp_ps(a); }
  static inline __attribute__((always_inline)) R abs(R a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  // |magnitude| with the sign of `sign`.
  static inline __attribute__((always_inline)) R copysign(R magnitude, R sign) {
    const R s = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(s, magnitude), _mm256_and_ps(s, sign));
  }
};
KILN_END_TARGET

KILN_BEGIN_AVX512
struct Vec16 {
  using R = __m512;
  using D = __m512d;
  static constexpr int64_t kLanes = 16;
  static inline __attribute__((always_inline)) D dzero() { return _mm512_setzero_pd(); }
  static inline __attribute__((always_inline)) D dadd(D a, D b) { return _mm512_add_pd(a, b); }
  static inline __attribute__((always_inline)) void widen(R v, D (&out)[2]) {
    out[0] = _mm512_mask_cvtps_pd(_mm512_setzero_pd(), 0xff, _mm512_extractf32x8_ps(v, 0));
    out[1] = _mm512_mask_cvtps_pd(_mm512_setzero_pd(), 0xff, _mm512_extractf32x8_ps(v, 1));
  }
  static inline __attribute__((always_inline)) void dstore(double* p, D d) { _mm512_storeu_pd(p, d); }
  static inline double dsum(D d) {
    alignas(64) double l[8];
    _mm512_store_pd(l, d);
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  }
  static inline __attribute__((always_inline)) R zero() { return _mm512_setzero_ps(); }
  static inline __attribute__((always_inline)) R set1(float v) { return _mm512_set1_ps(v); }
  static inline __attribute__((always_inline)) R load(const float* p) { return _mm512_loadu_ps(p); }
  static inline __attribute__((always_inline)) void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static inline __attribute__((always_inline)) R add(R a, R b) { return _mm512_add_ps(a, b); }
  static inline __attribute__((always_inline)) R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  // Here and below, the masked forms with a full mask: the unmasked intrinsics pass an undefined vector that GCC 12
  // reports as maybe used uninitialized.
  static inline __attribute__((always_inline)) R min(R a, R b) { return _mm512_mask_min_ps(a, 0xffff, a, b); }
  static inline __attribute__((always_inline)) R max(R a, R b) { return _mm512_mask_max_ps(a, 0xffff, a, b); }
  static inline __attribute__((always_inline)) R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static inline __attribute__((always_inline)) R fnmadd(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  static inline __attribute__((always_inline)) R fmsub(R a, R b, R c) { return _mm512_fmsub_ps(a, b, c); }
  static inline __attribute__((always_inline)) R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static inline __attribute__((always_inline)) R round(R a) {
    return _mm512_mask_roundscale_ps(a, 0xffff, a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static inline __attribute__((always_inline)) R pow2(R n) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i e = _mm512_add_epi32(_mm512_mask_cvtps_epi32(zero, 0xffff, n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_mask_slli_epi32(zero, 0xffff, e, 23));
  }
  // About 1/a (relative error up to 2^-14).
  static inline __attribute__((always_inline)) R rcp(R a) { return _mm512_mask_rcp14_ps(a, 0xffff, a); }
  static inline __attribute__((always_inline)) R abs(R a) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
  }
  static inline __attribute__((always_inline)) R copysign(R magnitude, R sign) {
    const __m512i m = _mm512_castps_si512(magnitude), g = _mm512_castps_si512(sign);
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(m, _mm512_set1_epi32(0x7fffffff)),
                                               _mm512_and_si512(g, _mm512_set1_epi32(static_cast<int>(0x80000000u)))));
  }
};
KILN_END_TARGET

}  // namespace kiln::simd
