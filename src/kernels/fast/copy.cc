// Fast Transpose and Slice for element types of at least a byte: a Transpose that moves only axes of size 1 is a
// view of its input (transpose.view); otherwise both are one strided copy (strided_copy: unit-stride rows with
// memcpy, rows spread over the threads). The reference kernels gather element by element.
#include <cstdint>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/tensor_ops.h"

namespace kiln::cpu {
namespace {

bool byte_sized(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  return x && x->dtype() != DType::kString && dtype_bits(x->dtype()) >= 8;
}

// A permutation that moves only axes of size 1 ([1, T, E] -> [T, 1, E]) keeps every element in its place.
bool keeps_order(const Tensor& x, const std::vector<int64_t>& perm) {
  int64_t last = -1;
  bool in_order = true;
  for (int64_t p : perm) {
    if (x.dims()[static_cast<size_t>(p)] == 1) continue;
    in_order = in_order && p > last;
    last = p;
  }
  return in_order;
}

}  // namespace

bool transpose_view_supports(const KernelContext& ctx) {
  std::vector<int64_t> perm, dims, strides;
  return transpose_setup(ctx, perm, dims, strides).is_ok() && keeps_order(*ctx.input(0), perm);
}

// The output is a view of the input, as Reshape's is.
Status transpose_view_kernel(KernelContext& ctx) {
  std::vector<int64_t> perm, dims, strides;
  KILN_RETURN_IF_ERROR(transpose_setup(ctx, perm, dims, strides));
  ctx.set_output(0, ctx.input(0)->reshaped(dims));
  return Status::ok();
}

bool transpose_strided_supports(const KernelContext& ctx) {
  std::vector<int64_t> perm, dims, strides;
  return byte_sized(ctx) && transpose_setup(ctx, perm, dims, strides).is_ok();
}

Status transpose_strided_kernel(KernelContext& ctx) {
  std::vector<int64_t> perm, dims, strides;
  KILN_RETURN_IF_ERROR(transpose_setup(ctx, perm, dims, strides));
  const Tensor& x = *ctx.input(0);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, x.dtype(), dims));
  strided_copy(ctx, x, 0, dims, strides, *out);
  return Status::ok();
}

bool slice_strided_supports(const KernelContext& ctx) {
  std::vector<int64_t> first, step, dims;
  return byte_sized(ctx) && slice_setup(ctx, first, step, dims).is_ok();
}

Status slice_strided_kernel(KernelContext& ctx) {
  std::vector<int64_t> first, step, dims;
  KILN_RETURN_IF_ERROR(slice_setup(ctx, first, step, dims));
  const Tensor& x = *ctx.input(0);
  const auto in_str = strides_of(x.dims());
  int64_t offset = 0;
  std::vector<int64_t> strides(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    offset += first[d] * in_str[d];
    strides[d] = step[d] * in_str[d];
  }
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, x.dtype(), dims));
  strided_copy(ctx, x, offset, dims, strides, *out);
  return Status::ok();
}

}  // namespace kiln::cpu
