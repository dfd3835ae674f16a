#include <omp.h>

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::dnnl_kernels {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

tag layout_tag(size_t rank, int block, bool channels_last = false) {
  if (channels_last) return tag::nhwc;
  if (block == 8) return tag::nChw8c;
  if (block == 16) return tag::nChw16c;
  return plain_tag(rank);
}

// A convolution made for one input shape: the primitive, the plain layouts the tensors have, and the weights
// in the primitive's layout when they are constant.
struct ConvPrimitive {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  memory::desc src_md, w_md, dst_md, b_md;
  std::shared_ptr<PackedWeights> packed_w_bytes;  // holds packed_w's bytes
  memory packed_w;                                // empty when the weights are reordered on every call
  // The primitive takes the tensors as they are (their layouts, weights packed or already in its layout, no
  // padding lanes for set_data_handle to zero): calls then re-point the thread's memory objects in `bound`.
  bool direct = false;
  ThreadArgs bound;
};

bool unpadded(const memory::desc& md) {
  size_t n = md.data_type() == memory::data_type::bf16 ? 2 : sizeof(float);
  for (auto d : md.dims()) n *= static_cast<size_t>(d);
  return n == md.get_size();
}

// `with_primitive` false: the primitive descriptor only (which implementation oneDNN would run), without the JIT
// compilation of the primitive itself.
StatusOr<std::shared_ptr<ConvPrimitive>> make_conv(const Tensor& x, const Tensor& w, bool has_bias, bool has_sum,
                                                   const ConvParams& p, const cpu::Activation& act,
                                                   bool constant_weights, cpu::KernelCache* shared = nullptr,
                                                   bool with_primitive = true) {
  const size_t rank = w.rank();
  const bool grouped = p.group > 1;
  dnnl::engine& eng = cpu_engine();
  auto c = std::make_shared<ConvPrimitive>();
  memory::dims src_dims = to_dims(p.src_dims.empty() ? x.dims() : p.src_dims), dst_dims = to_dims(p.out_dims),
               w_dims = to_dims(w.dims());
  if (grouped) {
    w_dims.insert(w_dims.begin(), p.group);
    w_dims[1] /= p.group;
  }
  memory::dims dil(p.dilations.size());
  for (size_t i = 0; i < dil.size(); ++i) dil[i] = p.dilations[i] - 1;  // oneDNN counts the gaps
  const auto f32 = memory::data_type::f32, io = p.io_bf16 ? memory::data_type::bf16 : f32;
  c->src_md = memory::desc(src_dims, io, layout_tag(rank, p.src_block, p.channels_last));
  c->w_md = memory::desc(w_dims, f32, conv_weights_tag(rank, grouped));
  c->dst_md = memory::desc(dst_dims, io, layout_tag(rank, p.dst_block, p.channels_last));
  c->b_md = memory::desc({p.out_dims[1]}, f32, tag::x);
  const auto compute = p.bf16 ? memory::data_type::bf16 : f32;  // of x and w inside the primitive
  memory::desc w_any(w_dims, compute, tag::any);
  dnnl::post_ops ops;
  if (has_sum) ops.append_sum(1.0f);
  append_activation(ops, act);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto make_pd = [&](const memory::desc& src, const memory::desc& dst) {
    auto desc = has_bias ? dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, w_any,
                               c->b_md, dst, to_dims(p.strides), dil, to_dims(p.pad_begin), to_dims(p.pad_end))
                         : dnnl::convolution_forward::desc(
                               dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src, w_any, dst,
                               to_dims(p.strides), dil, to_dims(p.pad_begin), to_dims(p.pad_end));
    return dnnl::convolution_forward::primitive_desc(desc, attr, eng);
  };
  const memory::desc src_any(src_dims, compute, tag::any), dst_any(dst_dims, io, tag::any);
  // Blocked tensors ask for their own layout; when oneDNN has only its slow reference implementation for that
  // (a 9x9 first layer from plain NCHW, say), let it pick the layouts and reorder at the edges instead. A
  // bfloat16 primitive always picks them (AMX's kernels take channels-last only).
  const bool own_layouts = (p.dst_block && !p.bf16) || p.channels_last;
  c->pd = own_layouts ? make_pd(c->src_md, c->dst_md) : make_pd(src_any, dst_any);
  if (own_layouts && std::string(c->pd.impl_info_str()).rfind("ref", 0) == 0) c->pd = make_pd(src_any, dst_any);
  if (!with_primitive) return c;
  c->prim = dnnl::convolution_forward(c->pd);
  const bool w_as_is = c->pd.weights_desc() == c->w_md;
  if (constant_weights && !w_as_is) {
    std::vector<int64_t> fields(w_dims.begin(), w_dims.end());
    KILN_ASSIGN_OR_RETURN(c->packed_w_bytes, packed_weights(shared, cpu::CacheEntry::kDnnlConvWeights, w.raw_data(),
                                                            fields, c->w_md, c->pd.weights_desc()));
    c->packed_w = memory(c->pd.weights_desc(), eng, c->packed_w_bytes->buffer.get());
  }
  c->direct = (c->packed_w || w_as_is) && c->pd.src_desc() == c->src_md && c->pd.dst_desc() == c->dst_md &&
              unpadded(c->src_md) && unpadded(c->dst_md);
  return c;
}

}  // namespace

void cap_isa(cpu::Isa isa) {
  static std::once_flag once;
  std::call_once(once, [isa] {
    try {
      if (isa == cpu::Isa::kAvx2) dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx2);
      if (isa == cpu::Isa::kScalar) dnnl::set_max_cpu_isa(dnnl::cpu_isa::sse41);
    } catch (const dnnl::error&) {
      // oneDNN already dispatched a kernel in this process: its ISA is fixed from then on.
    }
  });
}

int preferred_channel_block() {
  static const int block = [] {
    try {
      const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
      const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
      return (isa & avx512) == avx512 ? 16 : 8;
    } catch (const dnnl::error&) {
      return 8;
    }
  }();
  return block;
}

bool conv_has_direct_kernel(const Tensor& x, const Tensor& w, bool has_bias, const ConvParams& p) {
  try {
    auto c = make_conv(x, w, has_bias, false, p, cpu::Activation{}, false, nullptr, false);
    if (!c.is_ok()) return false;
    const std::string impl = (*c)->pd.impl_info_str();
    return impl.rfind("ref", 0) != 0 && impl.find("gemm") == std::string::npos;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool conv_supported(const Tensor& x, const Tensor& w, const Tensor* b) {
  if (x.dtype() != DType::kFloat32 || w.dtype() != DType::kFloat32) return false;
  if (b && b->dtype() != DType::kFloat32) return false;
  return x.rank() >= 3 && x.rank() <= 5 && w.rank() == x.rank() && x.num_elements() > 0 && w.num_elements() > 0;
}

Status conv_f32(const Tensor& x, const Tensor& w, const Tensor* b, const Tensor* z, const ConvParams& p,
                const cpu::Activation& act, cpu::KernelCache* cache, bool constant_weights, Tensor& y, int threads,
                std::string* impl, cpu::KernelCache* shared) {
  if (y.num_elements() == 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    std::shared_ptr<ConvPrimitive> c;
    if (cache) {
      std::vector<int64_t> key = p.src_dims.empty() ? x.dims() : p.src_dims;
      key.push_back(z ? 1 : 0);
      key.push_back(b ? 1 : 0);
      key.push_back((p.bf16 ? 1 : 0) | (p.channels_last ? 2 : 0) | (p.io_bf16 ? 4 : 0));
      KILN_ASSIGN_OR_RETURN(c, cache->get<ConvPrimitive>(cpu::CacheKey{cpu::CacheEntry::kDnnlConv, key}, [&] {
        return make_conv(x, w, b != nullptr, z != nullptr, p, act, constant_weights, shared);
      }));
    } else {
      KILN_ASSIGN_OR_RETURN(c, make_conv(x, w, b != nullptr, z != nullptr, p, act, false));
    }
    if (impl) *impl = std::string("dnnl_conv(") + c->pd.impl_info_str() + ")";
    if (!y.raw_data()) return Status::ok();  // preparing: the primitive only
    dnnl::engine& eng = cpu_engine();
    if (c->direct) {
      // The sum post-op accumulates into y: start it from z.
      if (z && z->raw_data() != y.raw_data()) std::memcpy(y.raw_data(), z->raw_data(), y.nbytes());
      execute_direct(c->prim, c->bound, c->src_md, c->pd.weights_desc(), c->dst_md, c->pd.scratchpad_desc(), c->b_md,
                     x.raw_data(), c->packed_w ? c->packed_w.get_data_handle() : w.raw_data(), y.raw_data(),
                     b ? b->raw_data() : nullptr);
      return Status::ok();
    }
    dnnl::stream strm(eng);
    execute_in_user_layouts(c->prim, c->pd, memory(c->src_md, eng, const_cast<void*>(x.raw_data())), c->packed_w,
                            memory(c->w_md, eng, const_cast<void*>(w.raw_data())), memory(c->dst_md, eng, y.raw_data()),
                            c->b_md, b ? b->raw_data() : nullptr, strm, z ? z->raw_data() : nullptr);
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN convolution failed: ") + e.what());
  }
  return Status::ok();
}

namespace {

struct ReorderPrimitive {
  dnnl::reorder prim;
  memory::desc src_md, dst_md;
};

memory::data_type io_type(DType t) { return t == DType::kBFloat16 ? memory::data_type::bf16 : memory::data_type::f32; }

}  // namespace

Status reorder_channels(const Tensor& x, bool to_nhwc, Tensor& y, cpu::KernelCache* cache, int threads) {
  if (x.num_elements() == 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    const auto& d = x.dims();
    // The logical [N, C, H, W] of both.
    const memory::dims nchw = to_nhwc ? memory::dims{d[0], d[1], d[2], d[3]} : memory::dims{d[0], d[3], d[1], d[2]};
    auto make = [&]() -> StatusOr<std::shared_ptr<ReorderPrimitive>> {
      auto r = std::make_shared<ReorderPrimitive>();
      r->src_md = memory::desc(nchw, io_type(x.dtype()), to_nhwc ? tag::nchw : tag::nhwc);
      r->dst_md = memory::desc(nchw, io_type(y.dtype()), to_nhwc ? tag::nhwc : tag::nchw);
      r->prim = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), r->src_md, cpu_engine(), r->dst_md));
      return r;
    };
    std::shared_ptr<ReorderPrimitive> r;
    if (cache) {
      std::vector<int64_t> key(nchw.begin(), nchw.end());
      key.push_back(static_cast<int64_t>(x.dtype()) * 64 + static_cast<int64_t>(y.dtype()));
      key.push_back(to_nhwc ? 1 : 0);
      KILN_ASSIGN_OR_RETURN(r, cache->get<ReorderPrimitive>(cpu::CacheKey{cpu::CacheEntry::kDnnlReorder, key}, make));
    } else {
      KILN_ASSIGN_OR_RETURN(r, make());
    }
    dnnl::stream strm(cpu_engine());
    memory src(r->src_md, cpu_engine(), const_cast<void*>(x.raw_data())), dst(r->dst_md, cpu_engine(), y.raw_data());
    r->prim.execute(strm, src, dst);
    strm.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN reorder failed: ") + e.what());
  }
  return Status::ok();
}

}  // namespace kiln::dnnl_kernels
