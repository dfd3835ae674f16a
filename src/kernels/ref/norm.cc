// Normalizations: BatchNormalization, InstanceNormalization, LayerNormalization (and ai.kiln's with
// Skip), GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization.
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

// ---------------------------------------------------------------- normalization

Status batchnormalization_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 5; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  KILN_RETURN_IF_ERROR(require_float(ctx, x, "input 0 (X)"));
  if (x.rank() < 2) return ctx.error("input X must have rank >= 2, got " + dstr(x.dims()));
  const int64_t N = x.dims()[0], C = x.dims()[1], sp = product(x.dims(), 2);
  Vec xv = to_doubles(x);
  Vec sc = to_doubles(*ctx.input(1)), bi = to_doubles(*ctx.input(2)), mean = to_doubles(*ctx.input(3)),
      var = to_doubles(*ctx.input(4));
  const char* names[] = {"", "scale", "B", "input_mean", "input_var"};
  Vec* vs[] = {nullptr, &sc, &bi, &mean, &var};
  for (int i = 1; i < 5; ++i) {
    if (static_cast<int64_t>(vs[i]->size()) != C) {
      return ctx.error(std::string("input ") + std::to_string(i) + " (" + names[i] + ") has " +
                       std::to_string(vs[i]->size()) + " elements; expected C = " + std::to_string(C));
    }
  }
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const double momentum = ctx.attr_float("momentum", 0.9f);
  bool training = ctx.opset() >= 14 ? ctx.attr_int("training_mode", 0) != 0 : false;
  if (ctx.opset() < 14 && ctx.opset() >= 9 && wants_output(ctx, 1)) training = true;
  Vec use_mean = mean, use_var = var;
  if (training) {
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, s2 = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < sp; ++j) s += xv[static_cast<size_t>((n * C + c) * sp + j)];
      const double cnt = static_cast<double>(N * sp);
      const double m = s / cnt;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < sp; ++j) {
          double d = xv[static_cast<size_t>((n * C + c) * sp + j)] - m;
          s2 += d * d;
        }
      use_mean[static_cast<size_t>(c)] = m;
      use_var[static_cast<size_t>(c)] = s2 / cnt;
    }
  }
  Vec y(xv.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t c = (i / static_cast<size_t>(sp)) % static_cast<size_t>(C);
    y[i] = sc[c] * (xv[i] - use_mean[c]) / std::sqrt(use_var[c] + eps) + bi[c];
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, x.dtype(), x.dims(), y));
  if (training) {
    Vec rm(static_cast<size_t>(C)), rv(static_cast<size_t>(C));
    for (size_t c = 0; c < rm.size(); ++c) {
      rm[c] = mean[c] * momentum + use_mean[c] * (1 - momentum);
      rv[c] = var[c] * momentum + use_var[c] * (1 - momentum);
    }
    if (wants_output(ctx, 1)) KILN_RETURN_IF_ERROR(write_output(ctx, 1, ctx.input(3)->dtype(), {C}, rm));
    if (wants_output(ctx, 2)) KILN_RETURN_IF_ERROR(write_output(ctx, 2, ctx.input(4)->dtype(), {C}, rv));
    if (wants_output(ctx, 3)) KILN_RETURN_IF_ERROR(write_output(ctx, 3, ctx.input(3)->dtype(), {C}, use_mean));
    if (wants_output(ctx, 4)) {
      Vec inv(static_cast<size_t>(C));
      for (size_t c = 0; c < inv.size(); ++c) inv[c] = 1.0 / std::sqrt(use_var[c] + eps);
      KILN_RETURN_IF_ERROR(write_output(ctx, 4, ctx.input(4)->dtype(), {C}, inv));
    }
  }
  return Status::ok();
}

Status instancenormalization_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 3; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  KILN_RETURN_IF_ERROR(require_float(ctx, x, "input 0 (input)"));
  if (x.rank() < 3) return ctx.error("input must have rank >= 3, got " + dstr(x.dims()));
  const int64_t N = x.dims()[0], C = x.dims()[1], sp = product(x.dims(), 2);
  Vec xv = to_doubles(x), sc = to_doubles(*ctx.input(1)), bi = to_doubles(*ctx.input(2));
  if (static_cast<int64_t>(sc.size()) != C || static_cast<int64_t>(bi.size()) != C) {
    return ctx.error("scale and B must have C = " + std::to_string(C) + " elements");
  }
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  Vec y(xv.size());
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const size_t c = static_cast<size_t>(nc % C);
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < sp; ++j) s += xv[static_cast<size_t>(nc * sp + j)];
    const double m = s / static_cast<double>(sp);
    for (int64_t j = 0; j < sp; ++j) {
      double d = xv[static_cast<size_t>(nc * sp + j)] - m;
      s2 += d * d;
    }
    const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(sp) + eps);
    for (int64_t j = 0; j < sp; ++j) {
      const size_t i = static_cast<size_t>(nc * sp + j);
      y[i] = sc[c] * (xv[i] - m) * inv + bi[c];
    }
  }
  return write_output(ctx, 0, x.dtype(), x.dims(), y);
}

Status add_kernel(KernelContext& ctx);  // elementwise.cc

Status layernormalization_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* scale, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  // ai.kiln's optional Skip (input 3): the residual sum X + Skip (by the Add kernel) is normalized.
  const Tensor* skip = ctx.input(3);
  Tensor summed;
  if (skip) {
    Value xv(*x), sv(*skip);
    KernelContext sub(ctx.node(), 14, {&xv, &sv}, 1);
    KILN_RETURN_IF_ERROR(add_kernel(sub));
    summed = sub.take_output(0).tensor();
    x = &summed;
    skip = nullptr;
  }
  const int64_t rank = static_cast<int64_t>(x->rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", -1), rank));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const Dims norm_dims(x->dims().begin() + axis, x->dims().end());
  const int64_t outer = product(x->dims(), 0, static_cast<size_t>(axis)), inner = product(norm_dims);
  auto bcast = [&](const Tensor* t, const std::string& which, Vec& out) -> Status {
    auto b = broadcast_shapes(t->dims(), norm_dims);
    if (!b.is_ok() || *b != norm_dims || t->rank() > norm_dims.size()) {
      return ctx.error(which + " of shape " + dstr(t->dims()) + " cannot be broadcast to the normalized shape " +
                       dstr(norm_dims));
    }
    auto st = broadcast_strides(t->dims(), norm_dims);
    Vec v = to_doubles(*t);
    out.assign(static_cast<size_t>(inner), 0.0);
    Dims idx(norm_dims.size(), 0);
    for (int64_t i = 0; i < inner; ++i, next_index(idx, norm_dims)) {
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * st[d];
      out[static_cast<size_t>(i)] = v[static_cast<size_t>(off)];
    }
    return Status::ok();
  };
  Vec sc, bi(static_cast<size_t>(inner), 0.0);
  KILN_RETURN_IF_ERROR(bcast(scale, "input 1 (Scale)", sc));
  if (const Tensor* b = ctx.input(2)) KILN_RETURN_IF_ERROR(bcast(b, "input 2 (B)", bi));
  Vec xv = to_doubles(*x), y(xv.size()), means(static_cast<size_t>(outer)), invs(static_cast<size_t>(outer));
  for (int64_t o = 0; o < outer; ++o) {
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < inner; ++j) s += xv[static_cast<size_t>(o * inner + j)];
    const double m = inner > 0 ? s / static_cast<double>(inner) : 0.0;
    for (int64_t j = 0; j < inner; ++j) {
      double d = xv[static_cast<size_t>(o * inner + j)] - m;
      s2 += d * d;
    }
    const double inv = 1.0 / std::sqrt((inner > 0 ? s2 / static_cast<double>(inner) : 0.0) + eps);
    means[static_cast<size_t>(o)] = m;
    invs[static_cast<size_t>(o)] = inv;
    for (int64_t j = 0; j < inner; ++j) {
      const size_t i = static_cast<size_t>(o * inner + j);
      y[i] = (xv[i] - m) * inv * sc[static_cast<size_t>(j)] + bi[static_cast<size_t>(j)];
    }
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, x->dtype(), x->dims(), y));
  Dims sd = x->dims();
  for (size_t d = static_cast<size_t>(axis); d < sd.size(); ++d) sd[d] = 1;
  const int64_t stash = ctx.attr_int("stash_type", 1);
  const DType st = stash == 1 ? DType::kFloat32 : x->dtype();
  if (wants_output(ctx, 1)) KILN_RETURN_IF_ERROR(write_output(ctx, 1, st, sd, means));
  if (wants_output(ctx, 2)) KILN_RETURN_IF_ERROR(write_output(ctx, 2, st, sd, invs));
  return Status::ok();
}

Status groupnormalization_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 3; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  KILN_RETURN_IF_ERROR(require_float(ctx, x, "input 0 (X)"));
  if (x.rank() < 2) return ctx.error("input X must have rank >= 2, got " + dstr(x.dims()));
  const int64_t G = ctx.attr_int("num_groups", 0);
  const int64_t N = x.dims()[0], C = x.dims()[1], sp = product(x.dims(), 2);
  if (G <= 0 || C % G != 0) {
    return ctx.error("num_groups " + std::to_string(G) + " must be positive and divide channels " + std::to_string(C));
  }
  Vec xv = to_doubles(x), sc = to_doubles(*ctx.input(1)), bi = to_doubles(*ctx.input(2));
  const bool per_channel_affine = static_cast<int64_t>(sc.size()) == C && ctx.opset() >= 21;
  const int64_t want = per_channel_affine ? C : (static_cast<int64_t>(sc.size()) == C ? C : G);
  if (static_cast<int64_t>(sc.size()) != want || static_cast<int64_t>(bi.size()) != want) {
    return ctx.error("scale and bias must have num_groups (" + std::to_string(G) + ") or C (" + std::to_string(C) +
                     ") elements");
  }
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const int64_t Cg = C / G, gsz = Cg * sp;
  Vec y(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t base = (n * C + g * Cg) * sp;
      double s = 0, s2 = 0;
      for (int64_t j = 0; j < gsz; ++j) s += xv[static_cast<size_t>(base + j)];
      const double m = s / static_cast<double>(gsz);
      for (int64_t j = 0; j < gsz; ++j) {
        double d = xv[static_cast<size_t>(base + j)] - m;
        s2 += d * d;
      }
      const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(gsz) + eps);
      for (int64_t j = 0; j < gsz; ++j) {
        const size_t i = static_cast<size_t>(base + j);
        const size_t a = want == C ? static_cast<size_t>(g * Cg + j / sp) : static_cast<size_t>(g);
        y[i] = (xv[i] - m) * inv * sc[a] + bi[a];
      }
    }
  return write_output(ctx, 0, x.dtype(), x.dims(), y);
}

Status lrn_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  if (x->rank() < 2) return ctx.error("input X must have rank >= 2, got " + dstr(x->dims()));
  const double alpha = ctx.attr_float("alpha", 1e-4f), beta = ctx.attr_float("beta", 0.75f),
               bias = ctx.attr_float("bias", 1.0f);
  const int64_t size = ctx.attr_int("size", 0);
  if (size <= 0) return ctx.error("attribute size must be positive");
  const int64_t N = x->dims()[0], C = x->dims()[1], sp = product(x->dims(), 2);
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  Vec xv = to_doubles(*x), y(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < sp; ++j) {
        double s = 0;
        for (int64_t k = std::max<int64_t>(0, c - lo); k <= std::min(C - 1, c + hi); ++k) {
          double v = xv[static_cast<size_t>((n * C + k) * sp + j)];
          s += v * v;
        }
        const size_t i = static_cast<size_t>((n * C + c) * sp + j);
        y[i] = xv[i] / std::pow(bias + alpha / static_cast<double>(size) * s, beta);
      }
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

namespace {}  // namespace

Status meanvariancenormalization_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  const int64_t rank = static_cast<int64_t>(x->rank());
  Dims axes = ctx.attr_ints("axes", {0, 2, 3});
  std::vector<bool> red(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    KILN_ASSIGN_OR_RETURN(int64_t n, normalize_axis(ctx, a, rank));
    red[static_cast<size_t>(n)] = true;
  }
  Vec xv = to_doubles(*x), y(xv.size());
  for_each_group(x->dims(), red, [&](const std::vector<size_t>& g) {
    double s = 0, s2 = 0;
    for (size_t i : g) {
      s += xv[i];
      s2 += xv[i] * xv[i];
    }
    const double n = static_cast<double>(g.size());
    const double m = s / n;
    const double sd = std::sqrt(std::max(0.0, s2 / n - m * m));
    for (size_t i : g) y[i] = (xv[i] - m) / (sd + 1e-9);
  });
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

Status lpnormalization_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (input)"));
  const int64_t rank = static_cast<int64_t>(x->rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", -1), rank));
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) return ctx.error("attribute p must be 1 or 2, got " + std::to_string(p));
  std::vector<bool> red(static_cast<size_t>(rank), false);
  red[static_cast<size_t>(axis)] = true;
  Vec xv = to_doubles(*x), y(xv.size());
  for_each_group(x->dims(), red, [&](const std::vector<size_t>& g) {
    double s = 0;
    for (size_t i : g) s += p == 1 ? std::fabs(xv[i]) : xv[i] * xv[i];
    const double norm = p == 1 ? s : std::sqrt(s);
    for (size_t i : g) y[i] = norm == 0 ? 0.0 : xv[i] / norm;
  });
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

}  // namespace kiln::cpu
