// Fast convolutions on oneDNN for float32 plain-layout tensors: Conv, ai.kiln FusedConv (activation and residual
// Z as post-ops) and ConvTranspose; ai.kiln NhwcConv on channels-last bfloat16 (or float32) tensors and the
// conversions at its boundaries, ToNhwc and FromNhwc (layout_nhwc_bf16). Primitives (and weights reordered for
// them, when constant) live in the node's cache.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/dnnl/dnnl_kernels.h"
#include "kernels/fast/parallel.h"
#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"
#include "kernels/x86/depthwise_bf16.h"
#include "kernels/x86/to_nhwc_bf16.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;

// What oneDNN's convolution takes: float32 X, W (and B) with 1 to 3 spatial dims, a valid geometry and one bias
// value per output channel.
bool conv_fits(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(1);
  const Tensor* b = ctx.input(2);
  if (!x || !w || ctx.isa() < Isa::kAvx2 || !dnnl_kernels::conv_supported(*x, *w, b)) return false;
  ConvGeom g;
  if (!conv_setup(ctx, x->dims(), *w, g).is_ok()) return false;
  return !b || b->num_elements() == g.M;
}

// y = act(Conv(X, W) + B + Z) on oneDNN (conv_fits holds).
Status conv_dnnl(KernelContext& ctx, const Activation& act, const Tensor* z, bool bf16 = false) {
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(1);
  const Tensor* b = ctx.input(2);
  ConvGeom g;
  KILN_RETURN_IF_ERROR(conv_setup(ctx, x.dims(), w, g));
  const Dims od = out_dims(g, g.M);
  dnnl_kernels::ConvParams p{g.group, g.strides, g.dilations, g.pad_begin, g.pad_end, od, {}, 0, 0, bf16};
  // Z of the output's shape rides on oneDNN's sum post-op; a broadcast Z is added afterwards.
  const bool z_inline = z && z->dtype() == DType::kFloat32 && z->dims() == od;
  const Activation inline_act = z && !z_inline ? Activation{} : act;
  KILN_ASSIGN_OR_RETURN(Tensor * y, z_inline ? ctx.allocate_output_reusing(0, 3, DType::kFloat32, od)
                                             : ctx.allocate_output_uninitialized(0, DType::kFloat32, od));
  std::string impl;
  Status st = dnnl_kernels::conv_f32(x, w, b, z_inline ? z : nullptr, p, inline_act, ctx.cache(),
                                     ctx.input_is_constant(1), *y, ctx.num_threads(), &impl, ctx.shared_cache());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  if (ctx.preparing()) return Status::ok();
  if (z && !z_inline) {
    KILN_RETURN_IF_ERROR(add_broadcast_f32(ctx, *y, *z));
    apply_activation(act, y->data<float>(), y->num_elements());
  }
  return Status::ok();
}

// oneDNN's right padding of a transposed convolution, from the output size (output_padding and output_shape
// included); false when oneDNN cannot express it (negative padding).
bool deconv_right_padding(const ConvGeom& g, Dims& pad_r) {
  pad_r.assign(g.in.size(), 0);
  for (size_t i = 0; i < g.in.size(); ++i) {
    pad_r[i] = (g.in[i] - 1) * g.strides[i] + (g.kernel[i] - 1) * g.dilations[i] + 1 - g.pad_begin[i] - g.out[i];
    if (pad_r[i] < 0 || g.pad_begin[i] < 0) return false;
  }
  return true;
}

}  // namespace

bool conv_dnnl_supports(const KernelContext& ctx) { return conv_fits(ctx); }

Status conv_dnnl_kernel(KernelContext& ctx) { return conv_dnnl(ctx, Activation{}, nullptr); }

bool fusedconv_dnnl_supports(const KernelContext& ctx) { return conv_fits(ctx) && fused_activation(ctx).is_ok(); }

Status fusedconv_dnnl_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Activation act, fused_activation(ctx));
  return conv_dnnl(ctx, act, ctx.input(3));
}

// The bfloat16 forms (Precision::kBf16).
bool conv_dnnl_bf16_supports(const KernelContext& ctx) { return conv_fits(ctx) && bf16_allowed(ctx); }

Status conv_dnnl_bf16_kernel(KernelContext& ctx) { return conv_dnnl(ctx, Activation{}, nullptr, true); }

bool fusedconv_dnnl_bf16_supports(const KernelContext& ctx) {
  return fusedconv_dnnl_supports(ctx) && bf16_allowed(ctx);
}

Status fusedconv_dnnl_bf16_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Activation act, fused_activation(ctx));
  return conv_dnnl(ctx, act, ctx.input(3), true);
}

// ---- ai.kiln NhwcConv: X, Z and Y [N, H, W, C], bfloat16 (AVX512-BF16 or AMX) or float32.

namespace {

// The CPU computes in bfloat16 (whatever precision the session asked for: a graph with bfloat16 tensors has them).
bool bf16_cpu(const KernelContext& ctx) { return effective_precision(Precision::kBf16, ctx.isa()) == Precision::kBf16; }

bool nhwc_io(const KernelContext& ctx, const Tensor& t) {
  return t.rank() == 4 && (t.dtype() == DType::kFloat32 || (t.dtype() == DType::kBFloat16 && bf16_cpu(ctx)));
}

}  // namespace

bool nhwc_conv_dnnl_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(1);
  const Tensor* b = ctx.input(2);
  const Tensor* z = ctx.input(3);
  if (!x || !w || ctx.isa() < Isa::kAvx2 || !nhwc_io(ctx, *x) || !fused_activation(ctx).is_ok()) return false;
  if (w->dtype() != DType::kFloat32 || w->rank() != 4 || (b && b->dtype() != DType::kFloat32)) return false;
  const auto& d = x->dims();
  ConvGeom g;
  if (!conv_setup(ctx, {d[0], d[3], d[1], d[2]}, *w, g).is_ok() || (b && b->num_elements() != g.M)) return false;
  // Z rides on the sum post-op: it must have Y's shape and dtype.
  return !z || (z->dtype() == x->dtype() && z->dims() == Dims{g.N, g.out[0], g.out[1], g.M});
}

Status nhwc_conv_dnnl_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(1);
  const Tensor* b = ctx.input(2);
  const Tensor* z = ctx.input(3);
  KILN_ASSIGN_OR_RETURN(Activation act, fused_activation(ctx));
  const auto& d = x.dims();
  const Dims nchw{d[0], d[3], d[1], d[2]};
  ConvGeom g;
  KILN_RETURN_IF_ERROR(conv_setup(ctx, nchw, w, g));
  const Dims od = out_dims(g, g.M), yd{od[0], od[2], od[3], od[1]};
  const bool bf16 = x.dtype() == DType::kBFloat16;
  dnnl_kernels::ConvParams p{g.group, g.strides, g.dilations, g.pad_begin, g.pad_end, od, nchw, 0, 0, bf16};
  p.channels_last = true;
  p.io_bf16 = bf16;
  KILN_ASSIGN_OR_RETURN(Tensor * y, z ? ctx.allocate_output_reusing(0, 3, x.dtype(), yd)
                                      : ctx.allocate_output_uninitialized(0, x.dtype(), yd));
  std::string impl;
  Status st = dnnl_kernels::conv_f32(x, w, b, z, p, act, ctx.cache(), ctx.input_is_constant(1), *y, ctx.num_threads(),
                                     &impl, ctx.shared_cache());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  return Status::ok();
}

// ---- NhwcConv, depthwise on bfloat16 (group = C = M, one input channel a filter): kiln's AVX512-BF16 kernel.

namespace {

// The fused activation as depthwise_bf16's clamp (a NaN sum gives 0 after Relu, as act::relu); false for one it
// does not take.
bool clamp_of(const Activation& act, depthwise_bf16::Clamp& c) {
  c.nan_is_lo = act.kind == Activation::Kind::kRelu;
  return activation_clamp(act, c.lo, c.hi);
}

// The depthwise geometry of the node (its conditions checked by nhwc_conv_depthwise_bf16_supports).
StatusOr<depthwise_bf16::Geometry> depthwise_geometry(const KernelContext& ctx, ConvGeom& g) {
  const auto& d = ctx.input(0)->dims();
  KILN_RETURN_IF_ERROR(conv_setup(ctx, {d[0], d[3], d[1], d[2]}, *ctx.input(1), g));
  return depthwise_bf16::Geometry{g.N,          g.in[0],      g.in[1],        g.C,           g.out[0], g.out[1],
                                  g.strides[0], g.strides[1], g.pad_begin[0], g.pad_begin[1]};
}

}  // namespace

bool nhwc_conv_depthwise_bf16_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(1);
  const Tensor* b = ctx.input(2);
  if (!x || !w || ctx.input(3) || ctx.isa() < Isa::kAvx512 || !depthwise_bf16::supported() || !bf16_cpu(ctx)) {
    return false;
  }
  if (x->dtype() != DType::kBFloat16 || x->rank() != 4 || w->dtype() != DType::kFloat32 || w->rank() != 4 ||
      !ctx.input_is_constant(1) || (b && (b->dtype() != DType::kFloat32 || !ctx.input_is_constant(2)))) {
    return false;
  }
  depthwise_bf16::Clamp clamp;
  const StatusOr<Activation> act = fused_activation(ctx);
  ConvGeom g;
  if (!act.is_ok() || !clamp_of(*act, clamp) || !depthwise_geometry(ctx, g).is_ok()) return false;
  const bool undilated = std::all_of(g.dilations.begin(), g.dilations.end(), [](int64_t v) { return v == 1; });
  return g.in.size() == 2 && g.group == g.C && g.M == g.C && w->dims()[1] == 1 && undilated &&
         depthwise_bf16::takes(g.kernel[0], g.kernel[1]) && (!b || b->num_elements() == g.M);
}

Status nhwc_conv_depthwise_bf16_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(1);
  const Tensor* b = ctx.input(2);
  ConvGeom g;
  KILN_ASSIGN_OR_RETURN(const depthwise_bf16::Geometry geo, depthwise_geometry(ctx, g));
  KILN_ASSIGN_OR_RETURN(const Activation act, fused_activation(ctx));
  depthwise_bf16::Clamp clamp;
  if (!clamp_of(act, clamp)) return ctx.error("activation " + act.name() + " is not one the depthwise kernel takes");
  const int64_t KH = g.kernel[0], KW = g.kernel[1];
  auto pack = [&]() -> StatusOr<std::shared_ptr<depthwise_bf16::Weights>> {
    auto packed = depthwise_bf16::pack(w.data<float>(), b ? b->data<float>() : nullptr, g.C, KH, KW);
    if (!packed) return ctx.error("out of memory packing the depthwise weights");
    return packed;
  };
  const CacheKey key{CacheEntry::kDepthwiseBf16Weights, {g.C, KH, KW}};
  KILN_ASSIGN_OR_RETURN(auto weights, ctx.cache() ? ctx.cache()->get<depthwise_bf16::Weights>(key, pack) : pack());
  KILN_ASSIGN_OR_RETURN(Tensor * y,
                        ctx.allocate_output_uninitialized(0, DType::kBFloat16, {geo.N, geo.OH, geo.OW, geo.C}));
  depthwise_bf16::convolve(geo, x.data<uint16_t>(), *weights, clamp, y->data<uint16_t>(), ctx.num_threads(),
                           static_pool_of(ctx));
  ctx.set_kernel_detail("depthwise_bf16.avx512");
  return Status::ok();
}

// ---- ai.kiln ToNhwc and FromNhwc: float32 <-> bfloat16 with the permutation, one oneDNN reorder.

namespace {

bool convert_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const auto to = static_cast<DType>(ctx.attr_int("to", 0));
  return x && ctx.isa() >= Isa::kAvx2 && ctx.attr("to") && nhwc_io(ctx, *x) &&
         (to == DType::kFloat32 || (to == DType::kBFloat16 && bf16_cpu(ctx)));
}

Status convert_kernel(KernelContext& ctx, bool to_nhwc) {
  const Tensor& x = *ctx.input(0);
  const auto& d = x.dims();
  const Dims yd = to_nhwc ? Dims{d[0], d[2], d[3], d[1]} : Dims{d[0], d[3], d[1], d[2]};
  KILN_ASSIGN_OR_RETURN(Tensor * y,
                        ctx.allocate_output_uninitialized(0, static_cast<DType>(ctx.attr_int("to", 0)), yd));
  Status st = dnnl_kernels::reorder_channels(x, to_nhwc, *y, ctx.cache(), ctx.num_threads());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail("dnnl_reorder");
  return Status::ok();
}

}  // namespace

bool to_nhwc_simd_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  return convert_supports(ctx) && x->dtype() == DType::kFloat32 &&
         static_cast<DType>(ctx.attr_int("to", 0)) == DType::kBFloat16 &&
         to_nhwc_bf16::supports(ctx.isa(), x->dims()[1]);
}

Status to_nhwc_simd_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const auto& d = x.dims();
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kBFloat16, {d[0], d[2], d[3], d[1]}));
  to_nhwc_bf16::convert(x.data<float>(), d[0], d[1], d[2] * d[3], y->data<uint16_t>(), static_pool_of(ctx));
  ctx.set_kernel_detail("to_nhwc_bf16.avx512");
  return Status::ok();
}

bool to_nhwc_dnnl_supports(const KernelContext& ctx) { return convert_supports(ctx); }
Status to_nhwc_dnnl_kernel(KernelContext& ctx) { return convert_kernel(ctx, true); }
bool from_nhwc_dnnl_supports(const KernelContext& ctx) { return convert_supports(ctx); }
Status from_nhwc_dnnl_kernel(KernelContext& ctx) { return convert_kernel(ctx, false); }

bool convtranspose_dnnl_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(1);
  const Tensor* b = ctx.input(2);
  if (!x || !w || ctx.isa() < Isa::kAvx2 || !dnnl_kernels::conv_supported(*x, *w, b)) return false;
  ConvGeom g;
  Dims pad_r;
  return convtranspose_setup(ctx, *x, *w, g).is_ok() && deconv_right_padding(g, pad_r);
}

Status convtranspose_dnnl_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(1);
  ConvGeom g;
  KILN_RETURN_IF_ERROR(convtranspose_setup(ctx, x, w, g));
  Dims pad_r;
  deconv_right_padding(g, pad_r);
  dnnl_kernels::ConvParams p{g.group, g.strides, g.dilations, g.pad_begin, pad_r, out_dims(g, g.M), {}, 0, 0};
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, out_dims(g, g.M)));
  std::string impl;
  Status st = dnnl_kernels::deconv_f32(x, w, ctx.input(2), p, ctx.cache(), ctx.input_is_constant(1), *y,
                                       ctx.num_threads(), &impl);
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  return Status::ok();
}

}  // namespace kiln::cpu
