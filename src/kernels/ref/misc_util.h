// Helpers of the miscellaneous reference kernels (recurrent.cc, signal.cc, random.cc, text.cc, training.cc):
// outputs built from double values, scalar inputs, dtype attributes.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu::misc {

inline constexpr double kPi = 3.14159265358979323846;

// A tensor of `dtype` and `dims` holding `values` (numeric dtypes, bool and float16/bfloat16).
inline StatusOr<Tensor> make_tensor(const KernelContext& ctx, DType dtype, const std::vector<int64_t>& dims,
                                    const std::vector<double>& values) {
  if (is_half(dtype)) {
    KILN_ASSIGN_OR_RETURN(Tensor f, make_tensor(ctx, DType::kFloat32, dims, values));
    return from_float(f, dtype);
  }
  auto t = Tensor::allocate(dtype, dims);
  if (!t.is_ok()) return ctx.error(t.status().message());
  Tensor out = std::move(t).value();
  const size_t n = std::min(values.size(), static_cast<size_t>(out.num_elements()));
  bool ok = dispatch_numeric(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* dst = out.data<T>();
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < n; ++i) dst[i] = values[i] != 0;
    } else {
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(values[i]);
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype, "the output");
  return out;
}

// Generated outputs (windows, random tensors, ...) above this many elements are refused rather than attempted.
inline constexpr int64_t kMaxGenerated = int64_t{1} << 31;

inline Status emit(KernelContext& ctx, size_t index, DType dtype, const std::vector<int64_t>& dims,
                   const std::vector<double>& values) {
  if (index >= ctx.num_outputs()) return Status::ok();
  KILN_ASSIGN_OR_RETURN(Tensor t, make_tensor(ctx, dtype, dims, values));
  ctx.set_output(index, std::move(t));
  return Status::ok();
}

inline StatusOr<double> scalar_value(const KernelContext& ctx, size_t index, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(index));
  if (t->num_elements() != 1) {
    return ctx.error(what + " (input " + std::to_string(index) + ") must hold one element but has shape " +
                     dims_to_string(t->dims()));
  }
  if (t->dtype() == DType::kString) return ctx.unsupported_dtype(t->dtype(), "input " + std::to_string(index));
  return to_doubles(*t)[0];
}

// A one-element integer input (a float input is accepted when it holds an integral value in int64 range).
inline StatusOr<int64_t> scalar_int(const KernelContext& ctx, size_t index, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(index));
  if (t->num_elements() == 1 && (dtype_is_integer(t->dtype()) || t->dtype() == DType::kBool) &&
      dtype_bits(t->dtype()) % 8 == 0) {
    return to_int64s(*t)[0];
  }
  KILN_ASSIGN_OR_RETURN(double v, scalar_value(ctx, index, what));
  if (!(v >= -9.2e18 && v <= 9.2e18) || std::floor(v) != v) {
    return ctx.error(what + " (input " + std::to_string(index) + ") is " + std::to_string(v) +
                     " but an integer was expected");
  }
  return static_cast<int64_t>(v);
}

inline StatusOr<DType> dtype_attr(const KernelContext& ctx, const std::string& name, DType def) {
  const int64_t v = ctx.attr_int(name, static_cast<int64_t>(def));
  if (!dtype_is_valid(static_cast<int32_t>(v))) {
    return ctx.error("attribute '" + name + "' = " + std::to_string(v) + " is not a valid ONNX data type");
  }
  return static_cast<DType>(v);
}

}  // namespace kiln::cpu::misc
