// ai.kiln's NCHWc operators, which the optimizer's layout pass (level all) puts between convolutions so that
// activations stay in the channel-blocked layout oneDNN computes in: reorders at the boundaries, pooling on
// blocked tensors. NchwcConv is in nn.cc with the other convolutions. Each kernel here has a reference form:
// unblock, run the plain reference kernel, block again.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/kernel.h"
#include "kernels/x86/sgemm.h"

namespace kiln::cpu {

Status maxpool_kernel(KernelContext& ctx);
Status averagepool_kernel(KernelContext& ctx);

namespace {

StatusOr<int64_t> block_attr(const KernelContext& ctx) {
  const int64_t b = ctx.attr_int("block", 0);
  if (b != 8 && b != 16) return ctx.error("attribute block is " + std::to_string(b) + "; expected 8 or 16");
  return b;
}

// Checks a blocked input [N, CB, H, W, block] and returns its logical [N, C, H, W] (C from `channels`).
StatusOr<std::vector<int64_t>> blocked_input(const KernelContext& ctx, const Tensor& x, int64_t block) {
  const int64_t C = ctx.attr_int("channels", 0);
  if (x.dtype() != DType::kFloat32) return ctx.unsupported_dtype(x.dtype(), "input 0 (X)");
  if (x.rank() != 5 || x.dims()[4] != block || C <= 0 || x.dims()[1] != (C + block - 1) / block) {
    return ctx.error("input 0 has shape " + dims_to_string(x.dims()) + "; expected a channel-blocked tensor [N, " +
                     std::to_string((C + block - 1) / block) + ", H, W, " + std::to_string(block) + "] for " +
                     std::to_string(C) + " channels");
  }
  return std::vector<int64_t>{x.dims()[0], C, x.dims()[2], x.dims()[3]};
}

Tensor unblock(const KernelContext& ctx, const Tensor& x, const std::vector<int64_t>& nchw, int64_t block) {
  Tensor plain = std::move(Tensor::allocate(DType::kFloat32, nchw, Allocator::cpu_uninitialized())).value();
  nchwc_unblock(ctx, x.data<float>(), plain.data<float>(), nchw[0], nchw[1], nchw[2] * nchw[3], block);
  return plain;
}

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

// kN neighbouring outputs of row oh from column ow, blocks of 8 in AVX2 registers: one vector per window tap,
// each output in its own register and in its own tap order, so kN outputs are kN independent chains of
// maxima (or sums). The taps are ow's: with kN > 1 every output's column taps must all lie inside the input.
// _mm256_max_ps(v, acc) is std::max(acc, v) lane by lane, NaN and signed zeros included (it returns acc unless
// v > acc).
template <bool kMax, int kN>
__attribute__((target("avx2"), always_inline)) inline void pool_outputs8(const float* xin, float* yout,
                                                                         const PoolGeometry& g, int64_t oh, int64_t ow,
                                                                         bool include_pad) {
  const Window w = window_at(g, oh, ow, 8, include_pad);
  const int64_t step = g.SW * 8;
  __m256 acc[kN];
#pragma GCC unroll 4
  for (auto& a : acc) a = kMax ? _mm256_set1_ps(-std::numeric_limits<float>::infinity()) : _mm256_setzero_ps();
  for (int64_t kh = w.kh0; kh < w.kh1; ++kh) {
    const int64_t row = w.origin + kh * g.DH * g.W * 8;
    for (int64_t kw = w.kw0; kw < w.kw1; ++kw) {
      const int64_t at = row + kw * g.DW * 8;
#pragma GCC unroll 4
      for (int j = 0; j < kN; ++j) {
        const __m256 v = _mm256_loadu_ps(xin + (at + j * step));
        acc[j] = kMax ? _mm256_max_ps(v, acc[j]) : _mm256_add_ps(acc[j], v);
      }
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < kN; ++j) {
    float* o = yout + (oh * g.OW + ow + j) * 8;
    if (kMax) {
      _mm256_storeu_ps(o, w.count > 0 ? acc[j] : _mm256_setzero_ps());
    } else {
      const int64_t divisor = j == 0 ? w.divisor : window_at(g, oh, ow + j, 8, include_pad).divisor;
      _mm256_storeu_ps(o,
                       _mm256_mul_ps(acc[j], _mm256_set1_ps(divisor > 0 ? 1.0f / static_cast<float>(divisor) : 0.0f)));
    }
  }
}

// pool_plane for blocks of 8 in AVX2 registers: four neighbouring outputs at a time where all their column taps
// lie inside the input (four independent chains instead of one that waits on the previous tap), one at a time
// elsewhere.
template <bool kMax>
__attribute__((target("avx2"))) void pool_plane8_avx2(const float* xin, float* yout, const PoolGeometry& g,
                                                      bool include_pad) {
  auto full_width = [&g](int64_t ow) {
    const int64_t* c = g.cols.data() + 4 * ow;
    return c[0] == 0 && c[1] == g.KW;
  };
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      if (ow + 4 <= g.OW && full_width(ow) && full_width(ow + 1) && full_width(ow + 2) && full_width(ow + 3)) {
        pool_outputs8<kMax, 4>(xin, yout, g, oh, ow, include_pad);
        ow += 3;
      } else {
        pool_outputs8<kMax, 1>(xin, yout, g, oh, ow, include_pad);
      }
    }
  }
}

// Pooling on a blocked tensor: the reference path unblocks and runs the plain reference kernel.
Status nchwc_pool(KernelContext& ctx, bool max) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(int64_t B, block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, blocked_input(ctx, *x, B));
  const auto ks = ctx.attr_ints("kernel_shape");
  if (ks.size() != 2) return ctx.error("kernel_shape must have 2 values");
  auto strides = ctx.attr_ints("strides", {1, 1}), pads = ctx.attr_ints("pads", {0, 0, 0, 0});
  auto dil = ctx.attr_ints("dilations", {1, 1});
  if (strides.size() != 2 || pads.size() != 4 || dil.size() != 2) {
    return ctx.error("strides, dilations and pads must have 2, 2 and 4 values");
  }
  const bool ceil_mode = ctx.attr_int("ceil_mode", 0) != 0, include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  if (ctx.reference_kernels()) {
    Value plain(unblock(ctx, *x, nchw, B));
    KernelContext sub(ctx.node(), 12, {&plain}, 1);
    sub.set_reference_kernels(true);
    KILN_RETURN_IF_ERROR(max ? maxpool_kernel(sub) : averagepool_kernel(sub));
    const Tensor y = sub.take_output(0).tensor();
    KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, nchwc_dims(y.dims(), B)));
    nchwc_block(ctx, y.data<float>(), out->data<float>(), y.dims()[0], y.dims()[1], y.dims()[2] * y.dims()[3], B);
    return Status::ok();
  }
  const int64_t H = nchw[2], W = nchw[3];
  int64_t out_hw[2];
  for (int d = 0; d < 2; ++d) {
    const int64_t in = nchw[static_cast<size_t>(2 + d)],
                  ek = (ks[static_cast<size_t>(d)] - 1) * dil[static_cast<size_t>(d)] + 1;
    const int64_t span = in + pads[static_cast<size_t>(d)] + pads[static_cast<size_t>(d + 2)] - ek;
    const int64_t s = strides[static_cast<size_t>(d)];
    if (span < 0 || s <= 0)
      return ctx.error("the pooling window does not fit the padded input " + dims_to_string(nchw));
    int64_t o = ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
    if (ceil_mode && (o - 1) * s >= in + pads[static_cast<size_t>(d)]) --o;
    out_hw[d] = o;
  }
  const int64_t OH = out_hw[0], OW = out_hw[1], CB = x->dims()[1];
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, {nchw[0], CB, OH, OW, B}));
  PoolGeometry g{H,       W,       OH,      OW,      ks[0],  ks[1],  strides[0], strides[1],
                 pads[0], pads[1], pads[2], pads[3], dil[0], dil[1], {},         {}};
  window_taps(g);
  const float* px = x->data<float>();
  float* py = out->data<float>();
  const bool avx2 = !ctx.reference_kernels() && ctx.isa() >= Isa::kAvx2;
  ctx.parallel_for(nchw[0] * CB, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const float* xin = px + plane * H * W * B;
      float* yout = py + plane * OH * OW * B;
      // AVX2's block of 8 has a fixed lane count, so that the lane loops vectorize.
      if (B == 8 && avx2) {
        if (max) {
          pool_plane8_avx2<true>(xin, yout, g, include_pad);
        } else {
          pool_plane8_avx2<false>(xin, yout, g, include_pad);
        }
      } else if (B == 8) {
        pool_plane<8>(xin, yout, g, 8, max, include_pad);
      } else {
        pool_plane<0>(xin, yout, g, B, max, include_pad);
      }
    }
  });
  return Status::ok();
}

}  // namespace

// ReorderInput(X [N, C, H, W]) -> [N, ceil(C / block), H, W, block]
Status reorderinput_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(int64_t B, block_attr(ctx));
  if (x->dtype() != DType::kFloat32) return ctx.unsupported_dtype(x->dtype(), "input 0 (X)");
  if (x->rank() != 4) return ctx.error("input 0 has shape " + dims_to_string(x->dims()) + "; expected [N, C, H, W]");
  const auto& d = x->dims();
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, nchwc_dims(d, B)));
  nchwc_block(ctx, x->data<float>(), out->data<float>(), d[0], d[1], d[2] * d[3], B);
  return Status::ok();
}

// ReorderOutput(X blocked, channels C) -> [N, C, H, W]
Status reorderoutput_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(int64_t B, block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, blocked_input(ctx, *x, B));
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, nchw));
  nchwc_unblock(ctx, x->data<float>(), out->data<float>(), nchw[0], nchw[1], nchw[2] * nchw[3], B);
  return Status::ok();
}

Status nchwcmaxpool_kernel(KernelContext& ctx) { return nchwc_pool(ctx, true); }
Status nchwcaveragepool_kernel(KernelContext& ctx) { return nchwc_pool(ctx, false); }

// NchwcGlobalAveragePool(X blocked, channels C) -> plain [N, C, 1, 1]
namespace {

// acc[l] = the sum over i < HW of in[i * 8 + l], in double (as the generic loop), four lanes per AVX register.
__attribute__((target("avx2"))) void sum_plane8_avx2(const float* in, int64_t HW, double* acc) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  for (int64_t i = 0; i < HW; ++i) {
    const __m256 v = _mm256_loadu_ps(in + i * 8);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  _mm256_storeu_pd(acc, lo);
  _mm256_storeu_pd(acc + 4, hi);
}

}  // namespace

Status nchwcglobalaveragepool_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(int64_t B, block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, blocked_input(ctx, *x, B));
  const int64_t N = nchw[0], C = nchw[1], HW = nchw[2] * nchw[3], CB = x->dims()[1];
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, {N, C, 1, 1}));
  const bool avx2 = !ctx.reference_kernels() && ctx.isa() >= Isa::kAvx2;
  ctx.parallel_for(N * CB, 1, [&](int64_t p0, int64_t p1) {
    std::vector<double> acc(static_cast<size_t>(B));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / CB, cb = p % CB;
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* in = x->data<float>() + p * HW * B;
      if (B == 8 && avx2) {
        sum_plane8_avx2(in, HW, acc.data());
      } else {
        for (int64_t i = 0; i < HW; ++i)
          for (int64_t l = 0; l < B; ++l) acc[static_cast<size_t>(l)] += in[i * B + l];
      }
      for (int64_t l = 0; l < B && cb * B + l < C; ++l) {
        out->data<float>()[n * C + cb * B + l] =
            HW > 0 ? static_cast<float>(acc[static_cast<size_t>(l)] / static_cast<double>(HW)) : 0.0f;
      }
    }
  });
  return Status::ok();
}

}  // namespace kiln::cpu
