#include "runtime/memory_plan.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kiln/core/allocator.h"

namespace kiln {
namespace {

constexpr size_t kMaxPatterns = 16;
constexpr size_t kNotFreed = SIZE_MAX;

size_t round_up(size_t n) { return (n + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment; }
uint64_t key_of(size_t node, size_t output) { return (static_cast<uint64_t>(node) << 20) | output; }

}  // namespace

struct RunMemory::Recording {
  struct Alloc {
    uint64_t key;
    size_t size, made, freed = kNotFreed;
    size_t reuse = kNotFreed;  // the allocation whose bytes this one may take over
  };
  std::mutex mu;
  size_t step = 0;
  std::vector<Alloc> allocs;
  std::unordered_map<uint64_t, size_t> count;    // allocations per key (more than one: not planned)
  std::unordered_map<const void*, size_t> live;  // allocation by address, while alive
};

MemoryPlanner::~MemoryPlanner() {
  for (auto& [p, n] : free_) std::free(p);
}

std::shared_ptr<const MemoryPattern> MemoryPlanner::find(const Signature& sig) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = patterns_.find(sig);
  return it == patterns_.end() ? nullptr : it->second;
}

void MemoryPlanner::store(const Signature& sig, std::shared_ptr<const MemoryPattern> pattern) {
  std::lock_guard<std::mutex> lock(mu_);
  if (patterns_.size() >= kMaxPatterns && !patterns_.count(sig)) patterns_.erase(patterns_.begin());
  patterns_[sig] = std::move(pattern);
}

std::vector<std::pair<MemoryPlanner::Signature, std::shared_ptr<const MemoryPattern>>> MemoryPlanner::patterns() {
  std::lock_guard<std::mutex> lock(mu_);
  return {patterns_.begin(), patterns_.end()};
}

uint8_t* MemoryPlanner::acquire(size_t bytes, size_t& size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= bytes && (best == free_.end() || it->second < best->second)) best = it;
    }
    if (best != free_.end()) {
      uint8_t* p = best->first;
      size = best->second;
      free_.erase(best);
      return p;
    }
  }
  // On transparent huge pages when large (allocate_streamed): a run streams through its arena, and 4 KiB pages cost a
  // TLB miss every 4 KiB and, on its first run, a page fault each.
  size = round_up(std::max<size_t>(bytes, 1));
  return static_cast<uint8_t*>(allocate_streamed(size));
}

void MemoryPlanner::release(uint8_t* arena, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  // Keep the largest arenas: one per concurrent run is all a steady state needs.
  free_.emplace_back(arena, size);
  if (free_.size() > 4) {
    auto smallest =
        std::min_element(free_.begin(), free_.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    std::free(smallest->first);
    free_.erase(smallest);
  }
}

size_t MemoryPlanner::idle_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t total = 0;
  for (const auto& [arena, size] : free_) total += size;
  return total;
}

RunMemory::RunMemory(MemoryPlanner* planner, MemoryPlanner::Signature signature)
    : planner_(planner), signature_(std::move(signature)) {
  pattern_ = planner_->find(signature_);
  if (pattern_ && pattern_->total > 0) {
    arena_ = planner_->acquire(pattern_->total, arena_size_);
    if (!arena_) pattern_ = nullptr;  // out of memory for the arena: run on the heap
  }
  if (pattern_) handed_.assign(pattern_->blocks.size(), 0);
  if (!pattern_) recording_ = std::make_shared<Recording>();
}

RunMemory::~RunMemory() {
  if (arena_) planner_->release(arena_, arena_size_);
}

void RunMemory::set_step(size_t step) {
  if (!recording_) return;
  std::lock_guard<std::mutex> lock(recording_->mu);
  recording_->step = step;
}

void RunMemory::bind(size_t node, size_t output, Tensor dest) { bound_[key_of(node, output)] = std::move(dest); }

StatusOr<Tensor> RunMemory::allocate(size_t node, size_t output, DType dtype, std::vector<int64_t> dims,
                                     const void* reuse) {
  auto n = checked_num_elements(dims);
  if (!n || dtype == DType::kString) return Tensor::allocate(dtype, std::move(dims));
  const size_t bytes = dtype_storage_bytes(dtype, *n);
  const uint64_t key = key_of(node, output);
  if (!bound_.empty()) {
    auto it = bound_.find(key);
    if (it != bound_.end() && it->second.dtype() == dtype && it->second.dims() == dims) {
      Tensor dest = std::move(it->second);
      bound_.erase(it);
      return dest;
    }
  }
  if (pattern_) {
    auto it = pattern_->blocks.find(key);
    if (it != pattern_->blocks.end() && bytes <= it->second.size && !handed_[it->second.index]) {
      handed_[it->second.index] = 1;
      return Tensor::from_buffer(dtype, std::move(dims), Buffer::wrap(arena_ + it->second.offset, bytes, nullptr));
    }
    return Tensor::allocate(dtype, std::move(dims), Allocator::cpu_uninitialized());
  }
  void* p = std::aligned_alloc(kTensorAlignment, round_up(std::max<size_t>(bytes, 1)));
  if (!p) return io_error("out of memory allocating " + std::to_string(bytes) + " bytes");
  count_tensor_allocation(round_up(std::max<size_t>(bytes, 1)));
  size_t id;
  {
    std::lock_guard<std::mutex> lock(recording_->mu);
    id = recording_->allocs.size();
    recording_->allocs.push_back({key, round_up(bytes), recording_->step});
    ++recording_->count[key];
    if (reuse) {
      auto it = recording_->live.find(reuse);
      if (it != recording_->live.end()) recording_->allocs[id].reuse = it->second;
    }
    recording_->live[p] = id;
  }
  std::shared_ptr<Recording> rec = recording_;
  std::shared_ptr<void> owner(p, [rec, id](void* q) {
    {
      std::lock_guard<std::mutex> lock(rec->mu);
      rec->allocs[id].freed = rec->step;
      rec->live.erase(q);
    }
    std::free(q);
  });
  return Tensor::from_buffer(dtype, std::move(dims), Buffer::wrap(p, bytes, std::move(owner)));
}

Status RunMemory::finish(std::vector<Value>& outputs) {
  if (recording_) {
    std::vector<Recording::Alloc> allocs;
    std::unordered_map<uint64_t, size_t> count;
    {
      std::lock_guard<std::mutex> lock(recording_->mu);
      allocs = recording_->allocs;
      count = recording_->count;
    }
    // Outputs freed inside the run get a place in the arena; first fit, largest first. An output that may take
    // over an input dying at its node joins that input's group: one place for the group's whole lifetime.
    auto planned = [&](const Recording::Alloc& a) { return a.freed != kNotFreed && count[a.key] == 1; };
    std::vector<size_t> group(allocs.size());
    std::vector<size_t> last(allocs.size()), group_freed(allocs.size());
    for (size_t i = 0; i < allocs.size(); ++i) {
      group[i] = last[i] = i;
      group_freed[i] = allocs[i].freed;
      const size_t r = allocs[i].reuse;
      if (r == kNotFreed || !planned(allocs[i]) || !planned(allocs[r])) continue;
      const size_t g = group[r];
      if (last[g] == r && allocs[r].freed == allocs[i].made && allocs[i].size <= allocs[g].size) {
        group[i] = g;
        last[g] = i;
        group_freed[g] = allocs[i].freed;
      }
    }
    std::vector<size_t> order;
    for (size_t i = 0; i < allocs.size(); ++i) {
      if (planned(allocs[i]) && group[i] == i) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return allocs[a].size > allocs[b].size; });
    auto pattern = std::make_shared<MemoryPattern>();
    std::vector<std::pair<size_t, size_t>> placed;  // (group, offset)
    std::vector<size_t> offset_of(allocs.size());
    for (size_t a : order) {
      std::vector<std::pair<size_t, size_t>> busy;  // [offset, end) of placed groups alive at the same time
      for (const auto& [b, off] : placed) {
        if (allocs[a].made <= group_freed[b] && allocs[b].made <= group_freed[a]) {
          busy.emplace_back(off, off + allocs[b].size);
        }
      }
      std::sort(busy.begin(), busy.end());
      size_t offset = 0;
      for (const auto& [lo, hi] : busy) {
        if (offset + allocs[a].size <= lo) break;
        offset = std::max(offset, hi);
      }
      placed.emplace_back(a, offset);
      offset_of[a] = offset;
      pattern->total = std::max(pattern->total, offset + allocs[a].size);
    }
    for (size_t i = 0; i < allocs.size(); ++i) {
      if (!planned(allocs[i])) continue;  // a member of a group is planned, and so is its group
      const size_t index = pattern->blocks.size();
      pattern->blocks[allocs[i].key] = {allocs[group[i]].size, offset_of[group[i]], index};
    }
    planner_->store(signature_, std::move(pattern));
    return Status::ok();
  }
  if (!arena_) return Status::ok();
  // An output that the pattern did not foresee (data-dependent control flow) must not point into the arena.
  auto in_arena = [this](const Tensor& t) {
    const auto* p = static_cast<const uint8_t*>(t.raw_data());
    return p >= arena_ && p < arena_ + arena_size_;
  };
  auto detach = [&](Tensor& t) -> Status {
    if (!t.defined() || !in_arena(t)) return Status::ok();
    KILN_ASSIGN_OR_RETURN(Tensor copy, Tensor::allocate(t.dtype(), t.dims(), Allocator::cpu_uninitialized()));
    std::memcpy(copy.raw_data(), t.raw_data(), t.nbytes());
    t = std::move(copy);
    return Status::ok();
  };
  for (auto& v : outputs) {
    if (v.is_tensor()) {
      KILN_RETURN_IF_ERROR(detach(v.mutable_tensor()));
    } else if (v.is_sequence()) {
      std::vector<Tensor> items = v.items();
      bool changed = false;
      for (auto& t : items) {
        if (in_arena(t)) {
          KILN_RETURN_IF_ERROR(detach(t));
          changed = true;
        }
      }
      if (changed) {
        Value nv = Value::sequence(std::move(items), v.elem_type());
        v = v.is_optional() ? nv.as_optional() : nv;
      }
    }
  }
  return Status::ok();
}

}  // namespace kiln
