// Fast quantized convolutions and matrix products on oneDNN's int8 primitives: QLinearConv (qlinearconv.dnnl) and
// QLinearMatMul (qlinearmatmul.dnnl). They take the cases oneDNN computes exactly as ONNX does (int8 weights with
// zero points 0, per-tensor or per-output-channel weight scales, scalar activation scales and zero points, an int32
// bias); anything else runs the reference kernel. tests/unit/runtime/int8_test.cc checks them against it.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dnnl/dnnl_kernels.h"
#include "kernels/isa.h"
#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"

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

// The weights' zero points are all 0 and their scales are float32, one per tensor or one per output channel.
bool symmetric_weights(const Tensor* w, const Tensor* w_scale, const Tensor* w_zp, int64_t channels) {
  if (!w || w->dtype() != DType::kInt8 || !w_scale || w_scale->dtype() != DType::kFloat32) return false;
  if (w_scale->num_elements() != 1 && w_scale->num_elements() != channels) return false;
  if (w_zp) {
    if (w_zp->dtype() != DType::kInt8 || (w_zp->num_elements() != 1 && w_zp->num_elements() != channels)) return false;
    for (int64_t i = 0; i < w_zp->num_elements(); ++i) {
      if (w_zp->data<int8_t>()[i] != 0) return false;
    }
  }
  return true;
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

bool qlinearconv_dnnl_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(3);
  const Tensor* y_zp = ctx.input(7);
  const Tensor* b = ctx.input(8);
  if (ctx.isa() < Isa::kAvx2 || !is_8bit(x) || !is_8bit(y_zp) || !w || x->rank() < 3 || x->rank() > 5 ||
      w->rank() != x->rank() || x->num_elements() == 0 || w->num_elements() == 0) {
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
  return conv_setup(ctx, x->dims(), *w, g).is_ok();
}

Status qlinearconv_dnnl_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(3);
  const Tensor& y_zp = *ctx.input(7);
  ConvGeom g;
  KILN_RETURN_IF_ERROR(conv_setup(ctx, x.dims(), w, g));
  dnnl_kernels::QConvParams p;
  p.conv = dnnl_kernels::ConvParams{g.group,          g.strides, g.dilations, g.pad_begin, g.pad_end,
                                    out_dims(g, g.M), {},        0,           0,           false};
  p.x_zero_point = zero_point_of(*ctx.input(2));
  p.y_zero_point = zero_point_of(y_zp);
  p.x_signed = x.dtype() == DType::kInt8;
  p.y_signed = y_zp.dtype() == DType::kInt8;
  p.scales = output_scales(*ctx.input(1), *ctx.input(4), *ctx.input(6));
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, y_zp.dtype(), p.conv.out_dims));
  std::string impl;
  Status st = dnnl_kernels::qconv_int8(x, w, ctx.input(8), p, ctx.cache(), ctx.input_is_constant(3), *y,
                                       ctx.num_threads(), &impl, ctx.shared_cache());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  return Status::ok();
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
  const Tensor* b_zp = ctx.input(3);
  if (b_zp) {
    if (b_zp->dtype() != DType::kInt8) return false;
    for (int64_t i = 0; i < b_zp->num_elements(); ++i) {
      if (b_zp->data<int8_t>()[i] != 0) return false;
    }
  }
  return true;
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

}  // namespace kiln::cpu
