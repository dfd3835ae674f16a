// The intra-op thread pool. kiln's own loops and oneDNN's primitives run on the same OpenMP worker team
// (libdnnl is built on the OpenMP runtime), so there is one set of intra-op threads per calling thread and no
// oversubscription: a session of T threads asks for teams of T, the calling thread included.
#pragma once

#include <cstdint>
#include <functional>

#include "kernels/services.h"

namespace kiln {

class ThreadPool : public cpu::ParallelRunner {
 public:
  // threads <= 0: one per physical core.
  explicit ThreadPool(int threads);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const override { return threads_; }

  // Calls fn(begin, end) over disjoint ranges covering [0, n), at least `grain` items per call, and returns
  // when every call has returned. The split depends only on n, grain and the thread count. fn must not throw.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) const override;
  void parallel_for_static(int64_t n, const std::function<void(int64_t, int64_t)>& fn) const override;

  // Physical cores of this machine (distinct core ids in sysfs; hardware_concurrency() when unknown).
  static int physical_cores();

 private:
  int threads_;
};

}  // namespace kiln
