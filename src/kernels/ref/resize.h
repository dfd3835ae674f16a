// Resize and Upsample's interpolation, worked out by the reference kernels (resize.cc) and shared with the fast kernel
// (fast/resize.cc): per axis, for every output index, the input indices and weights it interpolates.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {

struct ResizeTaps {
  std::vector<int64_t> idx;
  std::vector<double> w;
  bool extrapolate = false;  // outside the input (tf_crop_and_resize): the extrapolation value
};

struct ResizePlan {
  std::vector<std::vector<ResizeTaps>> taps;  // [axis][output index]
  std::vector<int64_t> out;                   // the output dims
  double extrapolation = 0.0;
  bool any_extrapolation = false;
};

// The plan of the Resize or Upsample node in `ctx` (whichever it is), from its inputs and attributes; errors name
// the input or attribute at fault.
Status resize_plan(const KernelContext& ctx, ResizePlan& plan);

}  // namespace kiln::cpu
