#include "kiln/core/allocator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace kiln {
namespace {

std::atomic<uint64_t> heap_allocations{0};
std::atomic<uint64_t> heap_bytes{0};

class CpuAllocator final : public Allocator {
 public:
  explicit CpuAllocator(bool zero) : zero_(zero) {}
  void* allocate(size_t bytes) override {
    size_t rounded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
    if (rounded == 0) rounded = kTensorAlignment;
    void* p = std::aligned_alloc(kTensorAlignment, rounded);
    if (p) count_tensor_allocation(rounded);
    if (p && zero_) std::memset(p, 0, rounded);
    return p;
  }
  void deallocate(void* p, size_t) override { std::free(p); }

 private:
  bool zero_;
};

}  // namespace

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t round_up(size_t bytes, size_t align) { return std::max(align, (bytes + align - 1) / align * align); }

// `bytes` (a multiple of `align`) aligned to `align`, asked for on transparent huge pages when that is a huge page
// (madvise: a hint, ignored where unsupported).
void* aligned(size_t align, size_t bytes) {
  void* p = std::aligned_alloc(align, bytes);
  if (p && align == kHugePage) madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

}  // namespace

void* allocate_streamed(size_t bytes) {
  const size_t align = bytes >= kHugePage ? kHugePage : kTensorAlignment;
  const size_t rounded = round_up(bytes, align);
  void* p = aligned(align, rounded);
  if (p) count_tensor_allocation(rounded);
  return p;
}

void* allocate_scratch(size_t* bytes) {
  constexpr size_t kHugeFrom = size_t{256} << 10;
  const size_t align = *bytes >= kHugeFrom ? kHugePage : kTensorAlignment;
  *bytes = round_up(*bytes, align);
  return aligned(align, *bytes);
}

void count_tensor_allocation(size_t bytes) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  heap_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

TensorHeapStats tensor_heap_stats() {
  return {heap_allocations.load(std::memory_order_relaxed), heap_bytes.load(std::memory_order_relaxed)};
}

namespace {
thread_local AllocationGuard* current_guard = nullptr;
}  // namespace

AllocationGuard* AllocationGuard::current() { return current_guard; }

AllocationGuard::Scope::Scope(AllocationGuard* guard) : previous_(current_guard) { current_guard = guard; }

AllocationGuard::Scope::~Scope() { current_guard = previous_; }

std::string human_bytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 6) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

size_t physical_memory_bytes() {
  static const size_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : size_t{1} << 40;
  }();
  return bytes;
}

Allocator* Allocator::cpu() {
  static CpuAllocator instance(true);
  return &instance;
}

Allocator* Allocator::cpu_uninitialized() {
  static CpuAllocator instance(false);
  return &instance;
}

StatusOr<std::shared_ptr<Buffer>> Buffer::allocate(size_t bytes, Allocator* alloc) {
  if (!alloc) alloc = Allocator::cpu();
  void* p = alloc->allocate(bytes);
  if (!p) return io_error("out of memory allocating " + std::to_string(bytes) + " bytes");
  std::shared_ptr<Buffer> b(new Buffer());
  b->data_ = static_cast<uint8_t*>(p);
  b->size_ = bytes;
  b->alloc_ = alloc;
  return b;
}

std::shared_ptr<Buffer> Buffer::wrap(void* data, size_t bytes, std::shared_ptr<void> owner) {
  std::shared_ptr<Buffer> b(new Buffer());
  b->data_ = static_cast<uint8_t*>(data);
  b->size_ = bytes;
  b->owner_ = std::move(owner);
  return b;
}

Buffer::~Buffer() {
  if (alloc_) alloc_->deallocate(data_, size_);
}

}  // namespace kiln
