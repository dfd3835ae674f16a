// Fast Softmax and LogSoftmax for float32: rows along the axis (opset < 13: everything from the axis on is one
// row). softmax.dnnl runs contiguous rows on oneDNN; softmax.strided computes rows `inner` elements apart in
// float (the reference kernel computes in double).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/dnnl/dnnl_kernels.h"
#include "kernels/kernel.h"

namespace kiln::cpu {
namespace {

// Rows of `len` elements `inner` apart, `outer` * `inner` of them.
struct Rows {
  int64_t outer = 0, len = 0, inner = 0;
};

bool softmax_rows(const KernelContext& ctx, Rows& r) {
  const Tensor* x = ctx.input(0);
  if (!x || x->dtype() != DType::kFloat32 || x->rank() == 0) return false;
  const bool legacy = ctx.opset() < 13;
  auto axis = normalize_axis(ctx, ctx.attr_int("axis", legacy ? 1 : -1), static_cast<int64_t>(x->rank()));
  if (!axis.is_ok()) return false;
  const size_t ua = static_cast<size_t>(*axis);
  r.len = legacy ? product(x->dims(), ua) : x->dims()[ua];
  r.inner = legacy ? 1 : product(x->dims(), ua + 1);
  r.outer = product(x->dims(), 0, ua);
  return true;
}

bool is_log(const KernelContext& ctx) { return ctx.node().op_type == "LogSoftmax"; }

}  // namespace

bool softmax_dnnl_supports(const KernelContext& ctx) {
  Rows r;
  return ctx.isa() >= Isa::kAvx2 && softmax_rows(ctx, r) && r.inner == 1;
}

Status softmax_dnnl_kernel(KernelContext& ctx) {
  Rows r;
  softmax_rows(ctx, r);
  const Tensor& x = *ctx.input(0);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, x.dims()));
  Status st =
      dnnl_kernels::softmax_f32(x.data<float>(), out->data<float>(), r.outer, r.len, is_log(ctx), ctx.num_threads());
  if (!st.is_ok()) return ctx.error(st.message());
  return Status::ok();
}

bool softmax_strided_supports(const KernelContext& ctx) {
  Rows r;
  return softmax_rows(ctx, r);
}

Status softmax_strided_kernel(KernelContext& ctx) {
  Rows r;
  softmax_rows(ctx, r);
  const int64_t outer = r.outer, len = r.len, inner = r.inner;
  const Tensor& x = *ctx.input(0);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, x.dims()));
  const float* px = x.data<float>();
  float* py = out->data<float>();
  const bool log = is_log(ctx);
  ctx.parallel_for(outer * inner, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, len)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t base = (r / inner) * len * inner + r % inner;
      const float* xr = px + base;
      float* yr = py + base;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < len; ++i) mx = std::max(mx, xr[i * inner]);
      double sum = 0;
      for (int64_t i = 0; i < len; ++i) {
        const float e = std::exp(xr[i * inner] - mx);
        if (!log) yr[i * inner] = e;
        sum += e;
      }
      if (log) {
        const float ls = static_cast<float>(std::log(sum));
        for (int64_t i = 0; i < len; ++i) yr[i * inner] = xr[i * inner] - mx - ls;
      } else {
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t i = 0; i < len; ++i) yr[i * inner] *= inv;
      }
    }
  });
  return Status::ok();
}

}  // namespace kiln::cpu
