// Pooling: MaxPool, AveragePool, LpPool and their global forms.
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

// ---------------------------------------------------------------- pooling

namespace {

enum class PoolKind { kMax, kAvg, kLp };

Status pool_kernel(KernelContext& ctx, PoolKind kind) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *x, "input 0 (X)"));
  if (kind != PoolKind::kMax) KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  ConvGeom g;
  KILN_RETURN_IF_ERROR(pool_setup(ctx, x->dims(), g));
  const size_t nsp = g.in.size();
  const bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  const ir::Attribute* pa = ctx.attr("p");
  const double p =
      pa && pa->type == ir::AttrType::kFloat ? static_cast<double>(pa->f) : static_cast<double>(ctx.attr_int("p", 2));
  const int64_t storage_order = ctx.attr_int("storage_order", 0);
  const int64_t in_sz = product(g.in), out_sz = product(g.out), k_sz = product(g.kernel);
  auto in_str = strides_of(g.in);
  // column-major strides for storage_order = 1
  Dims col_str(nsp, 1);
  for (size_t d = 1; d < nsp; ++d) col_str[d] = col_str[d - 1] * g.in[d - 1];
  Vec xv = to_doubles(*x);
  Vec y(static_cast<size_t>(g.N * g.C * out_sz), 0.0), ind(y.size(), 0.0);
  Dims oi(nsp), ki(nsp);
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const double* px = xv.data() + nc * in_sz;
    std::fill(oi.begin(), oi.end(), 0);
    for (int64_t o = 0; o < out_sz; ++o, next_index(oi, g.out)) {
      double acc = kind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      int64_t best = -1, count = 0;
      std::fill(ki.begin(), ki.end(), 0);
      for (int64_t k = 0; k < k_sz; ++k, next_index(ki, g.kernel)) {
        int64_t off = 0, coff = 0;
        bool inside = true, in_padded = true;
        for (size_t d = 0; d < nsp; ++d) {
          int64_t pos = oi[d] * g.strides[d] - g.pad_begin[d] + ki[d] * g.dilations[d];
          if (pos < 0 || pos >= g.in[d]) inside = false;
          if (pos < -g.pad_begin[d] || pos >= g.in[d] + g.pad_end[d]) in_padded = false;
          off += pos * in_str[d];
          coff += pos * col_str[d];
        }
        if (inside) {
          const double v = px[off];
          if (kind == PoolKind::kMax) {
            if (best < 0 || v > acc) {
              acc = v;
              best = storage_order == 1 ? coff : off;
            }
          } else if (kind == PoolKind::kAvg) {
            acc += v;
          } else {
            acc += std::pow(std::fabs(v), p);
          }
          ++count;
        } else if (include_pad && in_padded) {
          ++count;
        }
      }
      const size_t yi = static_cast<size_t>(nc * out_sz + o);
      if (kind == PoolKind::kMax) {
        y[yi] = acc;
        ind[yi] = static_cast<double>(nc * in_sz + std::max<int64_t>(best, 0));
      } else if (kind == PoolKind::kAvg) {
        y[yi] = count > 0 ? acc / static_cast<double>(count) : 0.0;
      } else {
        y[yi] = std::pow(acc, 1.0 / p);
      }
    }
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, x->dtype(), out_dims(g, g.C), y));
  if (kind == PoolKind::kMax && wants_output(ctx, 1)) {
    KILN_RETURN_IF_ERROR(write_output(ctx, 1, DType::kInt64, out_dims(g, g.C), ind));
  }
  return Status::ok();
}

Status global_pool(KernelContext& ctx, PoolKind kind) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  if (x->rank() < 2) return ctx.error("input X must have rank >= 2 (N, C, spatial...), got " + dstr(x->dims()));
  const int64_t nc = x->dims()[0] * x->dims()[1], sp = product(x->dims(), 2);
  const ir::Attribute* pa = ctx.attr("p");
  const double p =
      pa && pa->type == ir::AttrType::kFloat ? static_cast<double>(pa->f) : static_cast<double>(ctx.attr_int("p", 2));
  Vec xv = to_doubles(*x), y(static_cast<size_t>(nc));
  for (int64_t i = 0; i < nc; ++i) {
    double acc = kind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
    for (int64_t j = 0; j < sp; ++j) {
      double v = xv[static_cast<size_t>(i * sp + j)];
      if (kind == PoolKind::kMax)
        acc = std::max(acc, v);
      else if (kind == PoolKind::kAvg)
        acc += v;
      else
        acc += std::pow(std::fabs(v), p);
    }
    if (kind == PoolKind::kAvg) acc /= static_cast<double>(sp);
    if (kind == PoolKind::kLp) acc = std::pow(acc, 1.0 / p);
    y[static_cast<size_t>(i)] = acc;
  }
  Dims od = x->dims();
  for (size_t d = 2; d < od.size(); ++d) od[d] = 1;
  return write_output(ctx, 0, x->dtype(), od, y);
}

}  // namespace

Status maxpool_kernel(KernelContext& ctx) { return pool_kernel(ctx, PoolKind::kMax); }

Status averagepool_kernel(KernelContext& ctx) { return pool_kernel(ctx, PoolKind::kAvg); }
Status lppool_kernel(KernelContext& ctx) { return pool_kernel(ctx, PoolKind::kLp); }
Status globalaveragepool_kernel(KernelContext& ctx) { return global_pool(ctx, PoolKind::kAvg); }
Status globalmaxpool_kernel(KernelContext& ctx) { return global_pool(ctx, PoolKind::kMax); }
Status globallppool_kernel(KernelContext& ctx) { return global_pool(ctx, PoolKind::kLp); }

}  // namespace kiln::cpu
