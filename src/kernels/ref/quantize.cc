// Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear.
// Reference kernels: every input is read as double, computed with plain loops and written back in the output
// dtype (float16/bfloat16 round through float32).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"
#include "kernels/ref/nn_util.h"
#include "kernels/ref/resize.h"

namespace kiln::cpu {

using namespace nn;

// ---------------------------------------------------------------- quantization

namespace {

bool is_4bit(DType t) { return t == DType::kInt4 || t == DType::kUInt4; }

// Element values of a quantized tensor (4-bit types are packed two per byte, low nibble first).
Vec quant_values(const Tensor& t) {
  if (!is_4bit(t.dtype())) return to_doubles(t);
  Vec v(static_cast<size_t>(t.num_elements()));
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  for (size_t i = 0; i < v.size(); ++i) {
    int nib = (p[i / 2] >> (4 * (i % 2))) & 0xF;
    if (t.dtype() == DType::kInt4 && nib >= 8) nib -= 16;
    v[i] = nib;
  }
  return v;
}

Status write_quantized(KernelContext& ctx, size_t i, DType dt, const Dims& dims, const Vec& v) {
  if (!is_4bit(dt)) return write_output(ctx, i, dt, dims, v);
  KILN_ASSIGN_OR_RETURN(Tensor * t, ctx.allocate_output(i, dt, dims));
  auto* p = static_cast<uint8_t*>(t->raw_data());
  for (size_t k = 0; k < v.size(); ++k) {
    const auto nib = static_cast<uint8_t>(static_cast<int>(v[k]) & 0xF);
    p[k / 2] = static_cast<uint8_t>(p[k / 2] | (nib << (4 * (k % 2))));
  }
  return Status::ok();
}

// Scale/zero-point value for element i of x: scalar, per-axis (1-D along axis) or blocked (same rank as x).
struct QuantParams {
  Vec scale, zp;
  Dims sdims;
  int64_t axis = 1, block = 0;
};

Status quant_params(const KernelContext& ctx, const Tensor& x, const Tensor& scale, const Tensor* zp, QuantParams& q) {
  q.scale = to_doubles(scale);
  q.zp = zp ? quant_values(*zp) : Vec(q.scale.size(), 0.0);
  q.sdims = scale.dims();
  if (zp && zp->num_elements() != scale.num_elements()) {
    return ctx.error("zero point has shape " + dstr(zp->dims()) + " but scale has shape " + dstr(scale.dims()));
  }
  if (q.scale.size() == 1 && scale.rank() <= 1) return Status::ok();
  KILN_ASSIGN_OR_RETURN(q.axis, normalize_axis(ctx, ctx.attr_int("axis", 1), static_cast<int64_t>(x.rank())));
  q.block = ctx.attr_int("block_size", 0);
  if (q.block <= 0) {
    if (scale.rank() != 1 || scale.dims()[0] != x.dims()[static_cast<size_t>(q.axis)]) {
      return ctx.error("scale has shape " + dstr(scale.dims()) + "; expected a scalar or 1-D of size " +
                       std::to_string(x.dims()[static_cast<size_t>(q.axis)]) + " (axis " + std::to_string(q.axis) +
                       " of " + dstr(x.dims()) + ")");
    }
  } else if (scale.rank() != x.rank()) {
    return ctx.error("blocked quantization needs scale of rank " + std::to_string(x.rank()));
  }
  return Status::ok();
}

// Index into scale for element i of x.
size_t quant_index(const QuantParams& q, const Dims& xd, int64_t i) {
  if (q.scale.size() == 1 && q.sdims.size() <= 1) return 0;
  auto xs = strides_of(xd);
  if (q.block <= 0) return static_cast<size_t>((i / xs[static_cast<size_t>(q.axis)]) % xd[static_cast<size_t>(q.axis)]);
  auto ss = strides_of(q.sdims);
  int64_t off = 0;
  for (size_t d = 0; d < xd.size(); ++d) {
    int64_t c = (i / xs[d]) % xd[d];
    if (static_cast<int64_t>(d) == q.axis) c /= q.block;
    off += c * ss[d];
  }
  return static_cast<size_t>(off);
}

}  // namespace

Status quantizelinear_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(1));
  const Tensor* zp = ctx.input(2);
  if (!is_float_dtype(x->dtype()) && x->dtype() != DType::kInt32)
    return ctx.unsupported_dtype(x->dtype(), "input 0 (x)");
  const int64_t odt = ctx.attr_int("output_dtype", 0);
  const DType out = zp ? zp->dtype() : (odt > 0 && odt <= kMaxDType ? static_cast<DType>(odt) : DType::kUInt8);
  if (zp && odt > 0 && static_cast<DType>(odt) != zp->dtype()) {
    return ctx.error("output_dtype does not match the dtype of y_zero_point (" + std::string(dtype_name(zp->dtype())) +
                     ")");
  }
  double lo, hi;
  if (!quant_range(out, lo, hi) || out == DType::kInt32) return ctx.unsupported_dtype(out, "output y");
  QuantParams q;
  KILN_RETURN_IF_ERROR(quant_params(ctx, *x, *s, zp, q));
  Vec xv = to_doubles(*x), y(xv.size());
  const bool f32 = x->dtype() == DType::kFloat32;
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t k = quant_index(q, x->dims(), static_cast<int64_t>(i));
    const double v =
        f32 ? static_cast<double>(static_cast<float>(xv[i]) / static_cast<float>(q.scale[k])) : xv[i] / q.scale[k];
    y[i] = saturate(round_half_even(v) + q.zp[k], lo, hi);
  }
  return write_quantized(ctx, 0, out, x->dims(), y);
}

Status dequantizelinear_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(1));
  const Tensor* zp = ctx.input(2);
  double lo, hi;
  if (!quant_range(x->dtype(), lo, hi)) return ctx.unsupported_dtype(x->dtype(), "input 0 (x)");
  if (!is_float_dtype(s->dtype())) return ctx.unsupported_dtype(s->dtype(), "input 1 (x_scale)");
  QuantParams q;
  KILN_RETURN_IF_ERROR(quant_params(ctx, *x, *s, zp, q));
  Vec xv = quant_values(*x), y(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t k = quant_index(q, x->dims(), static_cast<int64_t>(i));
    y[i] = (xv[i] - q.zp[k]) * q.scale[k];
  }
  return write_output(ctx, 0, s->dtype(), x->dims(), y);
}

Status dynamicquantizelinear_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (x->dtype() != DType::kFloat32) return ctx.unsupported_dtype(x->dtype(), "input 0 (x)");
  const float* p = x->data<float>();
  float mn = 0, mx = 0;
  for (int64_t i = 0; i < x->num_elements(); ++i) {
    mn = std::min(mn, p[i]);
    mx = std::max(mx, p[i]);
  }
  float scale = (mx - mn) / 255.0f;
  if (scale == 0) scale = 1.0f;
  const double zp = saturate(round_half_even(static_cast<double>(0.0f - mn / scale)), 0, 255);
  Vec y(static_cast<size_t>(x->num_elements()));
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = saturate(round_half_even(static_cast<double>(p[i] / scale)) + zp, 0, 255);
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, DType::kUInt8, x->dims(), y));
  KILN_RETURN_IF_ERROR(write_output(ctx, 1, DType::kFloat32, {}, {static_cast<double>(scale)}));
  return write_output(ctx, 2, DType::kUInt8, {}, {zp});
}

// ai.kiln QLinearAdd(A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point), attribute
// `activation` ("" or "Relu"): the QDQ graph DequantizeLinear(A) + DequantizeLinear(B) [-> Relu] -> QuantizeLinear
// in one node (fuse_qdq), with its arithmetic: each side dequantized in float32, the float32 sum, then
// saturate(round_half_even(sum / C_scale) + C_zero_point). Scalar scales and zero points; A and B broadcast.
Status qlinearadd_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 8; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(3);
  const Tensor& czp = *ctx.input(7);
  double lo, hi;
  if (!quant_range(a.dtype(), lo, hi)) return ctx.unsupported_dtype(a.dtype(), "input 0 (A)");
  if (!quant_range(b.dtype(), lo, hi)) return ctx.unsupported_dtype(b.dtype(), "input 3 (B)");
  if (!quant_range(czp.dtype(), lo, hi) || czp.dtype() == DType::kInt32) {
    return ctx.unsupported_dtype(czp.dtype(), "input 7 (C_zero_point)");
  }
  const std::string act = ctx.attr_string("activation", "");
  if (!act.empty() && act != "Relu")
    return ctx.error("activation '" + act + "' is not supported (expected Relu or none)");
  double as, az, bs, bz, cs, cz;
  KILN_RETURN_IF_ERROR(scalar_of(ctx, ctx.input(1), 1, as, "A_scale"));
  KILN_RETURN_IF_ERROR(scalar_of(ctx, ctx.input(2), 0, az, "A_zero_point"));
  KILN_RETURN_IF_ERROR(scalar_of(ctx, ctx.input(4), 1, bs, "B_scale"));
  KILN_RETURN_IF_ERROR(scalar_of(ctx, ctx.input(5), 0, bz, "B_zero_point"));
  KILN_RETURN_IF_ERROR(scalar_of(ctx, ctx.input(6), 1, cs, "C_scale"));
  KILN_RETURN_IF_ERROR(scalar_of(ctx, &czp, 0, cz, "C_zero_point"));
  KILN_ASSIGN_OR_RETURN(Dims od, broadcast_shapes(a.dims(), b.dims()));
  const Dims sa = broadcast_strides(a.dims(), od), sb = broadcast_strides(b.dims(), od);
  const Vec av = quant_values(a), bv = quant_values(b);
  Vec y(static_cast<size_t>(product(od)));
  Dims idx(od.size(), 0);
  for (size_t i = 0; i < y.size(); ++i, next_index(idx, od)) {
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < od.size(); ++d) {
      ia += idx[d] * sa[d];
      ib += idx[d] * sb[d];
    }
    const float fa = static_cast<float>((av[static_cast<size_t>(ia)] - az) * as);
    const float fb = static_cast<float>((bv[static_cast<size_t>(ib)] - bz) * bs);
    float sum = fa + fb;
    if (!act.empty()) sum = std::max(sum, 0.0f);
    y[i] = saturate(round_half_even(static_cast<double>(sum / static_cast<float>(cs))) + cz, lo, hi);
  }
  return write_quantized(ctx, 0, czp.dtype(), od, y);
}

}  // namespace kiln::cpu
