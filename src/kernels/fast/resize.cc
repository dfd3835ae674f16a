// Fast Resize/Upsample for float32 without extrapolated outputs (resize.separable).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/resize.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;

// The fast path for float32: the N-D interpolation is a product of 1-D ones, so it runs as one 1-D pass per
// resized axis (the reference kernel sums over every tap combination per output element). Each pass reads
// whole contiguous rows after the axis, so the inner loop vectorizes; rows are split across the pool.
Status resize_separable_f32(KernelContext& ctx, const Tensor& x, const std::vector<std::vector<ResizeTaps>>& taps,
                            const Dims& out) {
  Dims dims = x.dims();
  std::vector<float> cur(x.data<float>(), x.data<float>() + x.num_elements()), next;
  for (size_t d = 0; d < dims.size(); ++d) {
    bool identity = out[d] == dims[d];
    for (int64_t o = 0; identity && o < out[d]; ++o) {
      const ResizeTaps& t = taps[d][static_cast<size_t>(o)];
      identity = t.idx.size() == 1 && t.idx[0] == o && t.w[0] == 1.0;
    }
    if (identity) continue;
    const int64_t outer = product(Dims(dims.begin(), dims.begin() + static_cast<int64_t>(d)));
    const int64_t inner = product(Dims(dims.begin() + static_cast<int64_t>(d) + 1, dims.end()));
    const int64_t in_d = dims[d], out_d = out[d];
    next.assign(static_cast<size_t>(outer * out_d * inner), 0.0f);
    ctx.parallel_for(outer * out_d, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, inner)),
                     [&](int64_t r0, int64_t r1) {
                       for (int64_t row = r0; row < r1; ++row) {
                         const int64_t o_outer = row / out_d, od = row % out_d;
                         const ResizeTaps& t = taps[d][static_cast<size_t>(od)];
                         float* dst = next.data() + row * inner;
                         for (size_t k = 0; k < t.idx.size(); ++k) {
                           const float w = static_cast<float>(t.w[k]);
                           const float* src = cur.data() + (o_outer * in_d + t.idx[k]) * inner;
                           for (int64_t j = 0; j < inner; ++j) dst[j] += w * src[j];
                         }
                       }
                     });
    cur.swap(next);
    dims[d] = out_d;
  }
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output(0, DType::kFloat32, out));
  std::copy(cur.begin(), cur.end(), y->data<float>());
  return Status::ok();
}

}  // namespace

bool resize_separable_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  ResizePlan plan;
  return x && x->dtype() == DType::kFloat32 && resize_plan(ctx, plan).is_ok() && !plan.any_extrapolation;
}

Status resize_separable_kernel(KernelContext& ctx) {
  ResizePlan plan;
  KILN_RETURN_IF_ERROR(resize_plan(ctx, plan));
  return resize_separable_f32(ctx, *ctx.input(0), plan.taps, plan.out);
}

}  // namespace kiln::cpu
