// What the oneDNN kernels share: the one CPU engine of the process and post-op construction.
#pragma once

#include <cstdlib>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>

#include "kernels/cpu/activation.h"

namespace kiln::dnnl_kernels {

inline dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Primitives are made with a user scratchpad (library scratchpads are not safe when concurrent runs execute
// the same cached primitive): each thread keeps one growing scratch buffer and lends it to the primitive it runs.
inline dnnl::memory scratchpad_for(const dnnl::memory::desc& md) {
  struct Scratch {
    void* data = nullptr;
    size_t size = 0;
    ~Scratch() { std::free(data); }
  };
  thread_local Scratch scratch;
  const size_t need = md.get_size();
  if (need > scratch.size) {
    std::free(scratch.data);
    scratch.size = (need + 4095) / 4096 * 4096;
    scratch.data = std::aligned_alloc(64, scratch.size);
    if (!scratch.data) {
      scratch.size = 0;
      throw dnnl::error(dnnl_out_of_memory, "cannot allocate the oneDNN scratchpad");
    }
  }
  return dnnl::memory(md, cpu_engine(), need ? scratch.data : nullptr);
}

// `user` in the layout `want`: itself when it already is, else a new memory filled by a reorder on `strm`.
inline dnnl::memory in_layout(const dnnl::memory& user, const dnnl::memory::desc& want, dnnl::stream& strm) {
  if (user.get_desc() == want) return user;
  dnnl::memory out(want, cpu_engine());
  dnnl::reorder(user, out).execute(strm, const_cast<dnnl::memory&>(user), out);
  return out;
}

// Weights in the primitive's layout, reordered once (wait on `strm` before using them).
inline dnnl::memory pack_weights(const dnnl::memory::desc& user_md, const void* data, const dnnl::memory::desc& want) {
  dnnl::stream strm(cpu_engine());
  dnnl::memory packed = in_layout(dnnl::memory(user_md, cpu_engine(), const_cast<void*>(data)), want, strm);
  strm.wait();
  return packed;
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
