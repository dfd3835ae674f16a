// A thread's scratch memory for the x86 kernels (Winograd's transformed tiles, the depthwise kernel's widened rows),
// kept between calls so that the steady state does not allocate. Every float a call reads it has written first, so
// growing it copies and clears nothing; large ones are whole huge pages (allocate_scratch), so that a first run
// faults a few 2 MiB pages rather than a page every 4 KiB.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#include "kiln/core/allocator.h"

namespace kiln::x86 {

class Scratch {
 public:
  // At least `floats` floats, 64-byte aligned; std::bad_alloc when the memory cannot be had.
  float* reserve(size_t floats) {
    if (floats > capacity_) {
      size_t bytes = floats * sizeof(float);
      data_.reset(static_cast<float*>(allocate_scratch(&bytes)));
      if (!data_) {
        capacity_ = 0;
        throw std::bad_alloc();
      }
      capacity_ = bytes / sizeof(float);
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float, void (*)(void*)> data_{nullptr, std::free};
  size_t capacity_ = 0;
};

// The calling thread's scratch, one per user (kTag), so that two kernels' buffers are never the same.
enum class ScratchUser { kWinograd, kDepthwiseBf16, kHalfInputs, kHalfOutput };

template <ScratchUser kUser>
Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace kiln::x86
