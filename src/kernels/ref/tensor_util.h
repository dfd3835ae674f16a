// Helpers of the tensor-manipulation reference kernels (tensor_*.cc): copies of any copyable dtype (strings
// included), multi-index loops, integer inputs.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu::tensor {

// Bytes per element for copy kernels; 0 for strings and the packed 4-bit types.
inline size_t elem_bytes(DType t) { return t == DType::kString ? 0 : static_cast<size_t>(dtype_bits(t) / 8); }

inline bool copyable(DType t) { return t == DType::kString || (dtype_bits(t) % 8 == 0 && dtype_bits(t) > 0); }

// A zero-filled (or empty-string-filled) tensor of any copyable dtype.
inline StatusOr<Tensor> alloc_any(DType dtype, const std::vector<int64_t>& dims) {
  if (dtype == DType::kString) {
    auto n = checked_num_elements(dims);
    if (!n) return invalid_argument("bad output dims " + dims_to_string(dims));
    return Tensor::from_strings(dims, std::vector<std::string>(static_cast<size_t>(*n)));
  }
  return Tensor::allocate(dtype, dims);
}

// Output i of the node for a kernel that writes every element: from the run's memory (planned, or a caller's
// preallocated output); strings as alloc_any.
inline StatusOr<Tensor> alloc_output(KernelContext& ctx, size_t i, DType dtype, std::vector<int64_t> dims) {
  if (dtype == DType::kString) return alloc_any(dtype, dims);
  KILN_ASSIGN_OR_RETURN(Tensor * t, ctx.allocate_output_uninitialized(i, dtype, std::move(dims)));
  return *t;
}

// out[i] = x[src[i]] (src[i] < 0 leaves the zero / empty string).
inline StatusOr<Tensor> take(const Tensor& x, const std::vector<int64_t>& dims, const std::vector<int64_t>& src) {
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x.dtype(), dims));
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] >= 0) copy_elements(out, static_cast<int64_t>(i), x, src[i], 1);
  }
  return out;
}

// Calls f(idx) for every multi-index of dims in row-major order.
template <typename F>
inline void for_each_index(const std::vector<int64_t>& dims, F&& f) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  if (total <= 0) return;
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    f(idx);
    for (size_t d = dims.size(); d-- > 0;) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}

inline Status check_copyable(const KernelContext& ctx, const Tensor& t, const std::string& which = "input 0") {
  if (!copyable(t.dtype())) return ctx.unsupported_dtype(t.dtype(), which);
  return Status::ok();
}

inline StatusOr<std::vector<int64_t>> int_input(const KernelContext& ctx, size_t i, const char* name) {
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(i));
  if (t->dtype() != DType::kInt64 && t->dtype() != DType::kInt32) {
    return ctx.error("input " + std::to_string(i) + " (" + name + ") must be int32 or int64, got " +
                     dtype_name(t->dtype()));
  }
  return to_int64s(*t);
}

// x converted to dtype `to` (Cast's rules, strings included); tensor_cast.cc.
StatusOr<Tensor> cast_tensor(const KernelContext& ctx, const Tensor& x, DType to);

}  // namespace kiln::cpu::tensor
