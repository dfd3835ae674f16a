// The session's thread pool in the form kiln's x86 building blocks take it (sgemm::ParallelFor).
#pragma once

#include <cstdint>
#include <functional>

#include "kernels/kernel.h"
#include "kernels/x86/sgemm.h"

namespace kiln::cpu {

// fn over [0, n) in ranges of at least `grain` indices, on ctx's pool (KernelContext::parallel_for).
inline sgemm::ParallelFor pool_of(const KernelContext& ctx, int64_t grain = 1) {
  return [&ctx, grain](int64_t n, const std::function<void(int64_t, int64_t)>& fn) { ctx.parallel_for(n, grain, fn); };
}

// fn over [0, n) in one contiguous range per thread, in thread order (KernelContext::parallel_for_static).
inline sgemm::ParallelFor static_pool_of(const KernelContext& ctx) {
  return [&ctx](int64_t n, const std::function<void(int64_t, int64_t)>& fn) { ctx.parallel_for_static(n, fn); };
}

}  // namespace kiln::cpu
