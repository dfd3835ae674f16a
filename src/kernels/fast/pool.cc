// Fast pooling for float32. pool.f32: 2-D MaxPool/AveragePool over N*C planes in parallel, in float (the
// reference kernel computes in double). NCHWc: nchwc_pool.blocked pools channel-blocked tensors in place (blocks
// of 8 in AVX2 registers, of 16 in AVX-512 ones, where the ISA allows; the reference kernel unblocks, pools and
// blocks again), and nchwc_global_avgpool.simd sums them in the same registers (pool_simd.inc, once for both), as
// global_avgpool.simd sums plain planes.
#include <emmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"
#include "kernels/x86/vec.h"

namespace kiln::cpu {
namespace {

struct PoolGeometry {
  int64_t H, W, OH, OW, KH, KW, SH, SW, PT, PL, PB, PR, DH, DW;
  // From window_taps(): per output row oh, the window taps inside the input [kh0, kh1) and inside the padded
  // extent [ph0, ph1) at rows[4 oh ...]; the same per output column in cols. Worked out once per call, not per
  // pixel (each takes two divisions).
  std::vector<int64_t> rows, cols;
};

// The window taps k in [lo, hi) whose position begin + k * step lies in [0, limit).
inline void tap_range(int64_t begin, int64_t step, int64_t taps, int64_t limit, int64_t& lo, int64_t& hi) {
  lo = begin >= 0 ? 0 : (-begin + step - 1) / step;
  hi = begin < limit ? std::min(taps, (limit - 1 - begin) / step + 1) : 0;
  if (hi < lo) hi = lo;
}

// The tap ranges of every output row and column of one axis (out positions, stride s, pads p0 and p1 around
// `in`, dilation d, k taps) into ranges[4 o ...].
void axis_taps(int64_t out, int64_t s, int64_t p0, int64_t p1, int64_t in, int64_t d, int64_t k,
               std::vector<int64_t>& ranges) {
  ranges.resize(static_cast<size_t>(4 * out));
  for (int64_t o = 0; o < out; ++o) {
    int64_t* r = ranges.data() + 4 * o;
    tap_range(o * s - p0, d, k, in, r[0], r[1]);
    tap_range(o * s, d, k, in + p0 + p1, r[2], r[3]);
  }
}

void window_taps(PoolGeometry& g) {
  axis_taps(g.OH, g.SH, g.PT, g.PB, g.H, g.DH, g.KH, g.rows);
  axis_taps(g.OW, g.SW, g.PL, g.PR, g.W, g.DW, g.KW, g.cols);
}

// A 2-D pooling's geometry with its window taps worked out.
PoolGeometry pool_geometry(const ConvGeom& g) {
  PoolGeometry pg{g.in[0],        g.in[1],        g.out[0],     g.out[1],
                  g.kernel[0],    g.kernel[1],    g.strides[0], g.strides[1],
                  g.pad_begin[0], g.pad_begin[1], g.pad_end[0], g.pad_end[1],
                  g.dilations[0], g.dilations[1], {},           {}};
  window_taps(pg);
  return pg;
}

// The window of output (oh, ow): the offset of its tap (0, 0) in a plane of `lanes`-wide pixels (before the
// first tap inside the input), its taps inside the input, how many, and the divisor of an average.
struct Window {
  int64_t origin, kh0, kh1, kw0, kw1, count, divisor;
};

inline Window window_at(const PoolGeometry& g, int64_t oh, int64_t ow, int64_t lanes, bool include_pad) {
  const int64_t* r = g.rows.data() + 4 * oh;
  const int64_t* c = g.cols.data() + 4 * ow;
  const int64_t count = (r[1] - r[0]) * (c[1] - c[0]);
  return {((oh * g.SH - g.PT) * g.W + ow * g.SW - g.PL) * lanes, r[0], r[1], c[0], c[1], count,
          include_pad ? (r[3] - r[2]) * (c[3] - c[2]) : count};
}

// One channel block plane [H, W, lanes] -> [OH, OW, lanes]. kLanes is the block size when fixed at compile time
// (0: `lanes` at run time). Each output visits only the taps inside the input (window_at), so the inner loops
// have no bounds checks.
template <int64_t kLanes>
__attribute__((always_inline)) inline void pool_plane(const float* xin, float* yout, const PoolGeometry& g,
                                                      int64_t lanes, bool max, bool include_pad) {
  const int64_t B = kLanes > 0 ? kLanes : lanes;
  float acc_fixed[kLanes > 0 ? kLanes : 1];
  std::vector<float> acc_dynamic(kLanes > 0 ? 0 : static_cast<size_t>(B));
  float* acc = kLanes > 0 ? acc_fixed : acc_dynamic.data();
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const Window w = window_at(g, oh, ow, B, include_pad);
      for (int64_t l = 0; l < B; ++l) acc[l] = max ? -std::numeric_limits<float>::infinity() : 0.0f;
      for (int64_t kh = w.kh0; kh < w.kh1; ++kh) {
        const int64_t row = w.origin + kh * g.DH * g.W * B;  // offsets: only taps inside the input make pointers
        for (int64_t kw = w.kw0; kw < w.kw1; ++kw) {
          const float* v = xin + (row + kw * g.DW * B);
          if (max) {
            for (int64_t l = 0; l < B; ++l) acc[l] = std::max(acc[l], v[l]);
          } else {
            for (int64_t l = 0; l < B; ++l) acc[l] += v[l];
          }
        }
      }
      float* o = yout + (oh * g.OW + ow) * B;
      if (max) {
        for (int64_t l = 0; l < B; ++l) o[l] = w.count > 0 ? acc[l] : 0.0f;
      } else {
        const float inv = w.divisor > 0 ? 1.0f / static_cast<float>(w.divisor) : 0.0f;
        for (int64_t l = 0; l < B; ++l) o[l] = acc[l] * inv;
      }
    }
  }
}

}  // namespace

// The vector kernels, once per block: 8 channels in AVX2 registers, 16 in AVX-512 ones.
#define KILN_WIDTHS_SOURCE "kernels/fast/pool_simd.inc"
#include "kernels/x86/both_widths.inc"

namespace {

bool max_pool(const KernelContext& ctx) {
  return ctx.node().op_type == "MaxPool" || ctx.node().op_type == "NchwcMaxPool";
}

bool nchwc_valid(const KernelContext& ctx, std::vector<int64_t>& nchw, int64_t& B) {
  const Tensor* x = ctx.input(0);
  if (!x) return false;
  auto b = nchwc_block_attr(ctx);
  if (!b.is_ok()) return false;
  B = *b;
  auto d = nchwc_blocked_input(ctx, *x, B);
  if (!d.is_ok()) return false;
  nchw = *d;
  return true;
}

}  // namespace

bool pool_f32_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  ConvGeom g;
  return x && x->dtype() == DType::kFloat32 && x->rank() == 4 && pool_setup(ctx, x->dims(), g).is_ok() &&
         !(max_pool(ctx) && wants_output(ctx, 1));
}

Status pool_f32_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  ConvGeom g;
  KILN_RETURN_IF_ERROR(pool_setup(ctx, x.dims(), g));
  const bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, out_dims(g, g.C)));
  // Each plane as a channel block of one lane: the windows' taps inside the input are worked out once per call
  // (window_taps), so the loops have no bounds checks (the same windows and divisors as the reference kernel).
  const int64_t H = g.in[0], W = g.in[1], OH = g.out[0], OW = g.out[1];
  const PoolGeometry pg = pool_geometry(g);
  const bool max = max_pool(ctx);
  const float* px = x.data<float>();
  float* py = y->data<float>();
  ctx.parallel_for(g.N * g.C, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, OH * OW * g.kernel[0] * g.kernel[1])),
                   [&](int64_t p0, int64_t p1) {
                     for (int64_t plane = p0; plane < p1; ++plane) {
                       pool_plane<1>(px + plane * H * W, py + plane * OH * OW, pg, 1, max, include_pad);
                     }
                   });
  return Status::ok();
}

// ai.kiln NhwcMaxPool on 8-bit and bfloat16 tensors: each output pixel's C channels are contiguous, so its window's
// taps are 16-byte maxima of integer keys that order as the values do.
namespace {

// uint8 compared unsigned; int8 biased by 0x80 to compare unsigned. The lowest key is the empty window's saturated
// -inf.
struct Max8 {
  using T = uint8_t;
  static constexpr int64_t kLanes = 16;
  uint8_t bias;
  __m128i key(__m128i v) const { return _mm_xor_si128(v, _mm_set1_epi8(static_cast<char>(bias))); }
  static __m128i max(__m128i a, __m128i b) { return _mm_max_epu8(a, b); }
  T key(T v) const { return static_cast<T>(v ^ bias); }
  static T max(T a, T b) { return std::max(a, b); }
  T lowest() const { return 0; }
  static __m128i lowest_keys() { return _mm_setzero_si128(); }
};

// bfloat16 as signed 16-bit integers with the magnitude bits of negative values flipped (sign and magnitude to
// two's complement order; the map is its own inverse). The lowest key is -inf's.
struct MaxBf16 {
  using T = uint16_t;
  static constexpr int64_t kLanes = 8;
  static __m128i key(__m128i v) {
    return _mm_xor_si128(v, _mm_and_si128(_mm_srai_epi16(v, 15), _mm_set1_epi16(0x7fff)));
  }
  static __m128i max(__m128i a, __m128i b) { return _mm_max_epi16(a, b); }
  static T key(T v) { return static_cast<T>(v ^ ((v & 0x8000u) ? 0x7fffu : 0u)); }
  static T max(T a, T b) { return static_cast<int16_t>(a) < static_cast<int16_t>(b) ? b : a; }
  static T lowest() { return key(0xff80); }
  static __m128i lowest_keys() { return _mm_set1_epi16(static_cast<int16_t>(lowest())); }
};

template <class K>
void nhwc_maxpool(const KernelContext& ctx, const K& k, const ConvGeom& g, const void* x, void* y) {
  using T = typename K::T;
  const int64_t C = g.C, H = g.in[0], W = g.in[1], OH = g.out[0], OW = g.out[1];
  const PoolGeometry pg = pool_geometry(g);
  const T* px = static_cast<const T*>(x);
  T* py = static_cast<T*>(y);
  // A window wholly inside the input (most of them) reads its taps at these offsets from its origin, four vectors of
  // channels at a time.
  std::vector<int64_t> taps;
  for (int64_t kh = 0; kh < pg.KH; ++kh) {
    for (int64_t kw = 0; kw < pg.KW; ++kw) taps.push_back((kh * pg.DH * W + kw * pg.DW) * C);
  }
  constexpr int64_t L = K::kLanes;
  ctx.parallel_for(g.N * OH, 1, [&](int64_t r0, int64_t r1) {
    const __m128i lowest = K::lowest_keys();
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / OH, oh = r % OH;
      const T* image = px + n * H * W * C;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const Window w = window_at(pg, oh, ow, C, false);
        T* out = py + ((n * OH + oh) * OW + ow) * C;
        int64_t c = 0;
        if (w.kh1 - w.kh0 == pg.KH && w.kw1 - w.kw0 == pg.KW) {
          const T* origin = image + w.origin;
          for (; c + 4 * L <= C; c += 4 * L) {
            __m128i a0 = lowest, a1 = lowest, a2 = lowest, a3 = lowest;
            for (const int64_t t : taps) {
              const auto* v = reinterpret_cast<const __m128i*>(origin + t + c);
              a0 = K::max(a0, k.key(_mm_loadu_si128(v)));
              a1 = K::max(a1, k.key(_mm_loadu_si128(v + 1)));
              a2 = K::max(a2, k.key(_mm_loadu_si128(v + 2)));
              a3 = K::max(a3, k.key(_mm_loadu_si128(v + 3)));
            }
            auto* o = reinterpret_cast<__m128i*>(out + c);
            _mm_storeu_si128(o, k.key(a0));
            _mm_storeu_si128(o + 1, k.key(a1));
            _mm_storeu_si128(o + 2, k.key(a2));
            _mm_storeu_si128(o + 3, k.key(a3));
          }
        }
        for (; c + K::kLanes <= C; c += K::kLanes) {
          __m128i acc = lowest;
          for (int64_t kh = w.kh0; kh < w.kh1; ++kh) {
            const int64_t row = w.origin + kh * pg.DH * W * C;
            for (int64_t kw = w.kw0; kw < w.kw1; ++kw) {
              const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(image + (row + kw * pg.DW * C + c)));
              acc = K::max(acc, k.key(v));
            }
          }
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), k.key(acc));
        }
        for (; c < C; ++c) {
          T acc = k.lowest();
          for (int64_t kh = w.kh0; kh < w.kh1; ++kh) {
            const int64_t row = w.origin + kh * pg.DH * W * C;
            for (int64_t kw = w.kw0; kw < w.kw1; ++kw) acc = K::max(acc, k.key(image[row + kw * pg.DW * C + c]));
          }
          out[c] = k.key(acc);
        }
      }
    }
  });
}

}  // namespace

bool nhwc_maxpool_sse2_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  if (ctx.isa() < Isa::kAvx2 || !x || x->rank() != 4) return false;
  const DType t = x->dtype();
  if (t != DType::kUInt8 && t != DType::kInt8 && t != DType::kBFloat16) return false;
  const auto& d = x->dims();
  ConvGeom g;
  return pool_setup(ctx, {d[0], d[3], d[1], d[2]}, g).is_ok() && g.in.size() == 2;
}

Status nhwc_maxpool_sse2_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const auto& d = x.dims();
  ConvGeom g;
  KILN_RETURN_IF_ERROR(pool_setup(ctx, {d[0], d[3], d[1], d[2]}, g));
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, x.dtype(), {g.N, g.out[0], g.out[1], g.C}));
  if (x.dtype() == DType::kBFloat16) {
    nhwc_maxpool(ctx, MaxBf16{}, g, x.raw_data(), y->raw_data());
  } else {
    nhwc_maxpool(ctx, Max8{static_cast<uint8_t>(x.dtype() == DType::kInt8 ? 0x80 : 0)}, g, x.raw_data(), y->raw_data());
  }
  return Status::ok();
}

bool nchwc_pool_blocked_supports(const KernelContext& ctx) {
  std::vector<int64_t> nchw;
  int64_t B = 0;
  ConvGeom g;
  return nchwc_valid(ctx, nchw, B) && pool_setup(ctx, nchw, g).is_ok();
}

Status nchwc_pool_blocked_kernel(KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const bool max = max_pool(ctx);
  KILN_ASSIGN_OR_RETURN(int64_t B, nchwc_block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, nchwc_blocked_input(ctx, *x, B));
  const int64_t H = nchw[2], W = nchw[3];
  ConvGeom pg;
  KILN_RETURN_IF_ERROR(pool_setup(ctx, nchw, pg));
  const std::vector<int64_t>& ks = pg.kernel;
  const std::vector<int64_t>& strides = pg.strides;
  const std::vector<int64_t>& dil = pg.dilations;
  const std::vector<int64_t> pads{pg.pad_begin[0], pg.pad_begin[1], pg.pad_end[0], pg.pad_end[1]};
  const bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  const int64_t OH = pg.out[0], OW = pg.out[1], CB = x->dims()[1];
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, {nchw[0], CB, OH, OW, B}));
  PoolGeometry g{H,       W,       OH,      OW,      ks[0],  ks[1],  strides[0], strides[1],
                 pads[0], pads[1], pads[2], pads[3], dil[0], dil[1], {},         {}};
  window_taps(g);
  const float* px = x->data<float>();
  float* py = out->data<float>();
  const bool simd = simd::has_block(ctx.isa(), B);
  ctx.parallel_for(nchw[0] * CB, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const float* xin = px + plane * H * W * B;
      float* yout = py + plane * OH * OW * B;
      if (simd && B == 8) {
        max ? avx2::pool_plane<true>(xin, yout, g, include_pad) : avx2::pool_plane<false>(xin, yout, g, include_pad);
      } else if (simd) {
        max ? avx512::pool_plane<true>(xin, yout, g, include_pad)
            : avx512::pool_plane<false>(xin, yout, g, include_pad);
      } else if (B == 8) {
        // A fixed lane count, so that the lane loops vectorize.
        pool_plane<8>(xin, yout, g, 8, max, include_pad);
      } else if (B == 16) {
        pool_plane<16>(xin, yout, g, 16, max, include_pad);
      } else {
        pool_plane<0>(xin, yout, g, B, max, include_pad);
      }
    }
  });
  ctx.set_kernel_detail(!simd ? "pool_plane.scalar" : B == 8 ? "pool_plane8.avx2" : "pool_plane16.avx512");
  return Status::ok();
}

bool nchwc_global_avgpool_simd_supports(const KernelContext& ctx) {
  std::vector<int64_t> nchw;
  int64_t B = 0;
  return nchwc_valid(ctx, nchw, B) && simd::has_block(ctx.isa(), B);
}

// NchwcGlobalAveragePool(X blocked, channels C) -> plain [N, C, 1, 1]
Status nchwc_global_avgpool_simd_kernel(KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  KILN_ASSIGN_OR_RETURN(int64_t B, nchwc_block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, nchwc_blocked_input(ctx, *x, B));
  const int64_t N = nchw[0], C = nchw[1], HW = nchw[2] * nchw[3], CB = x->dims()[1];
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, {N, C, 1, 1}));
  ctx.parallel_for(N * CB, 1, [&](int64_t p0, int64_t p1) {
    std::vector<double> acc(static_cast<size_t>(B));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / CB, cb = p % CB;
      if (B == 8) {
        avx2::sum_plane(x->data<float>() + p * HW * B, HW, acc.data());
      } else {
        avx512::sum_plane(x->data<float>() + p * HW * B, HW, acc.data());
      }
      for (int64_t l = 0; l < B && cb * B + l < C; ++l) {
        out->data<float>()[n * C + cb * B + l] =
            HW > 0 ? static_cast<float>(acc[static_cast<size_t>(l)] / static_cast<double>(HW)) : 0.0f;
      }
    }
  });
  ctx.set_kernel_detail(B == 8 ? "sum_plane8.avx2" : "sum_plane16.avx512");
  return Status::ok();
}

// GlobalAveragePool of a plain float32 X [N, C, spatial...] (where no layout pass made it channel-blocked: the float
// tail of an int8 network): each plane summed in double, as the reference kernel does, planes in parallel.
bool global_avgpool_simd_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  return x && x->dtype() == DType::kFloat32 && x->rank() >= 3 && ctx.isa() >= Isa::kAvx2;
}

Status global_avgpool_simd_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const int64_t planes = x.dims()[0] * x.dims()[1];
  int64_t sp = 1;
  for (size_t d = 2; d < x.dims().size(); ++d) sp *= x.dims()[d];
  std::vector<int64_t> od = x.dims();
  for (size_t d = 2; d < od.size(); ++d) od[d] = 1;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, od));
  const bool avx512 = ctx.isa() >= Isa::kAvx512;
  const float* in = x.data<float>();
  float* out = y->data<float>();
  // Tasks of about 16K values.
  ctx.parallel_for(planes, std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(sp, 1)),
                   [&](int64_t p0, int64_t p1) {
                     for (int64_t p = p0; p < p1; ++p) {
                       const double s = avx512 ? avx512::sum_row(in + p * sp, sp) : avx2::sum_row(in + p * sp, sp);
                       out[p] = sp > 0 ? static_cast<float>(s / static_cast<double>(sp)) : 0.0f;
                     }
                   });
  ctx.set_kernel_detail(avx512 ? "sum_row.avx512" : "sum_row.avx2");
  return Status::ok();
}

// ai.kiln NhwcGlobalAveragePool of a bfloat16 tensor (there are such tensors only where the CPU has AVX-512 and
// bfloat16 instructions): per image, the sums of its pixels' channel vectors, 16 channels to a register, in float.
KILN_BEGIN_AVX512
namespace avx512 {
namespace {

void sum_pixels_bf16(const uint16_t* x, int64_t HW, int64_t C, int64_t c0, int64_t c1, float* y) {
  const float inv = HW > 0 ? 1.0f / static_cast<float>(HW) : 0.0f;
  int64_t c = c0;
  for (; c + 16 <= c1; c += 16) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t p = 0; p < HW; ++p) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + p * C + c));
      acc = _mm512_add_ps(
          acc, _mm512_castsi512_ps(_mm512_maskz_slli_epi32(0xffff, _mm512_maskz_cvtepu16_epi32(0xffff, v), 16)));
    }
    _mm512_storeu_ps(y + c, _mm512_mul_ps(acc, _mm512_set1_ps(inv)));
  }
  for (; c < c1; ++c) {
    float acc = 0.0f;
    for (int64_t p = 0; p < HW; ++p) acc += bfloat16_to_float(x[p * C + c]);
    y[c] = acc * inv;
  }
}

}  // namespace
}  // namespace avx512
KILN_END_TARGET

bool nhwc_global_avgpool_simd_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  return x && x->dtype() == DType::kBFloat16 && x->rank() == 4 && ctx.isa() >= Isa::kAvx512;
}

Status nhwc_global_avgpool_simd_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const int64_t N = x.dims()[0], HW = x.dims()[1] * x.dims()[2], C = x.dims()[3];
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, {N, C, 1, 1}));
  const int64_t chunks = (C + 63) / 64;  // 64 channels to a task
  ctx.parallel_for(N * chunks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / chunks, c0 = t % chunks * 64;
      avx512::sum_pixels_bf16(x.data<uint16_t>() + n * HW * C, HW, C, c0, std::min(C, c0 + 64),
                              y->data<float>() + n * C);
    }
  });
  ctx.set_kernel_detail("sum_pixels_bf16.avx512");
  return Status::ok();
}

}  // namespace kiln::cpu
