// Fast quantized convolutions and matrix products on oneDNN's int8 primitives: QLinearConv (qlinearconv.dnnl) and its
// channels-last ai.kiln NhwcQLinearConv (nhwcqlinearconv.dnnl, with or without a fused residual sum),
// QLinearMatMul (qlinearmatmul.dnnl) and MatMulInteger (matmulinteger.dnnl); per-tensor QuantizeLinear and
// DequantizeLinear (quantizelinear.sse2, dequantizelinear.sse2) and ai.kiln QLinearAdd (qlinearadd.simd), bit-equal
// to the reference kernels. They take the cases oneDNN computes exactly as ONNX does (int8 weights with zero points
// 0, per-tensor or per-output-channel weight scales, scalar activation scales and zero points, an int32 bias);
// anything else runs the reference kernel. The fused residual sum rounds once where the reference rounds twice: within
// one step (fused_sum_supported). tests/unit/runtime/int8_test.cc checks them against it.
#include <emmintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/capabilities.h"
#include "kernels/dnnl/dnnl_kernels.h"
#include "kernels/isa.h"
#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"
#include "kernels/x86/qlinear_add.h"

namespace kiln::cpu {
namespace {

bool is_8bit(const Tensor* t) { return t && (t->dtype() == DType::kUInt8 || t->dtype() == DType::kInt8); }

bool is_scalar_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32 && t->num_elements() == 1; }

// Zero points oneDNN takes: a scalar of `dtype`.
bool scalar_zero_point(const Tensor* t, DType dtype) { return t && t->dtype() == dtype && t->num_elements() == 1; }

int32_t zero_point_of(const Tensor& t) {
  return t.dtype() == DType::kUInt8 ? static_cast<int32_t>(t.data<uint8_t>()[0])
                                    : static_cast<int32_t>(t.data<int8_t>()[0]);
}

// Int8 zero points of weights that are all 0 (or none), one or `channels` of them.
bool zero_weight_zero_points(const Tensor* w_zp, int64_t channels) {
  if (!w_zp) return true;
  if (w_zp->dtype() != DType::kInt8 || (w_zp->num_elements() != 1 && w_zp->num_elements() != channels)) return false;
  for (int64_t i = 0; i < w_zp->num_elements(); ++i) {
    if (w_zp->data<int8_t>()[i] != 0) return false;
  }
  return true;
}

// The weights' zero points are all 0 and their scales are float32, one per tensor or one per output channel.
bool symmetric_weights(const Tensor* w, const Tensor* w_scale, const Tensor* w_zp, int64_t channels) {
  if (!w || w->dtype() != DType::kInt8 || !w_scale || w_scale->dtype() != DType::kFloat32) return false;
  if (w_scale->num_elements() != 1 && w_scale->num_elements() != channels) return false;
  return zero_weight_zero_points(w_zp, channels);
}

// Whether oneDNN's int8 product is exact for this source type and these weights: with VNNI (or AMX) it sums
// u8/s8 x s8 products in int32; without (AVX2, AVX-512 before Cascade Lake) vpmaddubsw adds pairs of u8 x s8
// products in saturating int16, exact only while |w| <= 64 (the "reduce_range" 7-bit weights ONNX Runtime
// quantizes for such CPUs: 2 * 255 * 64 < 32768), and an int8 source is handled by halving the weights (measured:
// 17% of the outputs one step off), so only uint8 sources qualify.
bool int8_exact(const KernelContext& ctx, DType source, const Tensor& w) {
  const CpuFeatures& f = cpu_features();
  if (ctx.isa() == Isa::kAvx512 && (f.avx512_vnni || f.amx_int8)) return true;
  if (source != DType::kUInt8) return false;
  const int8_t* p = w.data<int8_t>();
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    if (p[i] < -64 || p[i] > 64) return false;
  }
  return true;
}

// x_scale * w_scale[m] / y_scale, in double as the reference kernel computes it, rounded once to float.
std::vector<float> output_scales(const Tensor& x_scale, const Tensor& w_scale, const Tensor& y_scale) {
  const double xs = x_scale.data<float>()[0], ys = y_scale.data<float>()[0];
  std::vector<float> s(static_cast<size_t>(w_scale.num_elements()));
  for (size_t m = 0; m < s.size(); ++m) s[m] = static_cast<float>(xs * w_scale.data<float>()[m] / ys);
  return s;
}

}  // namespace

// ---- QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B?

namespace {

// The logical [N, C, H, W...] dims of X: as stored, or from [N, H, W, C] when channels-last.
std::vector<int64_t> logical_dims(const Tensor& x, bool channels_last) {
  const auto& d = x.dims();
  return channels_last ? std::vector<int64_t>{d[0], d[3], d[1], d[2]} : d;
}

// NhwcQLinearConv with Z (inputs 9-13: Z, Z_scale, Z_zero_point, C_scale, C_zero_point; attribute activation, ""
// or "Relu"): the QLinearAdd of its result and Z, fused by layout_nhwc_int8. oneDNN computes it with one rounding:
// the convolution's value in C's units, clipped to the range its own 8-bit output (y_scale, y_zero_point) can hold,
// plus Z's, Relu, rounded. The reference rounds the convolution's output to y_scale's grid first, which moves the
// value before the final rounding by at most y_scale / 2 / C_scale steps of C, under 0.95 where y_scale < 1.9 C_scale
// (fused_residual_sum_fits; float arithmetic adds about 1e-4): two values less than one step apart round to integers at
// most one apart, so the results differ by at most one step (tests/unit/runtime/int8_test.cc). Z of Y's shape and C's
// dtype (oneDNN adds it in the output buffer).
bool fused_sum_supported(const KernelContext& ctx, const ConvGeom& g) {
  const Tensor* z = ctx.input(9);
  const Tensor* c_zp = ctx.input(13);
  if (!is_8bit(z) || !is_8bit(c_zp) || z->dtype() != c_zp->dtype() || !is_scalar_f32(ctx.input(10)) ||
      !is_scalar_f32(ctx.input(12)) || !scalar_zero_point(ctx.input(11), z->dtype()) ||
      !scalar_zero_point(c_zp, c_zp->dtype())) {
    return false;
  }
  const std::vector<int64_t> od = out_dims(g, g.M);
  if (z->dims() != std::vector<int64_t>{od[0], od[2], od[3], od[1]}) return false;
  const std::string act = ctx.attr_string("activation", "");
  const float ys = ctx.input(6)->data<float>()[0], cs = ctx.input(12)->data<float>()[0];
  return (act.empty() || act == "Relu") && fused_residual_sum_fits(ys, cs) &&
         std::isfinite(ctx.input(10)->data<float>()[0]);
}

bool qconv_supports(const KernelContext& ctx, bool channels_last) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(3);
  const Tensor* y_zp = ctx.input(7);
  const Tensor* b = ctx.input(8);
  if (ctx.isa() < Isa::kAvx2 || !is_8bit(x) || !is_8bit(y_zp) || !w || x->rank() < 3 || x->rank() > 5 ||
      w->rank() != x->rank() || x->num_elements() == 0 || w->num_elements() == 0 || (channels_last && x->rank() != 4)) {
    return false;
  }
  const int64_t M = w->dims()[0];
  if (!is_scalar_f32(ctx.input(1)) || !is_scalar_f32(ctx.input(6)) || !scalar_zero_point(ctx.input(2), x->dtype()) ||
      !scalar_zero_point(y_zp, y_zp->dtype()) || !symmetric_weights(w, ctx.input(4), ctx.input(5), M)) {
    return false;
  }
  if (b && (b->dtype() != DType::kInt32 || b->num_elements() != M)) return false;
  if (!int8_exact(ctx, x->dtype(), *w)) return false;
  ConvGeom g;
  if (!conv_setup(ctx, logical_dims(*x, channels_last), *w, g).is_ok()) return false;
  return !channels_last || !ctx.input(9) || fused_sum_supported(ctx, g);
}

Status qconv_kernel(KernelContext& ctx, bool channels_last,
                    dnnl_kernels::QConvParams::Impl impl_choice = dnnl_kernels::QConvParams::Impl::kFirst) {
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(3);
  const Tensor& y_zp = *ctx.input(7);
  ConvGeom g;
  KILN_RETURN_IF_ERROR(conv_setup(ctx, logical_dims(x, channels_last), w, g));
  dnnl_kernels::QConvParams p;
  p.conv = dnnl_kernels::ConvParams{g.group,          g.strides, g.dilations, g.pad_begin, g.pad_end,
                                    out_dims(g, g.M), {},        0,           0,           false};
  p.x_zero_point = zero_point_of(*ctx.input(2));
  p.y_zero_point = zero_point_of(y_zp);
  p.x_signed = x.dtype() == DType::kInt8;
  p.y_signed = y_zp.dtype() == DType::kInt8;
  p.channels_last = channels_last;
  p.impl = impl_choice;
  const std::vector<int64_t>& od = p.conv.out_dims;
  const std::vector<int64_t> y_dims = channels_last ? std::vector<int64_t>{od[0], od[2], od[3], od[1]} : od;
  const Tensor* z = channels_last ? ctx.input(9) : nullptr;
  // The output's scale: y_scale, or with a fused sum C_scale.
  p.scales = output_scales(*ctx.input(1), *ctx.input(4), *ctx.input(z ? 12 : 6));
  DType y_type = y_zp.dtype();
  if (z) {
    // The fused QLinearAdd (fused_sum_supported): zero point of C, the clip to Y's own range in C's units.
    const Tensor& c_zp = *ctx.input(13);
    const double ys = ctx.input(6)->data<float>()[0], cs = ctx.input(12)->data<float>()[0];
    const double y_lo = p.y_signed ? -128 : 0, y_hi = p.y_signed ? 127 : 255;
    p.sum = true;
    p.relu = !ctx.attr_string("activation", "").empty();
    p.clip_lo = static_cast<float>((y_lo - p.y_zero_point) * ys / cs);
    p.clip_hi = static_cast<float>((y_hi - p.y_zero_point) * ys / cs);
    p.sum_scale = static_cast<float>(static_cast<double>(ctx.input(10)->data<float>()[0]) / cs);
    p.sum_zero_point = zero_point_of(*ctx.input(11));
    p.y_zero_point = zero_point_of(c_zp);
    p.y_signed = c_zp.dtype() == DType::kInt8;
    y_type = c_zp.dtype();
  }
  KILN_ASSIGN_OR_RETURN(Tensor * y, z ? ctx.allocate_output_reusing(0, 9, y_type, y_dims)
                                      : ctx.allocate_output_uninitialized(0, y_type, y_dims));
  std::string impl;
  Status st = dnnl_kernels::qconv_int8(x, w, ctx.input(8), p, ctx.cache(), ctx.input_is_constant(3), *y,
                                       ctx.num_threads(), &impl, ctx.shared_cache(), z ? z->raw_data() : nullptr);
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  return Status::ok();
}

}  // namespace

bool qlinearconv_dnnl_supports(const KernelContext& ctx) { return qconv_supports(ctx, false); }
Status qlinearconv_dnnl_kernel(KernelContext& ctx) { return qconv_kernel(ctx, false); }

// ---- ai.kiln NhwcQLinearConv: QLinearConv's inputs, X and Y channels-last (layout_nhwc_int8).

bool nhwcqlinearconv_dnnl_supports(const KernelContext& ctx) { return qconv_supports(ctx, true); }
Status nhwcqlinearconv_dnnl_kernel(KernelContext& ctx) { return qconv_kernel(ctx, true); }

// The same on oneDNN's direct JIT int8 convolution, or its 1x1 one for a 1x1 kernel: tactics beside oneDNN's first
// choice, which the tuner times (AVX-512 CPUs: those implementations need it).
bool nhwcqlinearconv_dnnl_jit_supports(const KernelContext& ctx) {
  return ctx.isa() >= Isa::kAvx512 && qconv_supports(ctx, true);
}
Status nhwcqlinearconv_dnnl_jit_kernel(KernelContext& ctx) {
  return qconv_kernel(ctx, true, dnnl_kernels::QConvParams::Impl::kJit);
}
bool nhwcqlinearconv_dnnl_jit1x1_supports(const KernelContext& ctx) {
  const Tensor* w = ctx.input(3);
  return nhwcqlinearconv_dnnl_jit_supports(ctx) && w->dims()[2] == 1 && w->dims()[3] == 1;
}
Status nhwcqlinearconv_dnnl_jit1x1_kernel(KernelContext& ctx) {
  return qconv_kernel(ctx, true, dnnl_kernels::QConvParams::Impl::kJit1x1);
}

// ---- QLinearMatMul: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. A of rank >= 2
// (its leading dims fold into the rows), B 2-D.

namespace {

// A's rows and the output's dims for a product of A [..., M, K] by 2-D B [K, N]; false when the shapes do not fit.
bool product_dims(const Tensor* a, const Tensor* b, int64_t& rows, int64_t& K, int64_t& N, std::vector<int64_t>& od) {
  if (!a || !b || a->rank() < 2 || b->rank() != 2 || a->dims().back() != b->dims()[0]) return false;
  K = b->dims()[0];
  N = b->dims()[1];
  rows = product(a->dims(), 0, a->rank() - 1);
  od.assign(a->dims().begin(), a->dims().end() - 1);
  od.push_back(N);
  return true;
}

}  // namespace

bool qlinearmatmul_dnnl_supports(const KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(3);
  const Tensor* y_zp = ctx.input(7);
  int64_t rows, K, N;
  std::vector<int64_t> od;
  if (ctx.isa() < Isa::kAvx2 || !is_8bit(a) || !is_8bit(y_zp) || !product_dims(a, b, rows, K, N, od)) return false;
  return is_scalar_f32(ctx.input(1)) && is_scalar_f32(ctx.input(6)) && scalar_zero_point(ctx.input(2), a->dtype()) &&
         scalar_zero_point(y_zp, y_zp->dtype()) && symmetric_weights(b, ctx.input(4), ctx.input(5), N) &&
         int8_exact(ctx, a->dtype(), *b);
}

Status qlinearmatmul_dnnl_kernel(KernelContext& ctx) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(3);
  const Tensor& y_zp = *ctx.input(7);
  dnnl_kernels::QMatMulParams p;
  std::vector<int64_t> od;
  if (!product_dims(&a, &b, p.M, p.K, p.N, od)) return ctx.error("A and B do not fit a matrix product");
  p.a_type = a.dtype();
  p.y_type = y_zp.dtype();
  p.a_zero_point = zero_point_of(*ctx.input(2));
  p.y_zero_point = zero_point_of(y_zp);
  p.scales = output_scales(*ctx.input(1), *ctx.input(4), *ctx.input(6));
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, y_zp.dtype(), od));
  std::string impl;
  Status st = dnnl_kernels::qmatmul_int8(a.raw_data(), b.raw_data(), y->raw_data(), p, ctx.cache(),
                                         ctx.input_is_constant(3), ctx.num_threads(), &impl, ctx.shared_cache());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  return Status::ok();
}

// ---- MatMulInteger: A, B, a_zero_point?, b_zero_point? -> int32. A of rank >= 2, B 2-D int8 with zero points 0
// (symmetric weights, as kiln quantize --dynamic writes them), a scalar zero point of A.

bool matmulinteger_dnnl_supports(const KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  const Tensor* a_zp = ctx.input(2);
  int64_t rows, K, N;
  std::vector<int64_t> od;
  if (ctx.isa() < Isa::kAvx2 || !is_8bit(a) || !b || b->dtype() != DType::kInt8 ||
      !product_dims(a, b, rows, K, N, od)) {
    return false;
  }
  if ((a_zp && !scalar_zero_point(a_zp, a->dtype())) || !int8_exact(ctx, a->dtype(), *b)) return false;
  return zero_weight_zero_points(ctx.input(3), N);
}

Status matmulinteger_dnnl_kernel(KernelContext& ctx) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  dnnl_kernels::QMatMulParams p;
  std::vector<int64_t> od;
  if (!product_dims(&a, &b, p.M, p.K, p.N, od)) return ctx.error("A and B do not fit a matrix product");
  p.a_type = a.dtype();
  p.y_type = DType::kInt32;
  p.a_zero_point = ctx.input(2) ? zero_point_of(*ctx.input(2)) : 0;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kInt32, od));
  std::string impl;
  Status st = dnnl_kernels::qmatmul_int8(a.raw_data(), b.raw_data(), y->raw_data(), p, ctx.cache(),
                                         ctx.input_is_constant(1), ctx.num_threads(), &impl, ctx.shared_cache());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  return Status::ok();
}

// ---- QuantizeLinear / DequantizeLinear, per tensor: a float32 x (uint8/int8 for DequantizeLinear), a scalar
// float32 scale and a scalar zero point (or none). SSE2 is enough (they are bound by memory); like every fast
// kernel they stand aside under KILN_MAX_ISA=scalar.

namespace {

// A scalar scale and zero point of uint8/int8 (absent: uint8 0) for QuantizeLinear/DequantizeLinear, per tensor.
bool per_tensor_params(const KernelContext& ctx, DType& q_type) {
  const Tensor* s = ctx.input(1);
  const Tensor* zp = ctx.input(2);
  if (!s || s->dtype() != DType::kFloat32 || s->num_elements() != 1 || s->rank() > 1) return false;
  if (ctx.attr_int("block_size", 0) > 0) return false;
  q_type = zp ? zp->dtype() : DType::kUInt8;
  if (zp && (zp->num_elements() != 1 || zp->rank() > 1)) return false;
  return q_type == DType::kUInt8 || q_type == DType::kInt8;
}

// 16 bytes at p as 4 x 4 int32 lanes, sign- or zero-extended.
inline void widen16(const uint8_t* p, bool is_signed, __m128i out[4]) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i sign8 = is_signed ? _mm_cmpgt_epi8(zero, v) : zero;
  const __m128i lo16 = _mm_unpacklo_epi8(v, sign8), hi16 = _mm_unpackhi_epi8(v, sign8);
  const __m128i s_lo = is_signed ? _mm_cmpgt_epi16(zero, lo16) : zero;
  const __m128i s_hi = is_signed ? _mm_cmpgt_epi16(zero, hi16) : zero;
  out[0] = _mm_unpacklo_epi16(lo16, s_lo);
  out[1] = _mm_unpackhi_epi16(lo16, s_lo);
  out[2] = _mm_unpacklo_epi16(hi16, s_hi);
  out[3] = _mm_unpackhi_epi16(hi16, s_hi);
}

// round_half_even(v / scale) + zero_point for 4 lanes, as int32: the quotient is clamped to +-2^30 first, so that
// out-of-range values saturate when packed (store16) instead of wrapping, and a NaN quotient saturates low (the
// reference kernel's saturate(NaN)).
inline __m128i quantize4(__m128 v, __m128 scale, __m128i zero_point) {
  __m128 q = _mm_div_ps(v, scale);
  const __m128 ordered = _mm_cmpord_ps(q, q), low = _mm_set1_ps(-1073741824.0f);
  q = _mm_or_ps(_mm_and_ps(ordered, q), _mm_andnot_ps(ordered, low));
  q = _mm_max_ps(_mm_min_ps(q, _mm_set1_ps(1073741824.0f)), low);
  return _mm_add_epi32(_mm_cvtps_epi32(q), zero_point);  // round half to even (the default rounding mode)
}

// 4 x 4 int32 lanes saturated to 16 uint8/int8 values at `out`.
inline void store16(uint8_t* out, const __m128i q[4], bool is_signed) {
  const __m128i lo16 = _mm_packs_epi32(q[0], q[1]), hi16 = _mm_packs_epi32(q[2], q[3]);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                   is_signed ? _mm_packs_epi16(lo16, hi16) : _mm_packus_epi16(lo16, hi16));
}

// The scalar form of quantize4 + store16, for the tails.
inline void quantize1(float v, float scale, int32_t zero_point, bool is_signed, uint8_t* out) {
  const float q = v / scale;
  const float lo = is_signed ? -128.0f : 0.0f, hi = is_signed ? 127.0f : 255.0f;
  const float r = std::isnan(q) ? lo : std::min(std::max(std::nearbyint(q) + static_cast<float>(zero_point), lo), hi);
  if (is_signed) {
    *reinterpret_cast<int8_t*>(out) = static_cast<int8_t>(r);
  } else {
    *out = static_cast<uint8_t>(r);
  }
}

inline int32_t load1(const uint8_t* p, bool is_signed) { return is_signed ? static_cast<int8_t>(*p) : *p; }

}  // namespace

bool quantizelinear_sse2_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  DType q_type;
  if (ctx.isa() < Isa::kAvx2 || !x || x->dtype() != DType::kFloat32 || !per_tensor_params(ctx, q_type)) return false;
  const int64_t odt = ctx.attr_int("output_dtype", 0);
  return odt == 0 || static_cast<DType>(odt) == q_type;
}

// y = saturate(round_half_even(x / scale) + zero_point), the division in float32 as the reference does it; NaN
// saturates low, as there.
Status quantizelinear_sse2_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  DType q_type = DType::kUInt8;
  per_tensor_params(ctx, q_type);
  const float scale = ctx.input(1)->data<float>()[0];
  const int32_t zp = ctx.input(2) ? zero_point_of(*ctx.input(2)) : 0;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, q_type, x.dims()));
  const float* in = x.data<float>();
  auto* out = static_cast<uint8_t*>(y->raw_data());
  const bool is_signed = q_type == DType::kInt8;
  ctx.parallel_for((x.num_elements() + 15) / 16, 4096, [&](int64_t begin, int64_t end) {
    const __m128 vs = _mm_set1_ps(scale);
    const __m128i vzp = _mm_set1_epi32(zp);
    int64_t i = begin * 16;
    const int64_t stop = std::min(end * 16, x.num_elements());
    for (; i + 16 <= stop; i += 16) {
      __m128i q[4];
      for (int k = 0; k < 4; ++k) q[k] = quantize4(_mm_loadu_ps(in + i + 4 * k), vs, vzp);
      store16(out + i, q, is_signed);
    }
    for (; i < stop; ++i) quantize1(in[i], scale, zp, is_signed, out + i);
  });
  ctx.set_kernel_detail("per_tensor");
  return Status::ok();
}

bool dequantizelinear_sse2_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  DType q_type;
  return ctx.isa() >= Isa::kAvx2 && x && (x->dtype() == DType::kUInt8 || x->dtype() == DType::kInt8) &&
         per_tensor_params(ctx, q_type) && q_type == x->dtype();
}

// y = (x - zero_point) * scale (exact in float32 for 8-bit x, as the reference's double rounded once).
Status dequantizelinear_sse2_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const float scale = ctx.input(1)->data<float>()[0];
  const int32_t zp = ctx.input(2) ? zero_point_of(*ctx.input(2)) : 0;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, x.dims()));
  const auto* in = static_cast<const uint8_t*>(x.raw_data());
  float* out = y->data<float>();
  const bool is_signed = x.dtype() == DType::kInt8;
  ctx.parallel_for((x.num_elements() + 15) / 16, 4096, [&](int64_t begin, int64_t end) {
    const __m128 vs = _mm_set1_ps(scale);
    const __m128i vzp = _mm_set1_epi32(zp);
    const int64_t n = x.num_elements();
    int64_t i = begin * 16;
    const int64_t stop = std::min(end * 16, n);
    for (; i + 16 <= stop; i += 16) {
      __m128i w[4];
      widen16(in + i, is_signed, w);
      for (int k = 0; k < 4; ++k) {
        _mm_storeu_ps(out + i + 4 * k, _mm_mul_ps(_mm_cvtepi32_ps(_mm_sub_epi32(w[k], vzp)), vs));
      }
    }
    for (; i < stop; ++i) out[i] = static_cast<float>(load1(in + i, is_signed) - zp) * scale;
  });
  ctx.set_kernel_detail("per_tensor");
  return Status::ok();
}

// ---- ai.kiln QLinearAdd: A and B of one shape, 8-bit, scalar scales and zero points; the reference kernel's
// float32 arithmetic (dequantize each side, add, Relu, divide by C_scale, round half to even), 8 or 16 lanes at a time
// (kernels/x86/qlinear_add.h).

bool qlinearadd_simd_supports(const KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(3);
  const Tensor* c_zp = ctx.input(7);
  if (!qlinear_add::supports(ctx.isa()) || !is_8bit(a) || !is_8bit(b) || !is_8bit(c_zp) || a->dims() != b->dims()) {
    return false;
  }
  const std::string act = ctx.attr_string("activation", "");
  return (act.empty() || act == "Relu") && is_scalar_f32(ctx.input(1)) && is_scalar_f32(ctx.input(4)) &&
         is_scalar_f32(ctx.input(6)) && scalar_zero_point(ctx.input(2), a->dtype()) &&
         scalar_zero_point(ctx.input(5), b->dtype()) && scalar_zero_point(c_zp, c_zp->dtype());
}

Status qlinearadd_simd_kernel(KernelContext& ctx) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(3);
  const Tensor& c_zp = *ctx.input(7);
  qlinear_add::Params p;
  p.a_scale = ctx.input(1)->data<float>()[0];
  p.b_scale = ctx.input(4)->data<float>()[0];
  p.c_scale = ctx.input(6)->data<float>()[0];
  p.a_zero_point = zero_point_of(*ctx.input(2));
  p.b_zero_point = zero_point_of(*ctx.input(5));
  p.c_zero_point = zero_point_of(c_zp);
  p.relu = !ctx.attr_string("activation", "").empty();
  p.a_signed = a.dtype() == DType::kInt8;
  p.b_signed = b.dtype() == DType::kInt8;
  p.c_signed = c_zp.dtype() == DType::kInt8;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, c_zp.dtype(), a.dims()));
  const auto* pa = static_cast<const uint8_t*>(a.raw_data());
  const auto* pb = static_cast<const uint8_t*>(b.raw_data());
  auto* out = static_cast<uint8_t*>(y->raw_data());
  const int64_t n = a.num_elements();
  const cpu::Isa isa = ctx.isa();
  // Tasks of 64 elements or more (whole vectors but for the last).
  ctx.parallel_for((n + 63) / 64, 256, [&](int64_t begin, int64_t end) {
    qlinear_add::add(isa, p, pa, pb, out, begin * 64, std::min(end * 64, n));
  });
  ctx.set_kernel_detail(std::string(p.relu ? "add_relu." : "add.") + cpu::isa_name(isa));
  return Status::ok();
}

}  // namespace kiln::cpu
