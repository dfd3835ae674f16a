// What kernels ask of the runtime, as interfaces the runtime implements (runtime/memory_plan.h's RunMemory,
// runtime/thread_pool.h's ThreadPool), so that no kernel includes a runtime header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln::cpu {

// Planned storage for the outputs of a run's nodes.
class OutputArena {
 public:
  virtual ~OutputArena() = default;
  // Uninitialized storage for output `output` of node `node`. `reuse`: the bytes of an input that the node's
  // kernel may overwrite in place (it reads each element before it writes it), which the plan may give the output.
  virtual StatusOr<Tensor> allocate(size_t node, size_t output, DType dtype, std::vector<int64_t> dims,
                                    const void* reuse = nullptr) = 0;
};

// Intra-op parallelism.
class ParallelRunner {
 public:
  virtual ~ParallelRunner() = default;
  virtual int num_threads() const = 0;
  // Calls fn(begin, end) over disjoint ranges covering [0, n), at least `grain` items per call, and returns when
  // every call has returned.
  virtual void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) const = 0;
  // Calls fn(begin, end) once per thread t of min(n, num_threads()), with the t-th of that many contiguous ranges
  // covering [0, n) (sizes differing by at most one, the larger first): oneDNN's static partition, for a kernel
  // whose neighbours are oneDNN primitives, so that each core works on the part of a tensor they left in its
  // caches. parallel_for's ranges go to threads as they come free instead.
  virtual void parallel_for_static(int64_t n, const std::function<void(int64_t, int64_t)>& fn) const = 0;
};

}  // namespace kiln::cpu
