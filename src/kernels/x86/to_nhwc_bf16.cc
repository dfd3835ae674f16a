#include "kernels/x86/to_nhwc_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <array>

#include "kernels/x86/vec.h"
#include "kiln/core/dtype.h"

namespace kiln::to_nhwc_bf16 {
namespace {

constexpr int64_t kStep = 32;     // pixels per vector step
constexpr int64_t kChunk = 4096;  // pixels per task

// The word permutes. For output vector j of a 32-pixel step of three channels (96 words, pixel-major): word i is
// channel g % 3 of pixel g / 3, g = 32 j + i. ab: its index into (channel 0's 32 words, channel 1's 32 words); c: into
// channel 2's.
struct Interleave3 {
  std::array<std::array<uint16_t, 32>, 3> ab{}, c{};
  std::array<uint32_t, 3> c_mask{};
  std::array<uint16_t, 32> even{};  // 0, 2, ..., 62: the low words of two vectors of 32-bit lanes
  Interleave3() {
    for (int i = 0; i < 32; ++i) even[static_cast<size_t>(i)] = static_cast<uint16_t>(2 * i);
    for (int j = 0; j < 3; ++j) {
      for (int i = 0; i < 32; ++i) {
        const int g = 32 * j + i, pixel = g / 3, channel = g % 3;
        ab[j][i] = static_cast<uint16_t>(channel == 1 ? 32 + pixel : pixel);
        c[j][i] = static_cast<uint16_t>(pixel);
        if (channel == 2) c_mask[j] |= 1u << i;
      }
    }
  }
};

const Interleave3& interleave3() {
  static const Interleave3 table;
  return table;
}

}  // namespace

KILN_BEGIN_AVX512
namespace {

// 16 floats to bfloat16 in the low words of 32-bit lanes: round to nearest even, NaN quiet.
inline __m512i round16(__m512 v) {
  const __m512i x = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_maskz_srli_epi32(0xffff, x, 16), _mm512_set1_epi32(1));
  const __m512i r =
      _mm512_maskz_srli_epi32(0xffff, _mm512_add_epi32(x, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_mov_epi32(r, nan,
                               _mm512_or_si512(_mm512_maskz_srli_epi32(0xffff, x, 16), _mm512_set1_epi32(0x40)));
}

// 32 floats at p to 32 bfloat16 words: the low words of both halves' lanes (`even`: 0, 2, ..., 62).
inline __m512i round32(const float* p, __m512i even) {
  return _mm512_permutex2var_epi16(round16(_mm512_loadu_ps(p)), even, round16(_mm512_loadu_ps(p + 16)));
}

// Pixels [p0, p1) of one image.
void pixels(const float* x, int64_t C, int64_t HW, int64_t p0, int64_t p1, uint16_t* y) {
  int64_t p = p0;
  const __m512i even = _mm512_loadu_si512(interleave3().even.data());
  if (C == 1) {
    for (; p + kStep <= p1; p += kStep) _mm512_storeu_si512(y + p, round32(x + p, even));
  } else {
    const Interleave3& t = interleave3();
    __m512i ab[3], ci[3];
    for (int j = 0; j < 3; ++j) {
      ab[j] = _mm512_loadu_si512(t.ab[static_cast<size_t>(j)].data());
      ci[j] = _mm512_loadu_si512(t.c[static_cast<size_t>(j)].data());
    }
    for (; p + kStep <= p1; p += kStep) {
      const __m512i a = round32(x + p, even), b = round32(x + HW + p, even), c = round32(x + 2 * HW + p, even);
      for (int j = 0; j < 3; ++j) {
        __m512i out = _mm512_permutex2var_epi16(a, ab[j], b);
        out = _mm512_mask_permutexvar_epi16(out, t.c_mask[static_cast<size_t>(j)], ci[j], c);
        _mm512_storeu_si512(y + 3 * p + 32 * j, out);
      }
    }
  }
  for (; p < p1; ++p) {
    for (int64_t c = 0; c < C; ++c) y[p * C + c] = float_to_bfloat16(x[c * HW + p]);
  }
}

}  // namespace
KILN_END_TARGET

bool supports(cpu::Isa isa, int64_t C) { return isa >= cpu::Isa::kAvx512 && (C == 1 || C == 3); }

void convert(const float* x, int64_t N, int64_t C, int64_t HW, uint16_t* y, const sgemm::ParallelFor& parallel_for) {
  const int64_t chunks = (HW + kChunk - 1) / kChunk;
  if (N <= 0 || chunks == 0) return;
  parallel_for(N * chunks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / chunks, p0 = t % chunks * kChunk, p1 = std::min(HW, p0 + kChunk);
      pixels(x + n * C * HW, C, HW, p0, p1, y + n * HW * C);
    }
  });
}

}  // namespace kiln::to_nhwc_bf16
