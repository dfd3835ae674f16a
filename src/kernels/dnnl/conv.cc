#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::dnnl_kernels {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

tag plain_tag(size_t rank) {
  switch (rank) {
    case 3: return tag::ncw;
    case 4: return tag::nchw;
    default: return tag::ncdhw;
  }
}

tag weights_tag(size_t rank, bool grouped) {
  if (grouped) return rank == 3 ? tag::goiw : rank == 4 ? tag::goihw : tag::goidhw;
  return rank == 3 ? tag::oiw : rank == 4 ? tag::oihw : tag::oidhw;
}

memory::dims to_dims(const std::vector<int64_t>& v) { return memory::dims(v.begin(), v.end()); }

}  // namespace

bool conv_supported(const Tensor& x, const Tensor& w, const Tensor* b) {
  if (x.dtype() != DType::kFloat32 || w.dtype() != DType::kFloat32) return false;
  if (b && b->dtype() != DType::kFloat32) return false;
  return x.rank() >= 3 && x.rank() <= 5 && w.rank() == x.rank() && x.num_elements() > 0 && w.num_elements() > 0;
}

StatusOr<Tensor> conv_f32(const Tensor& x, const Tensor& w, const Tensor* b, const ConvParams& p, int threads) {
  const size_t rank = x.rank();
  const bool grouped = p.group > 1;
  KILN_ASSIGN_OR_RETURN(Tensor y, Tensor::allocate(DType::kFloat32, p.out_dims));
  if (y.num_elements() == 0) return y;
  try {
    if (threads > 0) omp_set_num_threads(threads);
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    memory::dims src_dims = to_dims(x.dims()), dst_dims = to_dims(p.out_dims), w_dims = to_dims(w.dims());
    if (grouped) {
      w_dims.insert(w_dims.begin(), p.group);
      w_dims[1] /= p.group;
    }
    memory::dims dil(p.dilations.size());
    for (size_t i = 0; i < dil.size(); ++i) dil[i] = p.dilations[i] - 1;  // oneDNN counts the gaps

    auto src_user = memory({src_dims, memory::data_type::f32, plain_tag(rank)}, eng, const_cast<void*>(x.raw_data()));
    auto w_user =
        memory({w_dims, memory::data_type::f32, weights_tag(rank, grouped)}, eng, const_cast<void*>(w.raw_data()));
    auto dst_user = memory({dst_dims, memory::data_type::f32, plain_tag(rank)}, eng, y.raw_data());

    memory::desc src_any(src_dims, memory::data_type::f32, tag::any);
    memory::desc w_any(w_dims, memory::data_type::f32, tag::any);
    memory::desc dst_any(dst_dims, memory::data_type::f32, tag::any);
    memory::desc b_md({p.out_dims[1]}, memory::data_type::f32, tag::x);
    auto desc = b ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                    dnnl::algorithm::convolution_direct, src_any, w_any, b_md, dst_any,
                                                    to_dims(p.strides), dil, to_dims(p.pad_begin), to_dims(p.pad_end))
                  : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                    dnnl::algorithm::convolution_direct, src_any, w_any, dst_any,
                                                    to_dims(p.strides), dil, to_dims(p.pad_begin), to_dims(p.pad_end));
    dnnl::convolution_forward::primitive_desc pd(desc, eng);

    auto src_mem = src_user, w_mem = w_user, dst_mem = dst_user;
    if (pd.src_desc() != src_user.get_desc()) {
      src_mem = memory(pd.src_desc(), eng);
      dnnl::reorder(src_user, src_mem).execute(strm, src_user, src_mem);
    }
    if (pd.weights_desc() != w_user.get_desc()) {
      w_mem = memory(pd.weights_desc(), eng);
      dnnl::reorder(w_user, w_mem).execute(strm, w_user, w_mem);
    }
    if (pd.dst_desc() != dst_user.get_desc()) dst_mem = memory(pd.dst_desc(), eng);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, dst_mem}};
    if (b) args.emplace(DNNL_ARG_BIAS, memory(b_md, eng, const_cast<void*>(b->raw_data())));
    dnnl::convolution_forward(pd).execute(strm, args);
    if (dst_mem != dst_user) dnnl::reorder(dst_mem, dst_user).execute(strm, dst_mem, dst_user);
    strm.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN convolution failed: ") + e.what());
  }
  return y;
}

}  // namespace kiln::dnnl_kernels
