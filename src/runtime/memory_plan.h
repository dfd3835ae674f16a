// Tensor memory for a run, planned from liveness. The first run of an input-shape signature allocates from the
// heap and records, for every node output, its size and the steps at which it was made and freed. From those
// lifetimes a pattern places every output that dies inside the run at an offset of one arena (first fit,
// largest first; outputs whose lifetimes overlap never share bytes). Later runs with the same signature take
// one arena from the session's pool and hand out those offsets: no allocation in the steady-state loop.
// An output whose kernel can write over a dying input (a residual sum) takes that input's place.
// Graph outputs (alive when the run ends) come from the heap, and a request that does not match the pattern
// (a data-dependent size) falls back to the heap, so a wrong guess costs speed, never correctness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/services.h"
#include "kiln/core/status.h"
#include "kiln/core/tensor.h"
#include "kiln/core/value.h"

namespace kiln {

struct MemoryPattern {
  struct Block {
    size_t size = 0;
    size_t offset = 0;
    size_t index = 0;  // 0, 1, ... in the order the blocks were placed
  };
  std::unordered_map<uint64_t, Block> blocks;  // by node output (node << 20 | output); absent: heap
  size_t total = 0;
};

// Session-wide: the patterns by shape signature and the arenas not in use.
class MemoryPlanner {
 public:
  using Signature = std::vector<std::vector<int64_t>>;
  MemoryPlanner() = default;
  ~MemoryPlanner();
  MemoryPlanner(const MemoryPlanner&) = delete;
  MemoryPlanner& operator=(const MemoryPlanner&) = delete;

  std::shared_ptr<const MemoryPattern> find(const Signature& sig);
  void store(const Signature& sig, std::shared_ptr<const MemoryPattern> pattern);
  // Every pattern learned so far (engine plans carry them).
  std::vector<std::pair<Signature, std::shared_ptr<const MemoryPattern>>> patterns();
  // An arena of at least `bytes` (nullptr when out of memory); give it back with release().
  uint8_t* acquire(size_t bytes, size_t& size);
  void release(uint8_t* arena, size_t size);
  // The bytes of the arenas in the pool, not in use by a run.
  size_t idle_bytes();

 private:
  std::mutex mu_;
  std::map<Signature, std::shared_ptr<const MemoryPattern>> patterns_;
  std::vector<std::pair<uint8_t*, size_t>> free_;
};

// One run's memory: records (first run of a signature) or replays a pattern.
class RunMemory : public cpu::OutputArena {
 public:
  RunMemory(MemoryPlanner* planner, MemoryPlanner::Signature signature);
  ~RunMemory();
  RunMemory(const RunMemory&) = delete;
  RunMemory& operator=(const RunMemory&) = delete;

  // The executor's position: node `step` of the top-level graph is running.
  void set_step(size_t step);
  // Uninitialized storage for output `output` of node `node`. `reuse`: the buffer of an input that the node's
  // kernel can overwrite in place (it reads each element before it writes it); when that input dies at this
  // node, the pattern gives the output the input's bytes.
  StatusOr<Tensor> allocate(size_t node, size_t output, DType dtype, std::vector<int64_t> dims,
                            const void* reuse = nullptr) override;
  // Output `output` of node `node` is written into `dest`, a caller's buffer (preallocated outputs, IOBinding):
  // allocate() hands out dest's bytes when the kernel asks for exactly dest's dtype and shape.
  void bind(size_t node, size_t output, Tensor dest);
  // At the end of the run: stores the recorded pattern, and copies any output that lies in the arena.
  Status finish(std::vector<Value>& outputs);

  struct Recording;

 private:
  MemoryPlanner* planner_;
  MemoryPlanner::Signature signature_;
  std::shared_ptr<const MemoryPattern> pattern_;
  std::shared_ptr<Recording> recording_;
  std::vector<char> handed_;                    // by Block::index: already given out in this run
  std::unordered_map<uint64_t, Tensor> bound_;  // by node output: the caller's buffers, until handed out
  uint8_t* arena_ = nullptr;
  size_t arena_size_ = 0;
};

}  // namespace kiln
