// Element-wise operators: unary math, broadcasting binary arithmetic, comparisons, logic, Where, Clip.
// float16/bfloat16 compute in float32 and round back.
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/activation.h"
#include "kernels/kernel.h"
#include "kernels/ref/numeric.h"
#include "kernels/ref/tensor_util.h"

namespace kiln::cpu {
namespace {

// Calls f(out_index, offsets) for every element of `out_dims`, where offsets[k] is the element offset into
// operand k read with broadcasting.
template <size_t K, typename F>
void for_each_broadcast(const std::vector<int64_t>& out_dims, const std::array<std::vector<int64_t>, K>& strides,
                        F&& f) {
  const size_t rank = out_dims.size();
  int64_t total = 1;
  for (int64_t d : out_dims) total *= d;
  if (total == 0) return;
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, K> off{};
  for (int64_t i = 0; i < total; ++i) {
    f(i, off);
    for (size_t d = rank; d-- > 0;) {
      ++idx[d];
      for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
      if (idx[d] < out_dims[d]) break;
      for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * idx[d];
      idx[d] = 0;
    }
  }
}

template <typename T>
constexpr bool kIsFloat = std::is_floating_point_v<T>;

// Element-wise loops over at least this many elements per task are split across the session's pool.
constexpr int64_t kElementsPerTask = 1 << 16;

// ---- unary ----

template <bool AllowInt, typename Op>
Status unary(KernelContext& ctx, Op op) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  const DType dtype = in->dtype();
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*in));
  Status st = Status::ok();
  Tensor result;
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool> || (!kIsFloat<T> && !AllowInt)) {
      st = ctx.unsupported_dtype(dtype);
    } else {
      // The output comes from the run's memory unless it is computed in float for another dtype.
      auto out = x.dtype() == dtype ? tensor::alloc_output(ctx, 0, x.dtype(), x.dims())
                                    : Tensor::allocate(x.dtype(), x.dims());
      if (!out.is_ok()) {
        st = out.status();
        return;
      }
      const T* src = x.data<T>();
      T* dst = out->template data<T>();
      ctx.parallel_for(x.num_elements(), kElementsPerTask, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) dst[i] = static_cast<T>(op(src[i]));
      });
      result = std::move(out).value();
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype);
  KILN_RETURN_IF_ERROR(st);
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(result, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

}  // namespace

#define KILN_UNARY(name, allow_int, expr)                         \
  Status name(KernelContext& ctx) {                               \
    return unary<allow_int>(ctx, [&](auto x) { return (expr); }); \
  }

namespace {

// ---- binary ----

// `to_output`: the result is output 0 of the node, in its final dtype: it comes from the run's memory.
template <typename T, typename Out, typename Op>
Status binary_typed(KernelContext& ctx, const Tensor& a, const Tensor& b, DType out_dtype, Op op, Tensor& result,
                    bool to_output) {
  auto dims = broadcast_shapes(a.dims(), b.dims());
  if (!dims.is_ok()) return ctx.error(dims.status().message());
  if (to_output) {
    KILN_ASSIGN_OR_RETURN(result, tensor::alloc_output(ctx, 0, out_dtype, *dims));
  } else {
    KILN_ASSIGN_OR_RETURN(result, Tensor::allocate(out_dtype, *dims));
  }
  Out* dst = result.data<Out>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  if (a.dims() == b.dims()) {
    ctx.parallel_for(a.num_elements(), kElementsPerTask, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) dst[i] = static_cast<Out>(op(pa[i], pb[i]));
    });
    return Status::ok();
  }
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(a.dims(), *dims), broadcast_strides(b.dims(), *dims)};
  for_each_broadcast<2>(*dims, strides, [&](int64_t i, const std::array<int64_t, 2>& o) {
    dst[i] = static_cast<Out>(op(pa[o[0]], pb[o[1]]));
  });
  return Status::ok();
}

enum class OutKind { kSame, kBool };

// Applies op to two broadcast inputs of the same dtype. `allowed` filters dtypes (by tag) at compile time.
// `to_output`: the result is the node's output 0.
template <bool AllowBool, OutKind kind, typename Op>
Status binary(KernelContext& ctx, const Tensor& a_in, const Tensor& b_in, Op op, Tensor& result,
              bool to_output = false) {
  if (a_in.dtype() != b_in.dtype()) {
    return ctx.error(std::string("inputs have different dtypes: ") + dtype_name(a_in.dtype()) + " and " +
                     dtype_name(b_in.dtype()));
  }
  const DType dtype = a_in.dtype();
  KILN_ASSIGN_OR_RETURN(Tensor a, as_float(a_in));
  KILN_ASSIGN_OR_RETURN(Tensor b, as_float(b_in));
  Status st = Status::ok();
  bool ok = dispatch_numeric(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool> && !AllowBool) {
      st = ctx.unsupported_dtype(dtype);
    } else if constexpr (kind == OutKind::kBool) {
      st = binary_typed<T, bool>(
          ctx, a, b, DType::kBool, [&](T x, T y) { return op(x, y); }, result, to_output);
    } else {
      st = binary_typed<T, T>(
          ctx, a, b, a.dtype(), [&](T x, T y) { return op(x, y); }, result, to_output && a.dtype() == dtype);
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype);
  KILN_RETURN_IF_ERROR(st);
  if constexpr (kind == OutKind::kSame) {
    KILN_ASSIGN_OR_RETURN(result, from_float(result, dtype));
  }
  return Status::ok();
}

template <bool AllowBool, OutKind kind, typename Op>
Status binary_kernel(KernelContext& ctx, Op op) {
  KILN_ASSIGN_OR_RETURN(const Tensor* a, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* b, ctx.required_input(1));
  Tensor out;
  KILN_RETURN_IF_ERROR((binary<AllowBool, kind>(ctx, *a, *b, op, out, true)));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

// Max/Min/Sum/Mean: fold the inputs pairwise with broadcasting.
template <typename Op>
Status variadic(KernelContext& ctx, Op op) {
  KILN_ASSIGN_OR_RETURN(const Tensor* first, ctx.required_input(0));
  Tensor acc = *first;
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    KILN_ASSIGN_OR_RETURN(const Tensor* next, ctx.required_input(i));
    Tensor out;
    KILN_RETURN_IF_ERROR((binary<false, OutKind::kSame>(ctx, acc, *next, op, out)));
    acc = std::move(out);
  }
  if (ctx.num_inputs() == 1) {
    KILN_ASSIGN_OR_RETURN(acc, acc.clone());
  }
  ctx.set_output(0, std::move(acc));
  return Status::ok();
}

template <typename T>
T python_mod(T x, T y) {
  if constexpr (std::is_integral_v<T>) {
    if (y == 0) return 0;
    T r = static_cast<T>(x % y);
    if constexpr (std::is_signed_v<T>) {
      if (r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
    }
    return r;
  } else {
    T r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
  }
}

}  // namespace

// clang-format off
KILN_UNARY(abs_kernel, true, x < 0 ? -x : x)
KILN_UNARY(neg_kernel, true, -x)
KILN_UNARY(exp_kernel, false, std::exp(x))
KILN_UNARY(log_kernel, false, std::log(x))
KILN_UNARY(sqrt_kernel, false, std::sqrt(x))
KILN_UNARY(reciprocal_kernel, false, 1 / x)
KILN_UNARY(floor_kernel, false, std::floor(x))
KILN_UNARY(ceil_kernel, false, std::ceil(x))
KILN_UNARY(round_kernel, false, std::nearbyint(x))
KILN_UNARY(sin_kernel, false, std::sin(x))
KILN_UNARY(cos_kernel, false, std::cos(x))
KILN_UNARY(tan_kernel, false, std::tan(x))
KILN_UNARY(asin_kernel, false, std::asin(x))
KILN_UNARY(acos_kernel, false, std::acos(x))
KILN_UNARY(atan_kernel, false, std::atan(x))
KILN_UNARY(sinh_kernel, false, std::sinh(x))
KILN_UNARY(cosh_kernel, false, std::cosh(x))
KILN_UNARY(tanh_kernel, false, std::tanh(x))
KILN_UNARY(asinh_kernel, false, std::asinh(x))
KILN_UNARY(acosh_kernel, false, std::acosh(x))
KILN_UNARY(atanh_kernel, false, std::atanh(x))
KILN_UNARY(sigmoid_kernel, false, act::sigmoid(x))
KILN_UNARY(relu_kernel, true, act::relu(x))
KILN_UNARY(erf_kernel, false, std::erf(x))
KILN_UNARY(sign_kernel, true, (x > 0) - (x < 0))
KILN_UNARY(softplus_kernel, false, act::softplus(x))
KILN_UNARY(softsign_kernel, false, act::softsign(x))
KILN_UNARY(mish_kernel, false, x * std::tanh(std::log1p(std::exp(x))))
KILN_UNARY(hard_swish_kernel, false, act::hard_swish(x))
// clang-format on

Status hard_sigmoid_kernel(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 0.2f), beta = ctx.attr_float("beta", 0.5f);
  return unary<false>(ctx, [&](auto x) {
    using T = decltype(x);
    return act::hard_sigmoid(x, static_cast<T>(alpha), static_cast<T>(beta));
  });
}
Status elu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  return unary<false>(ctx, [&](auto x) { return act::elu(x, static_cast<decltype(x)>(alpha)); });
}
Status selu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.67326319217681884765625f);
  const float gamma = ctx.attr_float("gamma", 1.05070102214813232421875f);
  return unary<false>(ctx, [&](auto x) {
    using T = decltype(x);
    return x > 0 ? static_cast<T>(gamma * x) : static_cast<T>(gamma * (alpha * std::exp(x) - alpha));
  });
}
Status celu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  return unary<false>(ctx, [&](auto x) {
    using T = decltype(x);
    return std::max<T>(0, x) + std::min<T>(0, static_cast<T>(alpha * (std::exp(x / alpha) - 1)));
  });
}
Status leaky_relu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 0.01f);
  return unary<false>(ctx, [&](auto x) { return act::leaky_relu(x, static_cast<decltype(x)>(alpha)); });
}
Status thresholded_relu_kernel(KernelContext& ctx) {
  const float alpha = ctx.attr_float("alpha", 1.0f);
  return unary<false>(ctx, [&](auto x) { return act::thresholded_relu(x, static_cast<decltype(x)>(alpha)); });
}
Status gelu_kernel(KernelContext& ctx) {
  const bool tanh_approx = ctx.attr_string("approximate", "none") == "tanh";
  return unary<false>(ctx, [&](auto x) {
    using T = decltype(x);
    if (tanh_approx) {
      return static_cast<T>(0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))));
    }
    return static_cast<T>(0.5 * x * (1 + std::erf(x / std::sqrt(2.0))));
  });
}

Status add_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kSame>(ctx, [](auto a, auto b) { return wrapping_add(a, b); });
}
Status sub_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kSame>(ctx, [](auto a, auto b) { return wrapping_sub(a, b); });
}
Status mul_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kSame>(ctx, [](auto a, auto b) { return wrapping_mul(a, b); });
}
Status div_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kSame>(ctx, [](auto a, auto b) {
    using T = decltype(a);
    if constexpr (std::is_integral_v<T>) {
      return b == 0 ? T{0} : static_cast<T>(a / b);
    } else {
      return a / b;
    }
  });
}
Status mod_kernel(KernelContext& ctx) {
  const bool fmod = ctx.attr_int("fmod", 0) != 0;
  return binary_kernel<false, OutKind::kSame>(ctx, [fmod](auto a, auto b) {
    using T = decltype(a);
    if constexpr (std::is_integral_v<T>) {
      if (fmod) return b == 0 ? T{0} : static_cast<T>(a % b);
      return python_mod(a, b);
    } else {
      return fmod ? static_cast<T>(std::fmod(a, b)) : python_mod(a, b);
    }
  });
}
Status prelu_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kSame>(
      ctx, [](auto x, auto slope) { return x < 0 ? static_cast<decltype(x)>(x * slope) : x; });
}

// Pow: the exponent may have another dtype; compute in double, store in the base's dtype.
Status pow_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x_in, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* y_in, ctx.required_input(1));
  const DType dtype = x_in->dtype();
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*x_in));
  auto dims = broadcast_shapes(x.dims(), y_in->dims());
  if (!dims.is_ok()) return ctx.error(dims.status().message());
  std::vector<double> yv = to_doubles(*y_in);
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(x.dtype(), *dims));
  std::array<std::vector<int64_t>, 2> strides{broadcast_strides(x.dims(), *dims),
                                              broadcast_strides(y_in->dims(), *dims)};
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* dst = out.data<T>();
    for_each_broadcast<2>(*dims, strides, [&](int64_t i, const std::array<int64_t, 2>& o) {
      dst[i] = saturating_cast<T>(std::pow(static_cast<double>(px[o[0]]), yv[static_cast<size_t>(o[1])]));
    });
  });
  if (!ok || dtype == DType::kBool) return ctx.unsupported_dtype(dtype);
  KILN_ASSIGN_OR_RETURN(out, from_float(out, dtype));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status max_kernel(KernelContext& ctx) {
  return variadic(ctx, [](auto a, auto b) { return std::isnan(static_cast<double>(a)) || a > b ? a : b; });
}
Status min_kernel(KernelContext& ctx) {
  return variadic(ctx, [](auto a, auto b) { return std::isnan(static_cast<double>(a)) || a < b ? a : b; });
}
Status sum_kernel(KernelContext& ctx) {
  return variadic(ctx, [](auto a, auto b) { return a + b; });
}
Status mean_kernel(KernelContext& ctx) {
  KILN_RETURN_IF_ERROR(variadic(ctx, [](auto a, auto b) { return a + b; }));
  Tensor& out = ctx.outputs()[0];
  const double n = static_cast<double>(ctx.num_inputs());
  KILN_ASSIGN_OR_RETURN(Tensor f, as_float(out));
  const DType dtype = out.dtype();
  dispatch_numeric(f.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>) {
      for (int64_t i = 0; i < f.num_elements(); ++i) f.data<T>()[i] = static_cast<T>(f.data<T>()[i] / n);
    }
  });
  KILN_ASSIGN_OR_RETURN(out, from_float(f, dtype));
  return Status::ok();
}

Status equal_kernel(KernelContext& ctx) {
  return binary_kernel<true, OutKind::kBool>(ctx, [](auto a, auto b) { return a == b; });
}
Status less_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kBool>(ctx, [](auto a, auto b) { return a < b; });
}
Status less_or_equal_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kBool>(ctx, [](auto a, auto b) { return a <= b; });
}
Status greater_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kBool>(ctx, [](auto a, auto b) { return a > b; });
}
Status greater_or_equal_kernel(KernelContext& ctx) {
  return binary_kernel<false, OutKind::kBool>(ctx, [](auto a, auto b) { return a >= b; });
}
Status and_kernel(KernelContext& ctx) {
  return binary_kernel<true, OutKind::kBool>(ctx, [](auto a, auto b) { return a && b; });
}
Status or_kernel(KernelContext& ctx) {
  return binary_kernel<true, OutKind::kBool>(ctx, [](auto a, auto b) { return a || b; });
}
Status xor_kernel(KernelContext& ctx) {
  return binary_kernel<true, OutKind::kBool>(
      ctx, [](auto a, auto b) { return static_cast<bool>(a) != static_cast<bool>(b); });
}
Status not_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (x->dtype() != DType::kBool) return ctx.unsupported_dtype(x->dtype());
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, DType::kBool, x->dims()));
  for (int64_t i = 0; i < x->num_elements(); ++i) out->data<uint8_t>()[i] = !x->data<uint8_t>()[i];
  return Status::ok();
}

Status isnan_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  std::vector<double> v = to_doubles(*x);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, DType::kBool, x->dims()));
  for (size_t i = 0; i < v.size(); ++i) out->data<uint8_t>()[i] = std::isnan(v[i]);
  return Status::ok();
}
Status isinf_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  const bool pos = ctx.attr_int("detect_positive", 1) != 0, neg = ctx.attr_int("detect_negative", 1) != 0;
  std::vector<double> v = to_doubles(*x);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, DType::kBool, x->dims()));
  for (size_t i = 0; i < v.size(); ++i)
    out->data<uint8_t>()[i] = std::isinf(v[i]) && ((v[i] > 0 && pos) || (v[i] < 0 && neg));
  return Status::ok();
}

Status where_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* c, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(const Tensor* y, ctx.required_input(2));
  if (c->dtype() != DType::kBool) return ctx.unsupported_dtype(c->dtype(), "condition (expected bool)");
  auto d1 = broadcast_shapes(c->dims(), x->dims());
  if (!d1.is_ok()) return ctx.error(d1.status().message());
  auto dims = broadcast_shapes(*d1, y->dims());
  if (!dims.is_ok()) return ctx.error(dims.status().message());
  if (x->dtype() != y->dtype()) return ctx.error("X and Y have different dtypes");
  std::array<std::vector<int64_t>, 3> strides{broadcast_strides(c->dims(), *dims), broadcast_strides(x->dims(), *dims),
                                              broadcast_strides(y->dims(), *dims)};
  if (x->dtype() == DType::kString) {
    std::vector<std::string> out(static_cast<size_t>(*checked_num_elements(*dims)));
    for_each_broadcast<3>(*dims, strides, [&](int64_t i, const std::array<int64_t, 3>& o) {
      out[static_cast<size_t>(i)] =
          c->data<uint8_t>()[o[0]] ? x->strings()[static_cast<size_t>(o[1])] : y->strings()[static_cast<size_t>(o[2])];
    });
    ctx.set_output(0, Tensor::from_strings(*dims, std::move(out)));
    return Status::ok();
  }
  const size_t elem = static_cast<size_t>(dtype_bits(x->dtype()) / 8);
  if (elem == 0) return ctx.unsupported_dtype(x->dtype(), "X");
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, x->dtype(), *dims));
  auto* dst = static_cast<uint8_t*>(out->raw_data());
  const auto* px = static_cast<const uint8_t*>(x->raw_data());
  const auto* py = static_cast<const uint8_t*>(y->raw_data());
  for_each_broadcast<3>(*dims, strides, [&](int64_t i, const std::array<int64_t, 3>& o) {
    const uint8_t* src = c->data<uint8_t>()[o[0]] ? px + o[1] * elem : py + o[2] * elem;
    std::memcpy(dst + i * elem, src, elem);
  });
  return Status::ok();
}

Status clip_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x_in, ctx.required_input(0));
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (ctx.opset() < 11) {
    lo = ctx.attr_float("min", -std::numeric_limits<float>::max());
    hi = ctx.attr_float("max", std::numeric_limits<float>::max());
  } else {
    if (const Tensor* m = ctx.input(1); m && m->num_elements() == 1) lo = to_doubles(*m)[0];
    if (const Tensor* m = ctx.input(2); m && m->num_elements() == 1) hi = to_doubles(*m)[0];
  }
  const DType dtype = x_in->dtype();
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*x_in));
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(x.dtype(), x.dims()));
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      double v = static_cast<double>(x.data<T>()[i]);
      out.data<T>()[i] = static_cast<T>(std::isnan(v) ? v : std::min(std::max(v, lo), hi));
    }
  });
  if (!ok || dtype == DType::kBool) return ctx.unsupported_dtype(dtype);
  KILN_ASSIGN_OR_RETURN(out, from_float(out, dtype));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

}  // namespace kiln::cpu
