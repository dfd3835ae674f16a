#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::dnnl_kernels {

Status matmul_f32(const float* a, const float* b, const float* bias, float* y, const MatMulParams& p, int threads) {
  using dnnl::memory;
  if (p.batch <= 0 || p.M <= 0 || p.N <= 0 || p.K <= 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    const auto f32 = memory::data_type::f32;
    memory::desc a_md, b_md, y_md, bias_md;
    if (p.batch == 1) {
      a_md = memory::desc({p.M, p.K}, f32, p.trans_a ? memory::dims{1, p.M} : memory::dims{p.K, 1});
      b_md = memory::desc({p.K, p.N}, f32, p.trans_b ? memory::dims{1, p.K} : memory::dims{p.N, 1});
      y_md = memory::desc({p.M, p.N}, f32, memory::format_tag::ab);
      bias_md = memory::desc({1, p.N}, f32, memory::format_tag::ab);
    } else {
      a_md = memory::desc({p.batch, p.M, p.K}, f32, memory::format_tag::abc);
      b_md = memory::desc({p.batch, p.K, p.N}, f32, memory::format_tag::abc);
      y_md = memory::desc({p.batch, p.M, p.N}, f32, memory::format_tag::abc);
      bias_md = memory::desc({1, 1, p.N}, f32, memory::format_tag::abc);
    }
    dnnl::primitive_attr attr;
    if (p.alpha != 1.0f) attr.set_output_scales(0, {p.alpha});
    auto desc = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, y_md) : dnnl::matmul::desc(a_md, b_md, y_md);
    dnnl::matmul::primitive_desc pd(desc, attr, eng);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(a_md, eng, const_cast<float*>(a))},
                                         {DNNL_ARG_WEIGHTS, memory(b_md, eng, const_cast<float*>(b))},
                                         {DNNL_ARG_DST, memory(y_md, eng, y)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, memory(bias_md, eng, const_cast<float*>(bias)));
    dnnl::matmul(pd).execute(strm, args);
    strm.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN matmul failed: ") + e.what());
  }
  return Status::ok();
}

}  // namespace kiln::dnnl_kernels
