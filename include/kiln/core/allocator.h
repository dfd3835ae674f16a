// Allocator and Buffer: where tensor bytes live (heap, a memory-mapped file, or memory kiln does not own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kiln/core/status.h"

namespace kiln {

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns nullptr when the memory cannot be had.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  // The process-wide CPU allocator: 64-byte aligned, zero-filled.
  static Allocator* cpu();
  // The same without the zero fill, for outputs a kernel writes in full.
  static Allocator* cpu_uninitialized();
};

inline constexpr size_t kTensorAlignment = 64;

// Memory for data that every run reads in full (packed weights): 64-byte aligned; from 2 MiB up, aligned to and
// asked for on transparent huge pages (madvise), so that streaming it does not miss the TLB every 4 KiB. Free
// with std::free. nullptr when the memory cannot be had.
void* allocate_streamed(size_t bytes);

// Memory a thread keeps and reuses as a work buffer (a kernel's scratch, oneDNN's scratchpad): from 256 KiB up,
// `*bytes` is rounded up to whole 2 MiB huge pages (the caller may use all of them) and asked for on transparent
// huge pages. A first run then faults such a buffer in a few 2 MiB steps instead of a page every 4 KiB: on a
// virtual machine a fresh 4 KiB page can cost 2-20 us, so a 1.6 MiB scratchpad alone took 1-8 ms of a first run.
// Free with std::free; nullptr when the memory cannot be had.
void* allocate_scratch(size_t* bytes);

// Tensor bytes taken from the heap since the process started, counted at every such allocation: the CPU
// allocators above, allocate_streamed, a run's arena and its unplanned outputs. A caller reads it before and after
// runs to see what they allocate (a steady-state run with preallocated outputs allocates nothing).
struct TensorHeapStats {
  uint64_t allocations = 0;
  uint64_t bytes = 0;
};
TensorHeapStats tensor_heap_stats();
// Counts one allocation of `bytes` in tensor_heap_stats() (for kiln's own allocation paths).
void count_tensor_allocation(size_t bytes);

// "4.0 MiB", "36.4 TiB", "512 bytes".
std::string human_bytes(double bytes);

// The machine's physical memory in bytes (what no single tensor may exceed unless a smaller limit is set).
size_t physical_memory_bytes();

// A check that every Tensor::allocate on this thread passes before it allocates, while a Scope installs it (the
// session's memory limit for the node a thread is running). Scopes nest; the innermost guard applies.
class AllocationGuard {
 public:
  virtual ~AllocationGuard() = default;
  // OK to allocate `bytes` for a tensor of `what` ("float32 [1024,1024]"), or the error to return instead.
  virtual Status allow(size_t bytes, const std::string& what) = 0;
  // This thread's guard, or nullptr.
  static AllocationGuard* current();

  class Scope {
   public:
    explicit Scope(AllocationGuard* guard);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    AllocationGuard* previous_;
  };
};

class Buffer {
 public:
  // A buffer of `bytes` from `alloc` (the zero-filling CPU allocator by default).
  static StatusOr<std::shared_ptr<Buffer>> allocate(size_t bytes, Allocator* alloc = nullptr);
  // A view of memory that `owner` keeps alive (a mapped file, another buffer); nullptr owner = borrowed.
  static std::shared_ptr<Buffer> wrap(void* data, size_t bytes, std::shared_ptr<void> owner);

  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  Buffer() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  Allocator* alloc_ = nullptr;  // set when this buffer owns data_
  std::shared_ptr<void> owner_;
};

}  // namespace kiln
