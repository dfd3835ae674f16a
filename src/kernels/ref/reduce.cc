// Reduce operators: Reduce*, ArgMax/ArgMin, CumSum. float16/bfloat16 compute in float32 and round back;
// floating-point reductions accumulate in double, integer ones in 64-bit integers.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/kernel.h"
#include "kernels/ref/numeric.h"

namespace kiln::cpu {
namespace {

enum class ReduceOp { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

// The accumulator type for element type T.
template <typename T>
using AccOf =
    std::conditional_t<std::is_floating_point_v<T>, double, std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

// Which axes to reduce (a mask over the input rank), or `noop` when the input passes through unchanged.
Status reduce_axes(const KernelContext& ctx, bool axes_from_input, int64_t rank, std::vector<bool>& mask, bool& noop) {
  std::vector<int64_t> axes;
  bool have_axes = false;
  if (axes_from_input) {
    if (const Tensor* a = ctx.input(1)) {
      if (a->dtype() != DType::kInt64 && a->dtype() != DType::kInt32) {
        return ctx.error(std::string("input 1 (axes) must be int64, got ") + dtype_name(a->dtype()));
      }
      axes = to_int64s(*a);
      have_axes = true;
    }
  } else if (ctx.attr("axes")) {
    axes = ctx.attr_ints("axes");
    have_axes = true;
  }
  noop = false;
  mask.assign(static_cast<size_t>(rank), false);
  if (!have_axes || axes.empty()) {
    if (ctx.attr_int("noop_with_empty_axes", 0) != 0) {
      noop = true;
      return Status::ok();
    }
    mask.assign(static_cast<size_t>(rank), true);
    return Status::ok();
  }
  for (int64_t a : axes) {
    KILN_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(ctx, a, rank));
    if (mask[static_cast<size_t>(ax)]) return ctx.error("axes lists axis " + std::to_string(a) + " twice");
    mask[static_cast<size_t>(ax)] = true;
  }
  return Status::ok();
}

template <typename T>
Status reduce_typed(const Tensor& x, const std::vector<bool>& mask, ReduceOp op, Tensor& out) {
  using A = AccOf<T>;
  const auto& in_dims = x.dims();
  const size_t rank = in_dims.size();
  // Output dims with reduced axes kept as 1, and the input->output stride map.
  std::vector<int64_t> kept(in_dims);
  int64_t count = 1;
  for (size_t d = 0; d < rank; ++d) {
    if (mask[d]) {
      count *= in_dims[d];
      kept[d] = 1;
    }
  }
  auto kstr = strides_of(kept);
  std::vector<int64_t> ostr(rank);
  for (size_t d = 0; d < rank; ++d) ostr[d] = mask[d] ? 0 : kstr[d];
  int64_t out_n = 1;
  for (int64_t d : kept) out_n *= d;

  A init{};
  if (op == ReduceOp::kProd) init = A(1);
  if (op == ReduceOp::kMax) {
    init =
        std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::lowest();
  }
  if (op == ReduceOp::kMin) {
    init = std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity() : std::numeric_limits<A>::max();
  }
  std::vector<A> acc(static_cast<size_t>(out_n), init);
  // LogSumExp subtracts the per-output maximum for stability.
  std::vector<double> shift(static_cast<size_t>(out_n), -std::numeric_limits<double>::infinity());

  const T* src = x.data<T>();
  const int64_t n = x.num_elements();
  // The output offset of every input element.
  std::vector<int64_t> oidx(static_cast<size_t>(n), 0);
  if (n > 0) {
    std::vector<int64_t> idx(rank + 1, 0);  // one spare slot keeps GCC's -Wfree-nonheap-object quiet
    int64_t o = 0;
    for (int64_t i = 0; i < n; ++i) {
      oidx[static_cast<size_t>(i)] = o;
      for (size_t d = rank; d-- > 0;) {
        ++idx[d];
        o += ostr[d];
        if (idx[d] < in_dims[d]) break;
        o -= ostr[d] * idx[d];
        idx[d] = 0;
      }
    }
  }
  auto walk = [&](auto&& f) {
    for (int64_t i = 0; i < n; ++i) f(i, oidx[static_cast<size_t>(i)]);
  };
  if (op == ReduceOp::kLogSumExp) {
    walk([&](int64_t i, int64_t o) {
      double v = static_cast<double>(src[i]);
      if (v > shift[static_cast<size_t>(o)]) shift[static_cast<size_t>(o)] = v;
    });
    for (auto& s : shift) {
      if (!std::isfinite(s)) s = 0;
    }
  }
  walk([&](int64_t i, int64_t o) {
    A& a = acc[static_cast<size_t>(o)];
    const A v = static_cast<A>(src[i]);
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kMean:
      case ReduceOp::kLogSum: a = wrapping_add(a, v); break;
      case ReduceOp::kMax:
        if (v > a || v != v) a = v;
        break;
      case ReduceOp::kMin:
        if (v < a || v != v) a = v;
        break;
      case ReduceOp::kProd: a = wrapping_mul(a, v); break;
      case ReduceOp::kL1:
        if constexpr (std::is_signed_v<A>) {
          a = wrapping_add(a, v < 0 ? wrapping_sub(A{0}, v) : v);
        } else {
          a = wrapping_add(a, v);
        }
        break;
      case ReduceOp::kL2:
      case ReduceOp::kSumSquare: a = wrapping_add(a, wrapping_mul(v, v)); break;
      case ReduceOp::kLogSumExp:
        a = static_cast<A>(static_cast<double>(a) +
                           std::exp(static_cast<double>(src[i]) - shift[static_cast<size_t>(o)]));
        break;
    }
  });
  T* dst = out.data<T>();
  for (int64_t j = 0; j < out_n; ++j) {
    const A a = acc[static_cast<size_t>(j)];
    double r = 0;
    switch (op) {
      case ReduceOp::kMean:
        if constexpr (std::is_floating_point_v<A>) {
          dst[j] = static_cast<T>(a / static_cast<double>(count));
        } else {
          dst[j] = count == 0 ? T{} : static_cast<T>(a / static_cast<A>(count));
        }
        continue;
      case ReduceOp::kL2: r = std::sqrt(static_cast<double>(a)); break;
      case ReduceOp::kLogSum: r = std::log(static_cast<double>(a)); break;
      case ReduceOp::kLogSumExp: r = std::log(static_cast<double>(a)) + shift[static_cast<size_t>(j)]; break;
      default: dst[j] = static_cast<T>(a); continue;
    }
    dst[j] = static_cast<T>(r);
  }
  return Status::ok();
}

Status reduce_kernel(KernelContext& ctx, ReduceOp op, int64_t axes_input_opset) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  const auto rank = static_cast<int64_t>(in->rank());
  std::vector<bool> mask;
  bool noop = false;
  KILN_RETURN_IF_ERROR(reduce_axes(ctx, ctx.opset() >= axes_input_opset, rank, mask, noop));
  if (noop) {
    ctx.set_output(0, *in);
    return Status::ok();
  }
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  std::vector<int64_t> out_dims;
  for (size_t d = 0; d < in->dims().size(); ++d) {
    if (!mask[d]) {
      out_dims.push_back(in->dims()[d]);
    } else if (keepdims) {
      out_dims.push_back(1);
    }
  }
  const DType dtype = in->dtype();
  if (dtype == DType::kBool && op != ReduceOp::kMax && op != ReduceOp::kMin) return ctx.unsupported_dtype(dtype);
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*in));
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(x.dtype(), out_dims));
  Status st = Status::ok();
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    st = reduce_typed<T>(x, mask, op, out);  // bool: Max is "any", Min is "all"
  });
  if (!ok) return ctx.unsupported_dtype(dtype);
  KILN_RETURN_IF_ERROR(st);
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(out, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

template <typename T>
void arg_typed(const Tensor& x, int64_t outer, int64_t len, int64_t inner, bool is_max, bool last, int64_t* dst) {
  const T* src = x.data<T>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      T bv = src[o * len * inner + i];
      for (int64_t k = 1; k < len; ++k) {
        const T v = src[(o * len + k) * inner + i];
        bool take;
        if (is_max) {
          take = last ? !(v < bv) : v > bv;
        } else {
          take = last ? !(v > bv) : v < bv;
        }
        if constexpr (std::is_floating_point_v<T>) {
          if (bv != bv)
            take = false;  // NaN wins and stays
          else if (v != v)
            take = true;
        }
        if (take) {
          best = k;
          bv = v;
        }
      }
      dst[o * inner + i] = best;
    }
  }
}

Status arg_kernel(KernelContext& ctx, bool is_max) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  const auto rank = static_cast<int64_t>(in->rank());
  if (rank == 0) return ctx.error("input 0 must have rank >= 1, got a scalar");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), rank));
  const bool keepdims = ctx.attr_int("keepdims", 1) != 0;
  const bool last = ctx.attr_int("select_last_index", 0) != 0;
  const auto& dims = in->dims();
  const int64_t len = dims[static_cast<size_t>(axis)];
  if (len == 0) return ctx.error("input 0 has size 0 along axis " + std::to_string(axis) + "; nothing to select");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= dims[static_cast<size_t>(d)];
  std::vector<int64_t> out_dims;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != axis) {
      out_dims.push_back(dims[static_cast<size_t>(d)]);
    } else if (keepdims) {
      out_dims.push_back(1);
    }
  }
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*in));
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, DType::kInt64, out_dims));
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    arg_typed<T>(x, outer, len, inner, is_max, last, out->data<int64_t>());
  });
  if (!ok) return ctx.unsupported_dtype(in->dtype());
  return Status::ok();
}

}  // namespace

Status reduce_sum_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kSum, 13); }
Status reduce_mean_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kMean, 18); }
Status reduce_max_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kMax, 18); }
Status reduce_min_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kMin, 18); }
Status reduce_prod_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kProd, 18); }
Status reduce_l1_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kL1, 18); }
Status reduce_l2_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kL2, 18); }
Status reduce_log_sum_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kLogSum, 18); }
Status reduce_log_sum_exp_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kLogSumExp, 18); }
Status reduce_sum_square_kernel(KernelContext& ctx) { return reduce_kernel(ctx, ReduceOp::kSumSquare, 18); }

Status argmax_kernel(KernelContext& ctx) { return arg_kernel(ctx, true); }
Status argmin_kernel(KernelContext& ctx) { return arg_kernel(ctx, false); }

Status cumsum_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* axis_t, ctx.required_input(1));
  if (axis_t->num_elements() != 1 || (axis_t->dtype() != DType::kInt64 && axis_t->dtype() != DType::kInt32)) {
    return ctx.error("input 1 (axis) must be an int32/int64 scalar, got " + std::string(dtype_name(axis_t->dtype())) +
                     " " + dims_to_string(axis_t->dims()));
  }
  const auto rank = static_cast<int64_t>(in->rank());
  if (rank == 0) return ctx.error("input 0 must have rank >= 1, got a scalar");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, to_int64s(*axis_t)[0], rank));
  const bool exclusive = ctx.attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.attr_int("reverse", 0) != 0;
  const auto& dims = in->dims();
  const int64_t len = dims[static_cast<size_t>(axis)];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= dims[static_cast<size_t>(d)];
  const DType dtype = in->dtype();
  if (dtype == DType::kBool) return ctx.unsupported_dtype(dtype);
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*in));
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(x.dtype(), dims));
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using A = AccOf<T>;
    const T* src = x.data<T>();
    T* dst = out.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        A acc{};
        for (int64_t s = 0; s < len; ++s) {
          const int64_t k = reverse ? len - 1 - s : s;
          const int64_t at = (o * len + k) * inner + i;
          if (exclusive) {
            dst[at] = static_cast<T>(acc);
            acc = wrapping_add(acc, static_cast<A>(src[at]));
          } else {
            acc = wrapping_add(acc, static_cast<A>(src[at]));
            dst[at] = static_cast<T>(acc);
          }
        }
      }
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype);
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(out, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

}  // namespace kiln::cpu
