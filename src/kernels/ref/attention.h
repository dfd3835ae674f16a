// ai.kiln Attention's geometry, shared by its reference kernel (attention.cc) and its fast kernel
// (fast/attention.cc): Q, K, V and the output seen through the permutations the fusion absorbed.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {

// An input or output seen through a permutation: dims[i] = base dims[perm[i]], strides likewise (elements).
struct AttentionView {
  std::vector<int64_t> dims, strides, perm;
};

struct AttentionGeom {
  AttentionView q, k, v, o;  // o: the product's axes over the output's memory
  std::vector<int64_t> ydims;
  int64_t G = 1, S = 0, D = 0, T = 0, Dv = 0;  // G: the batch (heads) count
  float scale = 1.0f;
};

// Checks Q, K, V (inputs 0-2) and the permutations; errors name the input or attribute at fault.
Status attention_setup(const KernelContext& ctx, AttentionGeom& a);
// Offset of batch index g (row-major over the leading rank - 2 axes) in a view.
int64_t batch_offset(const AttentionView& v, int64_t g);

}  // namespace kiln::cpu
