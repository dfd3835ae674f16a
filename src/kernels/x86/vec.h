// Float vectors for kernels written once for several instruction sets: Vec8 (AVX2 + FMA, 8 lanes) and Vec16
// (AVX-512, 16 lanes) offer the same static operations on their register type R, so that a kernel templated on
// the vector class compiles to either. Each class is defined under its own target pragma, as is the code that
// instantiates a kernel with it (a region between KILN_BEGIN_AVX2 / KILN_BEGIN_AVX512 and KILN_END_TARGET), so
// the translation unit itself needs no -m flags: nothing outside those regions (library templates the compiler
// might share with other files) is compiled for a CPU the program does not check for first.
#pragma once

#include <immintrin.h>

#include <cstdint>

#define KILN_BEGIN_AVX2 _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define KILN_BEGIN_AVX512 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512dq,avx512vl,avx2,fma\")")
#define KILN_END_TARGET _Pragma("GCC pop_options")

namespace kiln::simd {

KILN_BEGIN_AVX2
struct Vec8 {
  using R = __m256;
  static constexpr int64_t kLanes = 8;
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
};
KILN_END_TARGET

KILN_BEGIN_AVX512
struct Vec16 {
  using R = __m512;
  static constexpr int64_t kLanes = 16;
  static inline __attribute__((always_inline)) R zero() { return _mm512_setzero_ps(); }
  static inline __attribute__((always_inline)) R set1(float v) { return _mm512_set1_ps(v); }
  static inline __attribute__((always_inline)) R load(const float* p) { return _mm512_loadu_ps(p); }
  static inline __attribute__((always_inline)) void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static inline __attribute__((always_inline)) R add(R a, R b) { return _mm512_add_ps(a, b); }
  static inline __attribute__((always_inline)) R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  // Written with a full mask and `a` as the pass-through: _mm512_min_ps / _mm512_max_ps pass an undefined
  // vector that GCC 12 reports as maybe used uninitialized.
  static inline __attribute__((always_inline)) R min(R a, R b) { return _mm512_mask_min_ps(a, 0xffff, a, b); }
  static inline __attribute__((always_inline)) R max(R a, R b) { return _mm512_mask_max_ps(a, 0xffff, a, b); }
  static inline __attribute__((always_inline)) R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static inline __attribute__((always_inline)) R fnmadd(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
};
KILN_END_TARGET

}  // namespace kiln::simd
