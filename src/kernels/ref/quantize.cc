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

}  // namespace kiln::cpu
