// Softmax, LogSoftmax, Hardmax and Dropout.
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

// ---------------------------------------------------------------- softmax family

namespace {

enum class SoftKind { kSoftmax, kLogSoftmax, kHardmax };

Status softmax_family(KernelContext& ctx, SoftKind kind) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (input)"));
  const int64_t rank = static_cast<int64_t>(x->rank());
  const bool legacy = ctx.opset() < 13;
  if (rank == 0) return ctx.error("input must have rank >= 1");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", legacy ? 1 : -1), rank));
  std::vector<bool> red(static_cast<size_t>(rank), false);
  if (legacy) {
    for (int64_t d = axis; d < rank; ++d) red[static_cast<size_t>(d)] = true;
  } else {
    red[static_cast<size_t>(axis)] = true;
  }
  Vec xv = to_doubles(*x), y(xv.size(), 0.0);
  for_each_group(x->dims(), red, [&](const std::vector<size_t>& g) {
    if (g.empty()) return;
    double mx = -std::numeric_limits<double>::infinity();
    size_t arg = g[0];
    for (size_t i : g) {
      if (xv[i] > mx) {
        mx = xv[i];
        arg = i;
      }
    }
    if (kind == SoftKind::kHardmax) {
      y[arg] = 1.0;
      return;
    }
    double s = 0;
    for (size_t i : g) s += std::exp(xv[i] - mx);
    for (size_t i : g) y[i] = kind == SoftKind::kSoftmax ? std::exp(xv[i] - mx) / s : xv[i] - mx - std::log(s);
  });
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

}  // namespace

Status softmax_kernel(KernelContext& ctx) { return softmax_family(ctx, SoftKind::kSoftmax); }
Status logsoftmax_kernel(KernelContext& ctx) { return softmax_family(ctx, SoftKind::kLogSoftmax); }
Status hardmax_kernel(KernelContext& ctx) { return softmax_family(ctx, SoftKind::kHardmax); }

Status dropout_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (data)"));
  double ratio = ctx.attr_float("ratio", 0.5f);
  bool training = false;
  if (ctx.opset() >= 12) {
    if (const Tensor* r = ctx.input(1)) {
      if (r->num_elements() != 1) return ctx.error("input 1 (ratio) must be a scalar");
      ratio = to_doubles(*r)[0];
    }
    if (const Tensor* t = ctx.input(2)) {
      if (t->num_elements() != 1) return ctx.error("input 2 (training_mode) must be a scalar");
      training = to_doubles(*t)[0] != 0;
    }
  }
  if (ratio < 0 || ratio >= 1) {
    if (training) return ctx.error("ratio must be in [0, 1), got " + std::to_string(ratio));
  }
  const int64_t n = x->num_elements();
  Vec mask(static_cast<size_t>(n), 1.0);
  if (!training || ratio == 0) {
    KILN_ASSIGN_OR_RETURN(Tensor copy, x->clone());
    ctx.set_output(0, std::move(copy));
  } else {
    std::mt19937_64 rng(static_cast<uint64_t>(ctx.attr_int("seed", 0)));
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Vec xv = to_doubles(*x), y(xv.size());
    const double scale = 1.0 / (1.0 - ratio);
    for (size_t i = 0; i < xv.size(); ++i) {
      mask[i] = u(rng) >= ratio ? 1.0 : 0.0;
      y[i] = xv[i] * mask[i] * scale;
    }
    KILN_RETURN_IF_ERROR(write_output(ctx, 0, x->dtype(), x->dims(), y));
  }
  if (wants_output(ctx, 1)) {
    const DType md = ctx.opset() >= 10 ? DType::kBool : x->dtype();
    KILN_RETURN_IF_ERROR(write_output(ctx, 1, md, x->dims(), mask));
  }
  return Status::ok();
}

}  // namespace kiln::cpu
