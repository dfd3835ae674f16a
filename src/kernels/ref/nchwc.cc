// ai.kiln's NCHWc operators, which the optimizer's layout pass (level all) puts between convolutions so that
// activations stay in the channel-blocked layout oneDNN computes in: reorders at the boundaries, pooling on
// blocked tensors. NchwcConv is in conv.cc with the other convolutions. These are the reference kernels (pooling:
// unblock, run the plain reference kernel, block again); fast/nchwc_pool.cc pools in the blocked layout.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"

namespace kiln::cpu {

Status maxpool_kernel(KernelContext& ctx);
Status averagepool_kernel(KernelContext& ctx);

namespace {

Tensor unblock(const KernelContext& ctx, const Tensor& x, const std::vector<int64_t>& nchw, int64_t block) {
  Tensor plain = std::move(Tensor::allocate(DType::kFloat32, nchw, Allocator::cpu_uninitialized())).value();
  nchwc_unblock(ctx, x.data<float>(), plain.data<float>(), nchw[0], nchw[1], nchw[2] * nchw[3], block);
  return plain;
}

// Pooling on a blocked tensor: unblock, run the plain reference kernel, block the result.
Status nchwc_pool(KernelContext& ctx, bool max) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(int64_t B, nchwc_block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, nchwc_blocked_input(ctx, *x, B));
  Value plain(unblock(ctx, *x, nchw, B));
  KernelContext sub(ctx.node(), 12, {&plain}, 1);
  KILN_RETURN_IF_ERROR(max ? maxpool_kernel(sub) : averagepool_kernel(sub));
  const Tensor y = sub.take_output(0).tensor();
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, nchwc_dims(y.dims(), B)));
  nchwc_block(ctx, y.data<float>(), out->data<float>(), y.dims()[0], y.dims()[1], y.dims()[2] * y.dims()[3], B);
  return Status::ok();
}

}  // namespace

StatusOr<Tensor> convert_channels(const KernelContext& ctx, const Tensor& x, bool to_nhwc, DType to,
                                  const std::string& which) {
  auto half_or_float = [](DType t) { return t == DType::kFloat32 || t == DType::kBFloat16; };
  if (!half_or_float(x.dtype())) return ctx.unsupported_dtype(x.dtype(), which);
  if (!half_or_float(to)) {
    return ctx.error("converts to " + std::string(dtype_name(to)) + "; expected float or bfloat16");
  }
  if (x.rank() != 4) {
    return ctx.error(which + " has shape " + dims_to_string(x.dims()) + "; expected " +
                     (to_nhwc ? "[N, C, H, W]" : "[N, H, W, C]"));
  }
  const auto& d = x.dims();
  const int64_t N = d[0], C = to_nhwc ? d[1] : d[3], H = to_nhwc ? d[2] : d[1], W = to_nhwc ? d[3] : d[2];
  const std::vector<int64_t> yd = to_nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W};
  KILN_ASSIGN_OR_RETURN(Tensor y, Tensor::allocate(to, yd, Allocator::cpu_uninitialized()));
  const bool from_bf16 = x.dtype() == DType::kBFloat16, to_bf16 = to == DType::kBFloat16;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t hw = 0; hw < H * W; ++hw) {
        const int64_t first = (n * C + c) * H * W + hw, last = (n * H * W + hw) * C + c;
        const int64_t from = to_nhwc ? first : last, into = to_nhwc ? last : first;
        const float v = from_bf16 ? bfloat16_to_float(x.data<uint16_t>()[from]) : x.data<float>()[from];
        if (to_bf16) {
          y.data<uint16_t>()[into] = float_to_bfloat16(v);
        } else {
          y.data<float>()[into] = v;
        }
      }
  return y;
}

namespace {

Status convert_kernel(KernelContext& ctx, bool to_nhwc) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (!ctx.attr("to")) return ctx.error("attribute 'to' is missing");
  KILN_ASSIGN_OR_RETURN(Tensor y,
                        convert_channels(ctx, *x, to_nhwc, static_cast<DType>(ctx.attr_int("to", 0)), "input 0 (X)"));
  ctx.set_output(0, std::move(y));
  return Status::ok();
}

}  // namespace

// ToNhwc(X [N, C, H, W]) -> [N, H, W, C] in dtype `to`; FromNhwc the reverse.
Status tonhwc_kernel(KernelContext& ctx) { return convert_kernel(ctx, true); }
Status fromnhwc_kernel(KernelContext& ctx) { return convert_kernel(ctx, false); }

// ReorderInput(X [N, C, H, W]) -> [N, ceil(C / block), H, W, block]
Status reorderinput_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(int64_t B, nchwc_block_attr(ctx));
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
  KILN_ASSIGN_OR_RETURN(int64_t B, nchwc_block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, nchwc_blocked_input(ctx, *x, B));
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, nchw));
  nchwc_unblock(ctx, x->data<float>(), out->data<float>(), nchw[0], nchw[1], nchw[2] * nchw[3], B);
  return Status::ok();
}

Status nchwcmaxpool_kernel(KernelContext& ctx) { return nchwc_pool(ctx, true); }
Status nchwcaveragepool_kernel(KernelContext& ctx) { return nchwc_pool(ctx, false); }

Status nchwcglobalaveragepool_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(int64_t B, nchwc_block_attr(ctx));
  KILN_ASSIGN_OR_RETURN(auto nchw, nchwc_blocked_input(ctx, *x, B));
  const int64_t N = nchw[0], C = nchw[1], HW = nchw[2] * nchw[3], CB = x->dims()[1];
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, {N, C, 1, 1}));
  ctx.parallel_for(N * CB, 1, [&](int64_t p0, int64_t p1) {
    std::vector<double> acc(static_cast<size_t>(B));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / CB, cb = p % CB;
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* in = x->data<float>() + p * HW * B;
      for (int64_t i = 0; i < HW; ++i)
        for (int64_t l = 0; l < B; ++l) acc[static_cast<size_t>(l)] += in[i * B + l];
      for (int64_t l = 0; l < B && cb * B + l < C; ++l) {
        out->data<float>()[n * C + cb * B + l] =
            HW > 0 ? static_cast<float>(acc[static_cast<size_t>(l)] / static_cast<double>(HW)) : 0.0f;
      }
    }
  });
  return Status::ok();
}

}  // namespace kiln::cpu
