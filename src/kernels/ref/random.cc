// Random generators (seeded with the 'seed' attribute when present). Everything computes in double and rounds to the
// output dtype.
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

// Random generators (seeded with the 'seed' attribute when present)

namespace {

std::mt19937_64 make_engine(const KernelContext& ctx) {
  const ir::Attribute* a = ctx.attr("seed");
  if (a && a->type == ir::AttrType::kFloat) {
    uint32_t bits = 0;
    std::memcpy(&bits, &a->f, sizeof(bits));
    return std::mt19937_64(bits);
  }
  std::random_device rd;
  return std::mt19937_64((static_cast<uint64_t>(rd()) << 32) ^ rd());
}

StatusOr<std::vector<int64_t>> shape_attr(const KernelContext& ctx) {
  const ir::Attribute* a = ctx.attr("shape");
  if (!a || a->type != ir::AttrType::kInts) return ctx.error("attribute 'shape' is required but missing");
  int64_t n = 1;
  for (int64_t d : a->ints) {
    if (d < 0) return ctx.error("attribute 'shape' " + dims_to_string(a->ints) + " has a negative dimension");
    if (d > 0 && n > kMaxGenerated / d) {
      return ctx.error("attribute 'shape' " + dims_to_string(a->ints) + " has too many elements");
    }
    n *= d;
  }
  return a->ints;
}

int64_t count_of(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

template <typename Gen>
Status random_fill(KernelContext& ctx, DType dt, const std::vector<int64_t>& dims, Gen gen) {
  if (!is_float_dtype(dt)) return ctx.unsupported_dtype(dt, "the requested output dtype");
  std::vector<double> v(static_cast<size_t>(count_of(dims)));
  for (auto& e : v) e = gen();
  return emit(ctx, 0, dt, dims, v);
}

Status random_normal(KernelContext& ctx, DType dt, const std::vector<int64_t>& dims) {
  auto eng = make_engine(ctx);
  std::normal_distribution<double> dist(ctx.attr_float("mean", 0.0f), ctx.attr_float("scale", 1.0f));
  return random_fill(ctx, dt, dims, [&] { return dist(eng); });
}

Status random_uniform(KernelContext& ctx, DType dt, const std::vector<int64_t>& dims) {
  auto eng = make_engine(ctx);
  const double low = ctx.attr_float("low", 0.0f), high = ctx.attr_float("high", 1.0f);
  if (high < low) return ctx.error("attribute 'high' is below 'low'");
  std::uniform_real_distribution<double> dist(low, high);
  return random_fill(ctx, dt, dims, [&] { return dist(eng); });
}

}  // namespace

Status random_normal_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", DType::kFloat32));
  KILN_ASSIGN_OR_RETURN(auto dims, shape_attr(ctx));
  return random_normal(ctx, dt, dims);
}

Status random_uniform_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", DType::kFloat32));
  KILN_ASSIGN_OR_RETURN(auto dims, shape_attr(ctx));
  return random_uniform(ctx, dt, dims);
}

Status random_normal_like_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", x->dtype()));
  return random_normal(ctx, dt, x->dims());
}

Status random_uniform_like_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", x->dtype()));
  return random_uniform(ctx, dt, x->dims());
}

Status bernoulli_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (!is_float_dtype(x->dtype())) return ctx.unsupported_dtype(x->dtype());
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", x->dtype()));
  if (dt == DType::kString) return ctx.unsupported_dtype(dt, "the requested output dtype");
  auto eng = make_engine(ctx);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto p = to_doubles(*x);
  std::vector<double> v(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (!(p[i] >= 0 && p[i] <= 1)) {
      return ctx.error("probability " + std::to_string(p[i]) + " at index " + std::to_string(i) + " is outside [0, 1]");
    }
    v[i] = u(eng) < p[i] ? 1.0 : 0.0;
  }
  return emit(ctx, 0, dt, x->dims(), v);
}

Status multinomial_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (!is_float_dtype(x->dtype())) return ctx.unsupported_dtype(x->dtype());
  if (x->rank() != 2) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) + " but [batch_size, class_size] was expected");
  }
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", DType::kInt32));
  if (dt != DType::kInt32 && dt != DType::kInt64) {
    return ctx.error(std::string("attribute 'dtype' is ") + dtype_name(dt) + " but int32 or int64 was expected");
  }
  const int64_t samples = ctx.attr_int("sample_size", 1);
  if (samples < 0) return ctx.error("attribute 'sample_size' is negative");
  const int64_t batch = x->dims()[0], classes = x->dims()[1];
  if (classes < 1) return ctx.error("class_size is 0; at least one class was expected");
  auto eng = make_engine(ctx);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto lp = to_doubles(*x);
  std::vector<double> out(static_cast<size_t>(batch * samples));
  std::vector<double> cdf(static_cast<size_t>(classes));
  for (int64_t b = 0; b < batch; ++b) {
    double mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, lp[static_cast<size_t>(b * classes + c)]);
    double acc = 0;
    for (int64_t c = 0; c < classes; ++c) {
      acc += std::exp(lp[static_cast<size_t>(b * classes + c)] - mx);
      cdf[static_cast<size_t>(c)] = acc;
    }
    for (int64_t s = 0; s < samples; ++s) {
      const double r = u(eng) * acc;
      int64_t c = 0;
      while (c < classes - 1 && cdf[static_cast<size_t>(c)] <= r) ++c;
      out[static_cast<size_t>(b * samples + s)] = static_cast<double>(c);
    }
  }
  return emit(ctx, 0, dt, {batch, samples}, out);
}

}  // namespace kiln::cpu
