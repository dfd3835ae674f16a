#include "runtime/thread_pool.h"

#include <omp.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace kiln {

ThreadPool::ThreadPool(int threads) : threads_(threads > 0 ? threads : physical_cores()) {}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) const {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t grains = (n + grain - 1) / grain;
  if (threads_ <= 1 || grains <= 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  // Up to kChunksPerThread chunks per thread, handed out as threads come free: on a shared machine a core that
  // is slowed or preempted for a while then holds up one small chunk, not a whole share.
  constexpr int64_t kChunksPerThread = 4;
  const int64_t chunks = std::min<int64_t>(grains, threads_ * kChunksPerThread);
  const int64_t team = std::min<int64_t>(threads_, chunks);
  const int64_t step = (n + chunks - 1) / chunks;
#pragma omp parallel for num_threads(static_cast <int>(team)) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * step;
    if (begin < n) fn(begin, std::min(n, begin + step));
  }
}

void ThreadPool::parallel_for_static(int64_t n, const std::function<void(int64_t, int64_t)>& fn) const {
  if (n <= 0) return;
  const int64_t team = std::min<int64_t>(threads_, n);
  if (team <= 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  // balance211: the first n % team threads take one item more.
  const int64_t base = n / team, extra = n % team;
#pragma omp parallel num_threads(static_cast <int>(team))
  {
    const int64_t t = omp_get_thread_num();
    const int64_t begin = t * base + std::min(t, extra);
    fn(begin, begin + base + (t < extra ? 1 : 0));
  }
}

int ThreadPool::physical_cores() {
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned logical = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned cpu = 0; cpu < logical; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) return static_cast<int>(logical);
    cores.emplace(p, c);
  }
  return cores.empty() ? static_cast<int>(logical) : static_cast<int>(cores.size());
}

}  // namespace kiln
