// ai.kiln's layout operators, which the optimizer's layout passes (level all) put between convolutions so that
// activations stay in the layout the convolutions compute in: NCHWc reorders and pooling on blocked tensors, the
// channels-last conversions (ToNhwc, FromNhwc) and pooling on channels-last tensors. NchwcConv and the Nhwc
// convolutions are in conv.cc. These are the reference kernels: pooling converts to the plain layout, runs the plain
// reference kernel and converts back; fast/pool.cc pools in place.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"

namespace kiln::cpu {

Status maxpool_kernel(KernelContext& ctx);
Status averagepool_kernel(KernelContext& ctx);
Status globalaveragepool_kernel(KernelContext& ctx);

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

namespace {

template <typename T>
void permute(const T* in, T* out, int64_t N, int64_t C, int64_t HW, bool to_nhwc) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t hw = 0; hw < HW; ++hw) {
        const int64_t first = (n * C + c) * HW + hw, last = (n * HW + hw) * C + c;
        if (to_nhwc) {
          out[last] = in[first];
        } else {
          out[first] = in[last];
        }
      }
}

}  // namespace

StatusOr<Tensor> permute_channels(const KernelContext& ctx, const Tensor& x, bool to_nhwc, const std::string& which) {
  if (x.rank() != 4) {
    return ctx.error(which + " has shape " + dims_to_string(x.dims()) + "; expected " +
                     (to_nhwc ? "[N, C, H, W]" : "[N, H, W, C]"));
  }
  const auto& d = x.dims();
  const int64_t N = d[0], C = to_nhwc ? d[1] : d[3], HW = to_nhwc ? d[2] * d[3] : d[1] * d[2];
  const std::vector<int64_t> yd =
      to_nhwc ? std::vector<int64_t>{N, d[2], d[3], C} : std::vector<int64_t>{N, C, d[1], d[2]};
  KILN_ASSIGN_OR_RETURN(Tensor y, Tensor::allocate(x.dtype(), yd, Allocator::cpu_uninitialized()));
  if (C == 0 || x.num_elements() == 0) return y;
  switch (dtype_bits(x.dtype())) {
    case 8: permute(x.data<uint8_t>(), y.data<uint8_t>(), N, C, HW, to_nhwc); break;
    case 16: permute(x.data<uint16_t>(), y.data<uint16_t>(), N, C, HW, to_nhwc); break;
    case 32: permute(x.data<uint32_t>(), y.data<uint32_t>(), N, C, HW, to_nhwc); break;
    case 64: permute(x.data<uint64_t>(), y.data<uint64_t>(), N, C, HW, to_nhwc); break;
    default: return ctx.unsupported_dtype(x.dtype(), which);
  }
  return y;
}

StatusOr<Tensor> convert_channels(const KernelContext& ctx, const Tensor& x, bool to_nhwc, DType to,
                                  const std::string& which) {
  auto half_or_float = [](DType t) { return t == DType::kFloat32 || t == DType::kBFloat16; };
  if (!half_or_float(x.dtype())) return ctx.unsupported_dtype(x.dtype(), which);
  if (!half_or_float(to)) {
    return ctx.error("converts to " + std::string(dtype_name(to)) + "; expected float or bfloat16");
  }
  KILN_ASSIGN_OR_RETURN(Tensor y, permute_channels(ctx, x, to_nhwc, which));
  if (y.dtype() == to) return y;
  return to == DType::kFloat32 ? as_float(y) : from_float(y, to);
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

// NhwcMaxPool: 2-D MaxPool with X [N, H, W, C] and Y [N, OH, OW, C] (layout_nhwc_int8 and layout_nhwc_bf16), as the
// MaxPool reference kernel computes it on the permuted tensor.
Status nhwcmaxpool_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(Tensor xc, permute_channels(ctx, *x, false, "input 0 (X)"));
  Value plain(std::move(xc));
  KernelContext sub(ctx.node(), 12, {&plain}, 1);
  KILN_RETURN_IF_ERROR(maxpool_kernel(sub));
  const Tensor y = sub.take_output(0).tensor();
  KILN_ASSIGN_OR_RETURN(Tensor out, permute_channels(ctx, y, true, "the result"));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

// NhwcGlobalAveragePool: GlobalAveragePool of a channels-last X [N, H, W, C] (float32 or bfloat16;
// layout_nhwc_bf16); Y is plain float32 [N, C, 1, 1], as the GlobalAveragePool reference kernel computes it.
Status nhwcglobalaveragepool_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(Tensor xc, convert_channels(ctx, *x, false, DType::kFloat32, "input 0 (X)"));
  Value plain(std::move(xc));
  KernelContext sub(ctx.node(), 1, {&plain}, 1);
  KILN_RETURN_IF_ERROR(globalaveragepool_kernel(sub));
  ctx.set_output(0, sub.take_output(0).tensor());
  return Status::ok();
}

}  // namespace kiln::cpu
