#include "kernels/x86/depthwise_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "kernels/isa.h"
#include "kernels/x86/scratch.h"
#include "kernels/x86/vec.h"

namespace kiln::depthwise_bf16 {
namespace {

constexpr int64_t kMaxSide = 16;

int64_t chunks(int64_t C) { return (C + kChunk - 1) / kChunk; }

// Where channel j of a chunk sits in the chunk's 32 floats: the even channels in the first half, the odd in the second.
int64_t lane(int64_t j) { return j % 2 * (kChunk / 2) + j / 2; }

// The ring of widened input rows a thread keeps for one chunk: KH rows of `width` pixels of kChunk floats, then a
// row of zeros (the rows above and below the input). Slot s holds input row `held[s]` of image `image[s]`.
struct Ring {
  float* data;
  int64_t width, rows;
  int64_t held[kMaxSide], image[kMaxSide];
  float* slot(int64_t s) const { return data + s * width * kChunk; }
  float* zeros() const { return slot(rows); }
  void forget() { std::fill(image, image + rows, -1); }
};

}  // namespace

bool supported() {
  const cpu::CpuFeatures& f = cpu::cpu_features();
  return f.best == cpu::Isa::kAvx512 && f.avx512_bf16;
}

bool takes(int64_t KH, int64_t KW) { return KH >= 1 && KW >= 1 && KH <= kMaxSide && KW <= kMaxSide; }

std::shared_ptr<Weights> pack(const float* w, const float* bias, int64_t C, int64_t KH, int64_t KW) {
  auto out = std::make_shared<Weights>();
  out->C = C;
  out->KH = KH;
  out->KW = KW;
  const int64_t taps = KH * KW, Q = chunks(C);
  out->w.reset(new (std::nothrow) float[static_cast<size_t>(Q * taps * kChunk)]());
  out->bias.reset(new (std::nothrow) float[static_cast<size_t>(Q * kChunk)]());
  if (!out->w || !out->bias) return nullptr;
  for (int64_t c = 0; c < C; ++c) {
    const int64_t q = c / kChunk, at = lane(c % kChunk);
    for (int64_t t = 0; t < taps; ++t) out->w[static_cast<size_t>((q * taps + t) * kChunk + at)] = w[c * taps + t];
    out->bias[static_cast<size_t>(q * kChunk + at)] = bias ? bias[c] : 0.0f;
  }
  return out;
}

KILN_BEGIN_AVX512_BF16
namespace {

// The zero-masking forms with every lane on: GCC 12 warns of the unmasked forms' undefined pass-through operand
// (-Wmaybe-uninitialized) once they are inlined.
constexpr __mmask16 kAll16 = 0xffff;
constexpr __mmask32 kAll32 = 0xffffffffu;

// Pixels [0, W) of one input row (`src`, pixels C values apart) widened into a ring row from column `left`: the
// bfloat16 bits of channel 2j become float32 lane j of the first half (shifted up 16), those of channel 2j + 1
// lane j of the second (the low half masked off). Channels outside `mask` read as zero.
void widen_row(const uint16_t* src, int64_t W, int64_t C, __mmask32 mask, float* dst) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int64_t iw = 0; iw < W; ++iw) {
    const __m512i v = _mm512_maskz_loadu_epi16(mask, src + iw * C);
    _mm512_store_ps(dst + iw * kChunk, _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll16, v, 16)));
    _mm512_store_ps(dst + iw * kChunk + kChunk / 2, _mm512_castsi512_ps(_mm512_and_si512(v, high)));
  }
}

// T output pixels from `ow` of one output row: rows[kh] is the ring row of tap row kh (column 0: the padding's first),
// w the chunk's taps (kKH x kKW when fixed, then the weights stay in registers across the row; KH x KW otherwise).
template <int kKH, int kKW>
struct RowKernel {
  static constexpr bool kFixed = kKH > 0;
  static constexpr int kRegs = kFixed ? 2 * kKH * kKW : 1;

  const float* const* rows;
  int KH, KW;
  const float* w;
  __m512 wr[kRegs];
  __m512 bias_even, bias_odd, lo, hi;
  __m512i order;
  __mmask32 mask;
  bool nan_is_lo;
  int64_t stride, C;

  __m512 weight(int t, int half) const {
    if constexpr (kFixed) return wr[2 * t + half];
    return _mm512_loadu_ps(w + t * kChunk + half * (kChunk / 2));
  }

  // max_ps returns its second operand when either is NaN: max(x, lo) makes a NaN lo, max(lo, x) keeps it.
  __m512 clamp_lo(__m512 x) const {
    return nan_is_lo ? _mm512_maskz_max_ps(kAll16, x, lo) : _mm512_maskz_max_ps(kAll16, lo, x);
  }

  template <int T>
  void pixels(int64_t ow, uint16_t* y) const {
    const int kh_n = kFixed ? kKH : KH, kw_n = kFixed ? kKW : KW;  // constants when fixed: the loops unroll
    __m512 even[T], odd[T];
#pragma GCC unroll 4
    for (int p = 0; p < T; ++p) {
      even[p] = bias_even;
      odd[p] = bias_odd;
    }
#pragma GCC unroll 16
    for (int kh = 0; kh < kh_n; ++kh) {
      const float* r = rows[kh] + ow * stride * kChunk;
#pragma GCC unroll 16
      for (int kw = 0; kw < kw_n; ++kw) {
        const float* rp = r + kw * kChunk;
        const __m512 we = weight(kh * kw_n + kw, 0), wo = weight(kh * kw_n + kw, 1);
#pragma GCC unroll 4
        for (int p = 0; p < T; ++p) {
          even[p] = _mm512_fmadd_ps(we, _mm512_load_ps(rp + p * stride * kChunk), even[p]);
          odd[p] = _mm512_fmadd_ps(wo, _mm512_load_ps(rp + p * stride * kChunk + kChunk / 2), odd[p]);
        }
      }
    }
#pragma GCC unroll 4
    for (int p = 0; p < T; ++p) {
      const __m512 e = _mm512_maskz_min_ps(kAll16, hi, clamp_lo(even[p]));
      const __m512 o = _mm512_maskz_min_ps(kAll16, hi, clamp_lo(odd[p]));
      const __m512i packed = reinterpret_cast<__m512i>(_mm512_maskz_cvtne2ps_pbh(kAll32, o, e));  // even, then odd
      _mm512_mask_storeu_epi16(y + (ow + p) * C, mask, _mm512_maskz_permutexvar_epi16(kAll32, order, packed));
    }
  }

  void row(int64_t OW, uint16_t* y) {
    if constexpr (kFixed) {
#pragma GCC unroll 32
      for (int t = 0; t < kKH * kKW; ++t) {
        wr[2 * t] = _mm512_loadu_ps(w + t * kChunk);
        wr[2 * t + 1] = _mm512_loadu_ps(w + t * kChunk + kChunk / 2);
      }
    }
    int64_t ow = 0;
    for (; ow + 4 <= OW; ow += 4) pixels<4>(ow, y);
    for (; ow < OW; ++ow) pixels<1>(ow, y);
  }
};

template <int kKH, int kKW>
void convolve_rows(const Geometry& g, const uint16_t* x, const Weights& w, const Clamp& clamp, uint16_t* y, int threads,
                   const sgemm::ParallelFor& parallel_for) {
  const int64_t Q = chunks(g.C), taps = w.KH * w.KW, rows = g.N * g.OH;
  // A ring row spans the padding on both sides: column c holds input column c - pad_left.
  const int64_t width = std::max(g.pad_left + g.W, (g.OW - 1) * g.stride_w + w.KW);
  uint16_t order_words[kChunk];
  for (int64_t k = 0; k < kChunk; ++k) order_words[k] = static_cast<uint16_t>(k % 2 ? kChunk / 2 + k / 2 : k / 2);
  const __m512i order = _mm512_loadu_si512(order_words);
  // Chunks [q0, q1) of output rows [r0, r1) (rows of all images counted together), on the calling thread.
  auto run = [&](int64_t q0, int64_t q1, int64_t r0, int64_t r1) {
    Ring ring{x86::thread_scratch<x86::ScratchUser::kDepthwiseBf16>().reserve(
                  static_cast<size_t>((w.KH + 1) * width * kChunk)),
              width,
              w.KH,
              {},
              {}};
    // The padding columns and the zero row: widening writes only the input's columns.
    std::memset(ring.zeros(), 0, static_cast<size_t>(width * kChunk) * sizeof(float));
    for (int64_t s = 0; s < w.KH; ++s) {
      std::memset(ring.slot(s), 0, static_cast<size_t>(g.pad_left * kChunk) * sizeof(float));
      float* right = ring.slot(s) + (g.pad_left + g.W) * kChunk;
      std::memset(right, 0, static_cast<size_t>((width - g.pad_left - g.W) * kChunk) * sizeof(float));
    }
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t c0 = q * kChunk, nc = std::min(kChunk, g.C - c0);
      RowKernel<kKH, kKW> k{};
      const float* tap_rows[kMaxSide];
      k.rows = tap_rows;
      k.KH = static_cast<int>(w.KH);
      k.KW = static_cast<int>(w.KW);
      k.w = w.w.get() + q * taps * kChunk;
      k.bias_even = _mm512_loadu_ps(w.bias.get() + c0);
      k.bias_odd = _mm512_loadu_ps(w.bias.get() + c0 + kChunk / 2);
      k.lo = _mm512_set1_ps(clamp.lo);
      k.hi = _mm512_set1_ps(clamp.hi);
      k.nan_is_lo = clamp.nan_is_lo;
      k.order = order;
      k.mask = nc == kChunk ? ~__mmask32{0} : static_cast<__mmask32>((1u << nc) - 1u);
      k.stride = g.stride_w;
      k.C = g.C;
      ring.forget();
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / g.OH, oh = r % g.OH;
        for (int64_t kh = 0; kh < w.KH; ++kh) {
          const int64_t ih = oh * g.stride_h - g.pad_top + kh;
          if (ih < 0 || ih >= g.H) {
            tap_rows[kh] = ring.zeros();
            continue;
          }
          const int64_t s = ih % w.KH;  // the KH rows of one output row fall in different slots
          if (ring.image[s] != n || ring.held[s] != ih) {
            widen_row(x + ((n * g.H + ih) * g.W) * g.C + c0, g.W, g.C, k.mask, ring.slot(s) + g.pad_left * kChunk);
            ring.image[s] = n;
            ring.held[s] = ih;
          }
          tap_rows[kh] = ring.slot(s);
        }
        k.row(g.OW, y + ((n * g.OH + oh) * g.OW) * g.C + c0);
      }
    }
  };
  // Each thread takes a stretch of rows with all their chunks; with too few rows to share evenly (a 7x7 map), a
  // stretch of chunks with all the rows instead, where each chunk's values are whole cache lines of Y (C a multiple
  // of the chunk), so that no two threads write one line.
  if (rows >= 4 * threads || Q < threads || g.C % kChunk != 0) {
    parallel_for(rows, [&](int64_t r0, int64_t r1) { run(0, Q, r0, r1); });
  } else {
    parallel_for(Q, [&](int64_t q0, int64_t q1) { run(q0, q1, 0, rows); });
  }
}

}  // namespace
KILN_END_TARGET

void convolve(const Geometry& g, const uint16_t* x, const Weights& w, const Clamp& clamp, uint16_t* y, int threads,
              const sgemm::ParallelFor& parallel_for) {
  if (g.N * g.OH * g.OW == 0 || g.C == 0) return;
  if (w.KH == 3 && w.KW == 3) {
    convolve_rows<3, 3>(g, x, w, clamp, y, threads, parallel_for);
  } else {
    convolve_rows<0, 0>(g, x, w, clamp, y, threads, parallel_for);
  }
}

}  // namespace kiln::depthwise_bf16
