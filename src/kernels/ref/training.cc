// Training optimizers of ai.onnx.preview.training: Adagrad, Momentum, Adam. Everything computes in double and rounds to
// the output dtype.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/misc_util.h"

namespace kiln::cpu {

using namespace misc;

// Training optimizers (ai.onnx.preview.training)

namespace {

// Reads R, T and `groups` equally long lists of tensors (X, G, ...), checking shapes and dtypes.
struct OptimizerInputs {
  double r = 0;
  int64_t t = 0;
  size_t n = 0;
  std::vector<std::vector<const Tensor*>> groups;
};

StatusOr<OptimizerInputs> optimizer_inputs(const KernelContext& ctx, size_t groups) {
  OptimizerInputs in;
  KILN_ASSIGN_OR_RETURN(in.r, scalar_value(ctx, 0, "the learning rate R"));
  KILN_ASSIGN_OR_RETURN(in.t, scalar_int(ctx, 1, "the update count T"));
  if (ctx.num_inputs() < 2 || (ctx.num_inputs() - 2) % groups != 0) {
    return ctx.error("has " + std::to_string(ctx.num_inputs()) + " inputs but R, T and " + std::to_string(groups) +
                     " equally long lists of tensors were expected");
  }
  in.n = (ctx.num_inputs() - 2) / groups;
  in.groups.assign(groups, {});
  for (size_t g = 0; g < groups; ++g) {
    for (size_t i = 0; i < in.n; ++i) {
      const size_t idx = 2 + g * in.n + i;
      KILN_ASSIGN_OR_RETURN(const Tensor* tt, ctx.required_input(idx));
      if (!is_float_dtype(tt->dtype())) return ctx.unsupported_dtype(tt->dtype(), "input " + std::to_string(idx));
      const Tensor* x = g == 0 ? tt : in.groups[0][i];
      if (tt->dims() != x->dims()) {
        return ctx.error("input " + std::to_string(idx) + " has shape " + dims_to_string(tt->dims()) +
                         " but the matching X has shape " + dims_to_string(x->dims()));
      }
      in.groups[g].push_back(tt);
    }
  }
  return in;
}

}  // namespace

Status adagrad_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(OptimizerInputs in, optimizer_inputs(ctx, 3));
  const double decay = ctx.attr_float("decay_factor", 0.0f);
  const double eps = ctx.attr_float("epsilon", 1e-6f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const double r = in.r / (1 + static_cast<double>(in.t) * decay);
  for (size_t i = 0; i < in.n; ++i) {
    const Tensor& xt = *in.groups[0][i];
    auto x = to_doubles(xt), g = to_doubles(*in.groups[1][i]), h = to_doubles(*in.groups[2][i]);
    std::vector<double> xn(x.size()), hn(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      hn[k] = h[k] + gr * gr;
      xn[k] = x[k] - r * gr / (std::sqrt(hn[k]) + eps);
    }
    KILN_RETURN_IF_ERROR(emit(ctx, i, xt.dtype(), xt.dims(), xn));
    KILN_RETURN_IF_ERROR(emit(ctx, in.n + i, in.groups[2][i]->dtype(), xt.dims(), hn));
  }
  return Status::ok();
}

Status momentum_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(OptimizerInputs in, optimizer_inputs(ctx, 3));
  const double alpha = ctx.attr_float("alpha", 0.0f);
  const double beta = ctx.attr_float("beta", 0.0f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const std::string mode = ctx.attr_string("mode", "standard");
  if (mode != "standard" && mode != "nesterov") {
    return ctx.error("attribute 'mode' is '" + mode + "' but standard or nesterov was expected");
  }
  const double beta_adj = in.t > 0 ? beta : 1.0;
  for (size_t i = 0; i < in.n; ++i) {
    const Tensor& xt = *in.groups[0][i];
    auto x = to_doubles(xt), g = to_doubles(*in.groups[1][i]), v = to_doubles(*in.groups[2][i]);
    std::vector<double> xn(x.size()), vn(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      vn[k] = alpha * v[k] + beta_adj * gr;
      xn[k] = mode == "nesterov" ? x[k] - in.r * (gr + alpha * vn[k]) : x[k] - in.r * vn[k];
    }
    KILN_RETURN_IF_ERROR(emit(ctx, i, xt.dtype(), xt.dims(), xn));
    KILN_RETURN_IF_ERROR(emit(ctx, in.n + i, in.groups[2][i]->dtype(), xt.dims(), vn));
  }
  return Status::ok();
}

Status adam_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(OptimizerInputs in, optimizer_inputs(ctx, 4));
  const double alpha = ctx.attr_float("alpha", 0.9f);
  const double beta = ctx.attr_float("beta", 0.999f);
  const double eps = ctx.attr_float("epsilon", 1e-6f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const double norm_post = ctx.attr_float("norm_coefficient_post", 0.0f);
  const double t = static_cast<double>(in.t);
  const double r = in.t > 0 ? in.r * std::sqrt(1 - std::pow(beta, t)) / (1 - std::pow(alpha, t)) : in.r;
  for (size_t i = 0; i < in.n; ++i) {
    const Tensor& xt = *in.groups[0][i];
    auto x = to_doubles(xt), g = to_doubles(*in.groups[1][i]), v = to_doubles(*in.groups[2][i]),
         h = to_doubles(*in.groups[3][i]);
    std::vector<double> xn(x.size()), vn(x.size()), hn(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      vn[k] = alpha * v[k] + (1 - alpha) * gr;
      hn[k] = beta * h[k] + (1 - beta) * gr * gr;
      xn[k] = (1 - norm_post) * (x[k] - r * vn[k] / (std::sqrt(hn[k]) + eps));
    }
    KILN_RETURN_IF_ERROR(emit(ctx, i, xt.dtype(), xt.dims(), xn));
    KILN_RETURN_IF_ERROR(emit(ctx, in.n + i, in.groups[2][i]->dtype(), xt.dims(), vn));
    KILN_RETURN_IF_ERROR(emit(ctx, 2 * in.n + i, in.groups[3][i]->dtype(), xt.dims(), hn));
  }
  return Status::ok();
}

}  // namespace kiln::cpu
