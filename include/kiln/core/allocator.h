// Allocator and Buffer: where tensor bytes live (heap, a memory-mapped file, or memory kiln does not own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

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
