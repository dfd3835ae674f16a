// Helpers of the neural-network reference kernels (matmul.cc, conv.cc, pool.cc, norm.cc, softmax.cc,
// quantize.cc, resize.cc, nn_misc.cc): inputs are read as double, computed with plain loops and written back in
// the output dtype (float16/bfloat16 round through float32).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/numeric.h"

namespace kiln::cpu::nn {

using Dims = std::vector<int64_t>;
using Vec = std::vector<double>;

inline std::string dstr(const Dims& d) { return dims_to_string(d); }

// Writes `v` as output i of dtype `dt` and dims `dims`.
inline Status write_output(KernelContext& ctx, size_t i, DType dt, const Dims& dims, const Vec& v) {
  if (i >= ctx.num_outputs()) return Status::ok();
  const DType alloc = is_half(dt) ? DType::kFloat32 : dt;
  KILN_ASSIGN_OR_RETURN(Tensor * t, ctx.allocate_output(i, alloc, dims));
  const size_t n = static_cast<size_t>(t->num_elements());
  bool ok = dispatch_numeric(alloc, [&](auto tag) {
    using T = decltype(tag);
    T* p = t->template data<T>();
    for (size_t k = 0; k < n && k < v.size(); ++k) {
      p[k] = saturating_cast<T>(v[k]);
    }
  });
  if (!ok) return ctx.unsupported_dtype(dt, "output " + std::to_string(i));
  if (is_half(dt)) {
    KILN_ASSIGN_OR_RETURN(Tensor h, from_float(*t, dt));
    ctx.set_output(i, std::move(h));
  }
  return Status::ok();
}

inline Status require_float(const KernelContext& ctx, const Tensor& t, const std::string& which) {
  if (!is_float_dtype(t.dtype())) return ctx.unsupported_dtype(t.dtype(), which);
  return Status::ok();
}

inline Status require_numeric(const KernelContext& ctx, const Tensor& t, const std::string& which) {
  if (is_float_dtype(t.dtype())) return Status::ok();
  bool ok = dispatch_numeric(t.dtype(), [](auto) {});
  if (!ok || t.dtype() == DType::kBool) return ctx.unsupported_dtype(t.dtype(), which);
  return Status::ok();
}

inline double round_half_even(double x) { return std::nearbyint(x); }

inline bool is_8bit(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }

// Saturating conversion of a rounded value into an integer quantized dtype.
inline bool quant_range(DType t, double& lo, double& hi) {
  switch (t) {
    case DType::kUInt8:
      lo = 0;
      hi = 255;
      return true;
    case DType::kInt8:
      lo = -128;
      hi = 127;
      return true;
    case DType::kUInt16:
      lo = 0;
      hi = 65535;
      return true;
    case DType::kInt16:
      lo = -32768;
      hi = 32767;
      return true;
    case DType::kInt32:
      lo = -2147483648.0;
      hi = 2147483647.0;
      return true;
    case DType::kUInt4:
      lo = 0;
      hi = 15;
      return true;
    case DType::kInt4:
      lo = -8;
      hi = 7;
      return true;
    default: return false;
  }
}

// The one value of a scalar input (a quantization scale or zero point), or `def` when the input is omitted; an error
// naming `which` when it has more than one element.
inline Status scalar_of(const KernelContext& ctx, const Tensor* t, double def, double& out, const std::string& which) {
  out = def;
  if (!t) return Status::ok();
  if (t->num_elements() != 1) return ctx.error(which + " must be a scalar, got shape " + dstr(t->dims()));
  out = to_doubles(*t)[0];
  return Status::ok();
}

inline double saturate(double v, double lo, double hi) { return std::min(hi, std::max(lo, v)); }

// Calls f(indices of one group) for each combination of the non-reduced axes.
template <typename F>
inline void for_each_group(const Dims& dims, const std::vector<bool>& reduced, F&& f) {
  Dims outer_dims, inner_dims;
  std::vector<size_t> outer_ax, inner_ax;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (reduced[d]) {
      inner_dims.push_back(dims[d]);
      inner_ax.push_back(d);
    } else {
      outer_dims.push_back(dims[d]);
      outer_ax.push_back(d);
    }
  }
  auto str = strides_of(dims);
  const int64_t no = product(outer_dims), ni = product(inner_dims);
  Dims oi(outer_dims.size(), 0);
  std::vector<size_t> group(static_cast<size_t>(ni));
  for (int64_t o = 0; o < no; ++o, next_index(oi, outer_dims)) {
    int64_t base = 0;
    for (size_t k = 0; k < outer_ax.size(); ++k) base += oi[k] * str[outer_ax[k]];
    Dims ii(inner_dims.size(), 0);
    for (int64_t i = 0; i < ni; ++i, next_index(ii, inner_dims)) {
      int64_t off = base;
      for (size_t k = 0; k < inner_ax.size(); ++k) off += ii[k] * str[inner_ax[k]];
      group[static_cast<size_t>(i)] = static_cast<size_t>(off);
    }
    f(group);
  }
}

}  // namespace kiln::cpu::nn
