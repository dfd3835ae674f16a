// What the unit tests share: random float tensors.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln::testing {

// A float32 tensor of `dims`, uniform in [lo, hi).
inline Tensor random_tensor(std::vector<int64_t> dims, std::mt19937& rng, float lo = -1, float hi = 1) {
  auto t = std::move(Tensor::allocate(DType::kFloat32, std::move(dims))).value();
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

}  // namespace kiln::testing
