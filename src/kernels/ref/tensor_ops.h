// What the reference kernels of tensor_copy.cc work out from a node, shared with their fast kernels
// (fast/copy.cc) so that both read the inputs and report errors alike.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {

// Slice: per axis of input 0, the first index, the step and the output dim.
Status slice_setup(const KernelContext& ctx, std::vector<int64_t>& first, std::vector<int64_t>& step,
                   std::vector<int64_t>& dims);
// Transpose: the permutation, the output dims and the input's element strides along them.
Status transpose_setup(const KernelContext& ctx, std::vector<int64_t>& perm, std::vector<int64_t>& dims,
                       std::vector<int64_t>& strides);

}  // namespace kiln::cpu
