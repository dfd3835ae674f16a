#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::dnnl_kernels {
namespace {

using dnnl::memory;

// A constant B in a primitive's layout.
struct MatMulPrimitive {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  memory::desc a_md, b_md, y_md, bias_md;
  std::shared_ptr<PackedWeights> packed_b;  // when B is constant and the primitive wants another layout
  memory packed_b_mem;                      // a view of packed_b's bytes
};

// The layout oneDNN wants for B, as a number (FNV-1a over its descriptor's bytes) for a cache key.
StatusOr<std::shared_ptr<MatMulPrimitive>> make_matmul(const float* b, bool has_bias, const MatMulParams& p,
                                                       const cpu::Activation& act, bool constant_b,
                                                       cpu::KernelCache* shared) {
  dnnl::engine& eng = cpu_engine();
  auto m = std::make_shared<MatMulPrimitive>();
  const auto f32 = memory::data_type::f32;
  // What the primitive reads: the tensors as they are (float32), or bfloat16 copies of A (row-major) and B (in
  // the layout oneDNN picks when constant) made by reorders.
  const auto bf16 = memory::data_type::bf16;
  memory::desc a_pd_md, b_pd_md;
  if (p.batch == 1) {
    m->a_md = memory::desc({p.M, p.K}, f32, p.trans_a ? memory::dims{1, p.M} : memory::dims{p.K, 1});
    m->b_md = memory::desc({p.K, p.N}, f32, p.trans_b ? memory::dims{1, p.K} : memory::dims{p.N, 1});
    m->y_md = memory::desc({p.M, p.N}, f32, memory::format_tag::ab);
    m->bias_md = memory::desc({1, p.N}, f32, memory::format_tag::ab);
    a_pd_md = p.bf16 ? memory::desc({p.M, p.K}, bf16, memory::format_tag::ab) : m->a_md;
    b_pd_md = constant_b ? memory::desc({p.K, p.N}, p.bf16 ? bf16 : f32, memory::format_tag::any)
              : p.bf16   ? memory::desc({p.K, p.N}, bf16, memory::format_tag::ab)
                         : m->b_md;
  } else {
    m->a_md = memory::desc({p.batch, p.M, p.K}, f32, memory::format_tag::abc);
    m->b_md = memory::desc({p.batch, p.K, p.N}, f32, memory::format_tag::abc);
    m->y_md = memory::desc({p.batch, p.M, p.N}, f32, memory::format_tag::abc);
    m->bias_md = memory::desc({1, 1, p.N}, f32, memory::format_tag::abc);
    a_pd_md = p.bf16 ? memory::desc({p.batch, p.M, p.K}, bf16, memory::format_tag::abc) : m->a_md;
    b_pd_md = p.bf16 ? memory::desc({p.batch, p.K, p.N}, bf16, memory::format_tag::abc) : m->b_md;
  }
  dnnl::primitive_attr attr;
  if (p.alpha != 1.0f) attr.set_output_scales(0, {p.alpha});
  dnnl::post_ops ops;
  append_activation(ops, act);
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto desc = has_bias ? dnnl::matmul::desc(a_pd_md, b_pd_md, m->bias_md, m->y_md)
                       : dnnl::matmul::desc(a_pd_md, b_pd_md, m->y_md);
  m->pd = dnnl::matmul::primitive_desc(desc, attr, eng);
  m->prim = dnnl::matmul(m->pd);
  if (constant_b && m->pd.weights_desc() != m->b_md) {
    const memory::desc want = m->pd.weights_desc();
    KILN_ASSIGN_OR_RETURN(m->packed_b, packed_weights(shared, cpu::CacheEntry::kDnnlMatMulWeights, b,
                                                      {p.K, p.N, p.trans_b}, m->b_md, want));
    m->packed_b_mem = memory(want, eng, m->packed_b->buffer.get());
  }
  return m;
}

}  // namespace

Status matmul_f32(const float* a, const float* b, const float* bias, float* y, const MatMulParams& p,
                  const cpu::Activation& act, cpu::KernelCache* cache, bool constant_b, int threads, std::string* impl,
                  cpu::KernelCache* shared) {
  if (p.batch <= 0 || p.M <= 0 || p.N <= 0) return Status::ok();
  if (p.K <= 0) {
    if (!y) return Status::ok();  // preparing: nothing to make
    // An empty sum: bias (or 0), then the activation.
    for (int64_t i = 0; i < p.batch * p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) y[i * p.N + j] = bias ? bias[j] : 0.0f;
    cpu::apply_activation(act, y, p.batch * p.M * p.N);
    return Status::ok();
  }
  try {
    if (threads > 0) omp_set_num_threads(threads);
    std::shared_ptr<MatMulPrimitive> m;
    auto make = [&] { return make_matmul(b, bias != nullptr, p, act, constant_b && cache, shared); };
    if (cache) {
      std::vector<int64_t> key{p.batch, p.M, p.N, p.K, p.trans_a, p.trans_b, bias != nullptr, p.bf16};
      KILN_ASSIGN_OR_RETURN(m, cache->get<MatMulPrimitive>(cpu::CacheKey{cpu::CacheEntry::kDnnlMatMul, key}, make));
    } else {
      KILN_ASSIGN_OR_RETURN(m, make());
    }
    if (impl) *impl = std::string("dnnl_matmul(") + m->pd.impl_info_str() + ")";
    if (!y) return Status::ok();  // preparing: the primitive only
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    memory b_mem =
        m->packed_b ? m->packed_b_mem
                    : in_layout(memory(m->b_md, eng, const_cast<float*>(b)), m->pd.weights_desc(), strm, kWeightsSlot);
    memory a_mem = in_layout(memory(m->a_md, eng, const_cast<float*>(a)), m->pd.src_desc(), strm);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, memory(m->y_md, eng, y)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, memory(m->bias_md, eng, const_cast<float*>(bias)));
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_for(m->pd.scratchpad_desc()));
    m->prim.execute(strm, args);
    strm.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN matmul failed: ") + e.what());
  }
  return Status::ok();
}

Status softmax_f32(const float* x, float* y, int64_t rows, int64_t len, bool log, int threads) {
  if (rows <= 0 || len <= 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    memory::desc md({rows, len}, memory::data_type::f32, memory::format_tag::ab);
    memory src(md, eng, const_cast<float*>(x)), dst(md, eng, y);
    if (log) {
      dnnl::logsoftmax_forward::primitive_desc pd(
          dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng);
      dnnl::logsoftmax_forward(pd).execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    } else {
      dnnl::softmax_forward::primitive_desc pd(dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1),
                                               eng);
      dnnl::softmax_forward(pd).execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    }
    strm.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN softmax failed: ") + e.what());
  }
  return Status::ok();
}

Status eltwise_f32(float* data, int64_t n, const cpu::Activation& act, int threads) {
  if (act.none() || n <= 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    memory::desc md({n}, memory::data_type::f32, memory::format_tag::a);
    memory mem(md, eng, data);
    // The activation as a chain of eltwise steps (HardSigmoid is two), the same ones the post-ops use.
    dnnl::post_ops ops;
    append_activation(ops, act);
    for (int i = 0; i < ops.len(); ++i) {
      dnnl::algorithm alg;
      float scale, alpha, beta;
      ops.get_params_eltwise(i, scale, alg, alpha, beta);
      dnnl::eltwise_forward::primitive_desc pd(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, alg, md, alpha, beta), eng);
      dnnl::eltwise_forward(pd).execute(strm, {{DNNL_ARG_SRC, mem}, {DNNL_ARG_DST, mem}});
    }
    strm.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN eltwise failed: ") + e.what());
  }
  return Status::ok();
}

}  // namespace kiln::dnnl_kernels
