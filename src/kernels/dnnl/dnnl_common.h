// What the oneDNN kernels share: the one CPU engine of the process and post-op construction.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/activation.h"
#include "kernels/kernel.h"
#include "kiln/core/allocator.h"

namespace kiln::dnnl_kernels {

inline dnnl::memory::dims to_dims(const std::vector<int64_t>& v) { return dnnl::memory::dims(v.begin(), v.end()); }

// The plain (NCW, NCHW, NCDHW) layout of a tensor of `rank`, and ONNX's convolution weights' (OIW.., grouped:
// GOIW..).
inline dnnl::memory::format_tag plain_tag(size_t rank) {
  using tag = dnnl::memory::format_tag;
  return rank == 3 ? tag::ncw : rank == 4 ? tag::nchw : tag::ncdhw;
}
inline dnnl::memory::format_tag conv_weights_tag(size_t rank, bool grouped) {
  using tag = dnnl::memory::format_tag;
  if (grouped) return rank == 3 ? tag::goiw : rank == 4 ? tag::goihw : tag::goidhw;
  return rank == 3 ? tag::oiw : rank == 4 ? tag::oihw : tag::oidhw;
}

inline dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Buffers a thread reuses from one call to the next, each growing to the largest size asked of it: slot 0 is the
// scratchpad (primitives are made with a user scratchpad: library scratchpads are not safe when concurrent runs
// execute the same cached primitive), slots 1 to 3 hold tensors reordered for a primitive (the source, say in
// bfloat16; the destination in the primitive's layout; weights that are not constant).
inline constexpr size_t kScratchSlot = 0, kSourceSlot = 1, kDestinationSlot = 2, kWeightsSlot = 3;
inline void* thread_buffer(size_t slot, size_t need) {
  struct Buffers {
    void* data[4] = {};
    size_t size[4] = {};
    ~Buffers() {
      for (void* d : data) std::free(d);
    }
  };
  thread_local Buffers buffers;
  if (need > buffers.size[slot]) {
    std::free(buffers.data[slot]);
    buffers.size[slot] = need;
    buffers.data[slot] = allocate_scratch(&buffers.size[slot]);
    if (!buffers.data[slot]) {
      buffers.size[slot] = 0;
      throw dnnl::error(dnnl_out_of_memory, "cannot allocate a oneDNN work buffer");
    }
  }
  return need ? buffers.data[slot] : nullptr;
}

inline void* scratch_buffer(size_t need) { return thread_buffer(kScratchSlot, need); }

inline dnnl::memory scratchpad_for(const dnnl::memory::desc& md) {
  return dnnl::memory(md, cpu_engine(), scratch_buffer(md.get_size()));
}

// The memory objects and stream of a cached primitive's calls, one set per calling thread (concurrent runs
// share the primitive), made once: each call re-points them at its buffers with set_data_handle instead of
// making new ones (every dnnl::memory and argument map costs allocations, a fair part of a small node's time).
class ThreadArgs {
 public:
  struct Set {
    dnnl::stream strm;
    std::unordered_map<int, dnnl::memory> args;
  };
  // The calling thread's set; init() fills a new one.
  template <typename Init>
  std::shared_ptr<Set> get(Init&& init) {
    const std::thread::id me = std::this_thread::get_id();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, set] : sets_) {
      if (id == me) return set;
    }
    // Threads come and go in a long-lived process: keep the sets of the last few only.
    if (sets_.size() >= kMaxThreads) sets_.erase(sets_.begin());
    auto set = std::make_shared<Set>();
    set->strm = dnnl::stream(cpu_engine());
    init(set->args);
    sets_.emplace_back(me, set);
    return set;
  }

 private:
  static constexpr size_t kMaxThreads = 16;
  std::mutex mu_;
  std::vector<std::pair<std::thread::id, std::shared_ptr<Set>>> sets_;
};

// A weighted primitive (convolution) on the tensors as they are: its layouts are theirs, its weights packed or
// already in its layout. The calling thread's memory objects in `bound` are made once and re-pointed at x, w, y,
// the bias (when not null; b_md its layout) and the thread's scratchpad. Waits.
inline void execute_direct(const dnnl::primitive& prim, ThreadArgs& bound, const dnnl::memory::desc& src_md,
                           const dnnl::memory::desc& w_md, const dnnl::memory::desc& dst_md,
                           const dnnl::memory::desc& scratchpad_md, const dnnl::memory::desc& b_md, const void* x,
                           const void* w, void* y, const void* bias) {
  dnnl::engine& eng = cpu_engine();
  const std::shared_ptr<ThreadArgs::Set> set = bound.get([&](std::unordered_map<int, dnnl::memory>& args) {
    args = {{DNNL_ARG_SRC, dnnl::memory(src_md, eng, nullptr)},
            {DNNL_ARG_WEIGHTS, dnnl::memory(w_md, eng, nullptr)},
            {DNNL_ARG_DST, dnnl::memory(dst_md, eng, nullptr)},
            {DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad_md, eng, nullptr)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(b_md, eng, nullptr));
  });
  auto& args = set->args;
  args.at(DNNL_ARG_SRC).set_data_handle(const_cast<void*>(x));
  args.at(DNNL_ARG_WEIGHTS).set_data_handle(const_cast<void*>(w));
  args.at(DNNL_ARG_DST).set_data_handle(y);
  args.at(DNNL_ARG_SCRATCHPAD).set_data_handle(scratch_buffer(scratchpad_md.get_size()));
  if (bias) args.at(DNNL_ARG_BIAS).set_data_handle(const_cast<void*>(bias));
  prim.execute(set->strm, args);
  set->strm.wait();
}

// `user` in the layout (and data type) `want`: itself when it already is, else the thread's buffer `slot` filled by
// a reorder on `strm`.
inline dnnl::memory in_layout(const dnnl::memory& user, const dnnl::memory::desc& want, dnnl::stream& strm,
                              size_t slot = kSourceSlot) {
  if (user.get_desc() == want) return user;
  dnnl::memory out(want, cpu_engine(), thread_buffer(slot, want.get_size()));
  dnnl::reorder(user, out).execute(strm, const_cast<dnnl::memory&>(user), out);
  return out;
}

// Weights in the primitive's layout, reordered once into `buffer` (allocate_streamed: huge pages when large,
// since every run streams them); the memory object lives only as long as the buffer.
inline dnnl::memory pack_weights(const dnnl::memory::desc& user_md, const void* data, const dnnl::memory::desc& want,
                                 std::shared_ptr<void>& buffer) {
  buffer.reset(allocate_streamed(want.get_size()), std::free);
  if (!buffer) throw dnnl::error(dnnl_out_of_memory, "cannot allocate packed weights");
  std::memset(buffer.get(), 0, want.get_size());  // the padding of blocked layouts must read as zero
  dnnl::memory user(user_md, cpu_engine(), const_cast<void*>(data)), packed(want, cpu_engine(), buffer.get());
  dnnl::stream strm(cpu_engine());
  dnnl::reorder(user, packed).execute(strm, user, packed);
  strm.wait();
  return packed;
}

// Constant weights reordered into a primitive's layout: shared through the session's cache by every primitive that
// wants the same weight in the same layout, and carried by engine plans (kernels/prepared.h). `buffer` holds
// `bytes` bytes; a primitive views them with a memory object of its own weights_desc().
struct PackedWeights {
  std::shared_ptr<void> buffer;
  size_t bytes = 0;
};

// A hash of a memory descriptor's layout (dims, blocking, padding), to key weights by the layout they are in.
inline int64_t layout_hash(const dnnl::memory::desc& md) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&md.data);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < sizeof(md.data); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  return static_cast<int64_t>(h);
}

// The weights at `w` (in `user_md`) reordered to `want`: from `shared` under {entry, {w's address, fields...,
// bytes, layout hash}} when given (made there the first time), else made now.
inline StatusOr<std::shared_ptr<PackedWeights>> packed_weights(cpu::KernelCache* shared, cpu::CacheEntry entry,
                                                               const void* w, const std::vector<int64_t>& fields,
                                                               const dnnl::memory::desc& user_md,
                                                               const dnnl::memory::desc& want) {
  auto pack = [&]() -> StatusOr<std::shared_ptr<PackedWeights>> {
    auto p = std::make_shared<PackedWeights>();
    pack_weights(user_md, w, want, p->buffer);
    p->bytes = want.get_size();
    return p;
  };
  if (!shared) return pack();
  cpu::CacheKey key{entry, {static_cast<int64_t>(reinterpret_cast<intptr_t>(w))}};
  key.fields.insert(key.fields.end(), fields.begin(), fields.end());
  key.fields.push_back(static_cast<int64_t>(want.get_size()));
  key.fields.push_back(layout_hash(want));
  return shared->get<PackedWeights>(key, pack);
}

// Runs a convolution-like primitive on src, weights and dst (in its layouts) plus the bias when not null (as
// b_md) and the thread's scratchpad; a dst the primitive computed outside dst_user is reordered into it. Waits.
inline void execute_weighted(const dnnl::primitive& prim, const dnnl::memory::desc& scratchpad_md,
                             const dnnl::memory& src, const dnnl::memory& w, const dnnl::memory& dst,
                             const dnnl::memory& dst_user, const dnnl::memory::desc& b_md, const void* bias,
                             dnnl::stream& strm) {
  std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(b_md, cpu_engine(), const_cast<void*>(bias)));
  args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_for(scratchpad_md));
  prim.execute(strm, args);
  if (dst != dst_user)
    dnnl::reorder(dst, dst_user).execute(strm, const_cast<dnnl::memory&>(dst), const_cast<dnnl::memory&>(dst_user));
  strm.wait();
}

// Runs a convolution-like primitive on tensors in their own (user) layouts: the source reordered into the primitive's
// layout (a thread buffer), the weights `packed` when given, else `w_user` reordered likewise, the destination
// computed in the primitive's layout (a thread buffer, unless dst_user is in it already) and reordered into dst_user.
// `z` (optional, dst_user's layout and size): the sum post-op's addend, where the destination starts. Waits.
template <typename PrimitiveDesc>
void execute_in_user_layouts(const dnnl::primitive& prim, const PrimitiveDesc& pd, const dnnl::memory& src_user,
                             const dnnl::memory& packed, const dnnl::memory& w_user, const dnnl::memory& dst_user,
                             const dnnl::memory::desc& b_md, const void* bias, dnnl::stream& strm,
                             const void* z = nullptr) {
  const dnnl::memory w = packed ? packed : in_layout(w_user, pd.weights_desc(), strm, kWeightsSlot);
  const dnnl::memory src = in_layout(src_user, pd.src_desc(), strm);
  dnnl::memory dst = dst_user;
  if (pd.dst_desc() != dst_user.get_desc()) {
    dst = dnnl::memory(pd.dst_desc(), cpu_engine(), thread_buffer(kDestinationSlot, pd.dst_desc().get_size()));
  }
  if (z && dst == dst_user) {
    if (z != dst_user.get_data_handle()) std::memcpy(dst_user.get_data_handle(), z, dst_user.get_desc().get_size());
  } else if (z) {
    dnnl::memory z_user(dst_user.get_desc(), cpu_engine(), const_cast<void*>(z));
    dnnl::reorder(z_user, dst).execute(strm, z_user, dst);
  }
  execute_weighted(prim, pd.scratchpad_desc(), src, w, dst, dst_user, b_md, bias, strm);
}

// Appends `act` as eltwise post-ops (HardSigmoid takes two: linear, then clip to [0, 1]).
inline void append_activation(dnnl::post_ops& ops, const cpu::Activation& act) {
  using K = cpu::Activation::Kind;
  using A = dnnl::algorithm;
  switch (act.kind) {
    case K::kNone: return;
    case K::kRelu: ops.append_eltwise(1.0f, A::eltwise_relu, 0.0f, 0.0f); return;
    case K::kLeakyRelu: ops.append_eltwise(1.0f, A::eltwise_relu, act.alpha, 0.0f); return;
    case K::kClip: ops.append_eltwise(1.0f, A::eltwise_clip, act.alpha, act.beta); return;
    case K::kSigmoid: ops.append_eltwise(1.0f, A::eltwise_logistic, 0.0f, 0.0f); return;
    case K::kHardSigmoid:
      ops.append_eltwise(1.0f, A::eltwise_linear, act.alpha, act.beta);
      ops.append_eltwise(1.0f, A::eltwise_clip, 0.0f, 1.0f);
      return;
    case K::kHardSwish: ops.append_eltwise(1.0f, A::eltwise_hardswish, 0.0f, 0.0f); return;
    case K::kSilu: ops.append_eltwise(1.0f, A::eltwise_swish, 1.0f, 0.0f); return;
    case K::kGelu: ops.append_eltwise(1.0f, A::eltwise_gelu_erf, 0.0f, 0.0f); return;
    case K::kTanh: ops.append_eltwise(1.0f, A::eltwise_tanh, 0.0f, 0.0f); return;
  }
}

}  // namespace kiln::dnnl_kernels
