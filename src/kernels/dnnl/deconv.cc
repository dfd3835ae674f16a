#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::dnnl_kernels {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

// ONNX keeps ConvTranspose weights as [C_in, C_out / group, k...]; oneDNN's logical order is (g,) out, in, k.
tag deconv_weights_tag(size_t rank, bool grouped) {
  if (grouped) return rank == 3 ? tag::acbd : rank == 4 ? tag::acbde : tag::acbdef;
  return rank == 3 ? tag::bac : rank == 4 ? tag::bacd : tag::bacde;
}

struct DeconvPrimitive {
  dnnl::deconvolution_forward::primitive_desc pd;
  dnnl::deconvolution_forward prim;
  memory::desc src_md, w_md, dst_md, b_md;
  std::shared_ptr<void> packed_w_buffer;  // holds packed_w's bytes
  memory packed_w;
};

StatusOr<std::shared_ptr<DeconvPrimitive>> make_deconv(const Tensor& x, const Tensor& w, bool has_bias,
                                                       const ConvParams& p, bool constant_weights) {
  const size_t rank = x.rank();
  const bool grouped = p.group > 1;
  dnnl::engine& eng = cpu_engine();
  auto d = std::make_shared<DeconvPrimitive>();
  const auto f32 = memory::data_type::f32;
  memory::dims w_dims = to_dims(w.dims());
  std::swap(w_dims[0], w_dims[1]);  // (out / group, in, k...)
  if (grouped) {
    w_dims[1] /= p.group;
    w_dims.insert(w_dims.begin(), p.group);
  }
  memory::dims dil(p.dilations.size()), pad_r(p.pad_end.size());
  for (size_t i = 0; i < dil.size(); ++i) dil[i] = p.dilations[i] - 1;
  for (size_t i = 0; i < pad_r.size(); ++i) pad_r[i] = p.pad_end[i];
  d->src_md = memory::desc(to_dims(x.dims()), f32, plain_tag(rank));
  d->w_md = memory::desc(w_dims, f32, deconv_weights_tag(rank, grouped));
  d->dst_md = memory::desc(to_dims(p.out_dims), f32, plain_tag(rank));
  d->b_md = memory::desc({p.out_dims[1]}, f32, tag::x);
  const memory::desc src_any(to_dims(x.dims()), f32, tag::any), w_any(w_dims, f32, tag::any),
      dst_any(to_dims(p.out_dims), f32, tag::any);
  auto desc = has_bias
                  ? dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                      dnnl::algorithm::deconvolution_direct, src_any, w_any, d->b_md,
                                                      dst_any, to_dims(p.strides), dil, to_dims(p.pad_begin), pad_r)
                  : dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                      dnnl::algorithm::deconvolution_direct, src_any, w_any, dst_any,
                                                      to_dims(p.strides), dil, to_dims(p.pad_begin), pad_r);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  d->pd = dnnl::deconvolution_forward::primitive_desc(desc, attr, eng);
  d->prim = dnnl::deconvolution_forward(d->pd);
  if (constant_weights && d->pd.weights_desc() != d->w_md)
    d->packed_w = pack_weights(d->w_md, w.raw_data(), d->pd.weights_desc(), d->packed_w_buffer);
  return d;
}

}  // namespace

Status deconv_f32(const Tensor& x, const Tensor& w, const Tensor* b, const ConvParams& p, cpu::KernelCache* cache,
                  bool constant_weights, Tensor& y, int threads, std::string* impl) {
  if (y.num_elements() == 0 || x.num_elements() == 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    std::shared_ptr<DeconvPrimitive> d;
    auto make = [&] { return make_deconv(x, w, b != nullptr, p, constant_weights && cache); };
    if (cache) {
      std::vector<int64_t> key = x.dims();
      key.push_back(b ? 1 : 0);
      KILN_ASSIGN_OR_RETURN(d, cache->get<DeconvPrimitive>(cpu::CacheKey{cpu::CacheEntry::kDnnlDeconv, key}, make));
    } else {
      KILN_ASSIGN_OR_RETURN(d, make());
    }
    if (impl) *impl = std::string("dnnl_deconv(") + d->pd.impl_info_str() + ")";
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    execute_in_user_layouts(d->prim, d->pd, memory(d->src_md, eng, const_cast<void*>(x.raw_data())), d->packed_w,
                            memory(d->w_md, eng, const_cast<void*>(w.raw_data())), memory(d->dst_md, eng, y.raw_data()),
                            d->b_md, b ? b->raw_data() : nullptr, strm);
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN deconvolution failed: ") + e.what());
  }
  return Status::ok();
}

}  // namespace kiln::dnnl_kernels
