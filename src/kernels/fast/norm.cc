// Fast normalizations for float32: BatchNormalization at inference (batchnorm.f32: one scale and shift per
// channel, planes in parallel) and LayerNormalization, with ai.kiln's Skip (layernorm.rows: rows in parallel, on
// vmath's AVX2 rows where the ISA allows, reported as the detail).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/x86/vmath.h"

namespace kiln::cpu {

Status add_kernel(KernelContext& ctx);  // elementwise.cc

namespace {

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

// BatchNormalization in training mode (opset 14's training_mode; before, a running mean wanted).
bool training(const KernelContext& ctx) {
  if (ctx.opset() >= 14) return ctx.attr_int("training_mode", 0) != 0;
  return ctx.opset() >= 9 && wants_output(ctx, 1);
}

// LayerNormalization's rows: the normalized shape from `axis` on of X (or of X + Skip).
bool layernorm_rows(const KernelContext& ctx, int64_t& outer, int64_t& inner) {
  const Tensor* x = ctx.input(0);
  const Tensor* skip = ctx.input(3);
  if (!is_f32(x)) return false;
  std::vector<int64_t> dims = x->dims();
  if (skip) {
    auto b = broadcast_shapes(x->dims(), skip->dims());
    if (!b.is_ok() || !is_f32(skip)) return false;
    dims = *b;
  }
  auto axis = normalize_axis(ctx, ctx.attr_int("axis", -1), static_cast<int64_t>(dims.size()));
  if (!axis.is_ok()) return false;
  outer = product(dims, 0, static_cast<size_t>(*axis));
  inner = product(dims, static_cast<size_t>(*axis));
  return true;
}

}  // namespace

bool batchnorm_f32_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  if (!is_f32(x) || x->rank() < 2 || training(ctx) || wants_output(ctx, 1)) return false;
  for (size_t i = 1; i < 5; ++i) {
    const Tensor* t = ctx.input(i);
    if (!t || t->num_elements() != x->dims()[1]) return false;
  }
  return true;
}

// Inference: one scale and shift per channel, planes in parallel.
Status batchnorm_f32_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const int64_t N = x.dims()[0], C = x.dims()[1], sp = product(x.dims(), 2);
  const std::vector<double> sc = to_doubles(*ctx.input(1)), bi = to_doubles(*ctx.input(2)),
                            mean = to_doubles(*ctx.input(3)), var = to_doubles(*ctx.input(4));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  std::vector<float> a(static_cast<size_t>(C)), b(static_cast<size_t>(C));
  for (size_t c = 0; c < a.size(); ++c) {
    const double k = sc[c] / std::sqrt(var[c] + eps);
    a[c] = static_cast<float>(k);
    b[c] = static_cast<float>(bi[c] - mean[c] * k);
  }
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, x.dims()));
  const float* px = x.data<float>();
  float* py = out->data<float>();
  ctx.parallel_for(N * C, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, sp)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float ka = a[static_cast<size_t>(p % C)], kb = b[static_cast<size_t>(p % C)];
      for (int64_t j = 0; j < sp; ++j) py[p * sp + j] = px[p * sp + j] * ka + kb;
    }
  });
  return Status::ok();
}

bool layernorm_rows_supports(const KernelContext& ctx) {
  int64_t outer = 0, inner = 0;
  const Tensor* scale = ctx.input(1);
  const Tensor* bias = ctx.input(2);
  return layernorm_rows(ctx, outer, inner) && is_f32(scale) && scale->num_elements() == inner &&
         (!bias || (is_f32(bias) && bias->num_elements() == inner)) && !wants_output(ctx, 1) && !wants_output(ctx, 2);
}

Status layernorm_rows_kernel(KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* scale = ctx.input(1);
  const Tensor* bias_t = ctx.input(2);
  // ai.kiln's Skip (input 3): of X's shape it is added row by row below; broadcast, by the Add kernel first.
  const Tensor* skip = ctx.input(3);
  Tensor summed;
  if (skip && skip->dims() != x->dims()) {
    Value xv(*x), sv(*skip);
    KernelContext sub(ctx.node(), 14, {&xv, &sv}, 1);
    KILN_RETURN_IF_ERROR(add_kernel(sub));
    summed = sub.take_output(0).tensor();
    x = &summed;
    skip = nullptr;
  }
  int64_t outer = 0, inner = 0;
  layernorm_rows(ctx, outer, inner);
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, x->dims()));
  const float* px = x->data<float>();
  const float* ps = scale->data<float>();
  const float* pb = bias_t ? bias_t->data<float>() : nullptr;
  const float* pskip = skip ? skip->data<float>() : nullptr;
  float* py = out->data<float>();
  const bool avx2 = ctx.isa() >= Isa::kAvx2;
  ctx.parallel_for(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner)), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const float* xr = px + o * inner;
      float* yr = py + o * inner;
      if (pskip) {  // the sum goes to y's row, normalized in place (each element is read before it is written)
        const float* sr = pskip + o * inner;
        if (avx2) {
          vmath::add(ctx.isa(), xr, sr, yr, inner);
        } else {
          for (int64_t j = 0; j < inner; ++j) yr[j] = xr[j] + sr[j];
        }
        xr = yr;
      }
      if (avx2) {
        vmath::layernorm_row(ctx.isa(), xr, ps, pb, yr, inner, eps);
        continue;
      }
      double s = 0;
      for (int64_t j = 0; j < inner; ++j) s += xr[j];
      const float m = inner > 0 ? static_cast<float>(s / static_cast<double>(inner)) : 0.0f;
      double s2 = 0;
      for (int64_t j = 0; j < inner; ++j) {
        const float d = xr[j] - m;
        s2 += static_cast<double>(d) * d;
      }
      const float inv = static_cast<float>(1.0 / std::sqrt((inner > 0 ? s2 / static_cast<double>(inner) : 0.0) + eps));
      for (int64_t j = 0; j < inner; ++j) yr[j] = (xr[j] - m) * inv * ps[j] + (pb ? pb[j] : 0.0f);
    }
  });
  ctx.set_kernel_detail(std::string("layernorm_row.") + isa_name(avx2 ? ctx.isa() : Isa::kScalar));
  return Status::ok();
}

}  // namespace kiln::cpu
