// Quantized convolution and matrix product on oneDNN's int8 primitives (VNNI or AMX where the CPU has them): ONNX
// QLinearConv's arithmetic, y = saturate(round((acc + bias) * scale[m]) + y_zero_point) with acc the int32 sum of (x -
// x_zero_point) * w, which is exactly what oneDNN computes with a source zero point, a bias added before the output
// scales and a destination zero point.
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

// The scales' bits, to key the primitive made with them.
void append_bits(std::vector<int64_t>& key, const std::vector<float>& scales) {
  for (float s : scales) {
    int32_t bits;
    std::memcpy(&bits, &s, sizeof bits);
    key.push_back(bits);
  }
}

struct QConvPrimitive {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
  memory::desc src_md, w_md, dst_md, b_md;
  std::shared_ptr<PackedWeights> packed_w_bytes;
  memory packed_w;
  // The primitive takes the tensors as they are (channels-last, weights packed or already in its layout): calls
  // re-point the thread's memory objects in `bound` instead of making new ones and a stream each time.
  bool direct = false;
  ThreadArgs bound;
};

StatusOr<std::shared_ptr<QConvPrimitive>> make_qconv(const Tensor& x, const Tensor& w, bool has_bias,
                                                     const QConvParams& p, bool constant_weights,
                                                     cpu::KernelCache* shared) {
  const ConvParams& cp = p.conv;
  const size_t rank = w.rank();
  const bool grouped = cp.group > 1;
  auto q = std::make_shared<QConvPrimitive>();
  memory::dims w_dims = to_dims(w.dims());
  if (grouped) {
    w_dims.insert(w_dims.begin(), cp.group);
    w_dims[1] /= cp.group;
  }
  memory::dims dil(cp.dilations.size());
  for (size_t i = 0; i < dil.size(); ++i) dil[i] = cp.dilations[i] - 1;
  const auto u8 = memory::data_type::u8, s8 = memory::data_type::s8;
  const auto x_dt = p.x_signed ? s8 : u8, y_dt = p.y_signed ? s8 : u8;
  memory::dims x_dims = to_dims(x.dims());
  if (p.channels_last) x_dims = {x_dims[0], x_dims[3], x_dims[1], x_dims[2]};
  const tag act_tag = p.channels_last ? tag::nhwc : plain_tag(rank);
  q->src_md = memory::desc(x_dims, x_dt, act_tag);
  q->w_md = memory::desc(w_dims, s8, conv_weights_tag(rank, grouped));
  q->dst_md = memory::desc(to_dims(cp.out_dims), y_dt, act_tag);
  q->b_md = memory::desc({cp.out_dims[1]}, memory::data_type::s32, tag::x);
  dnnl::primitive_attr attr;
  attr.set_output_scales(p.scales.size() > 1 ? 1 << 1 : 0, p.scales);
  if (p.x_zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {p.x_zero_point});
  if (p.y_zero_point != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {p.y_zero_point});
  if (p.sum) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, p.clip_lo, p.clip_hi);
    ops.append_sum(p.sum_scale, p.sum_zero_point);
    if (p.relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const memory::desc src_any(q->src_md.dims(), x_dt, tag::any), dst_any(q->dst_md.dims(), y_dt, tag::any),
      w_any(w_dims, s8, tag::any);
  auto desc = has_bias ? dnnl::convolution_forward::desc(
                             dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any, w_any,
                             q->b_md, dst_any, to_dims(cp.strides), dil, to_dims(cp.pad_begin), to_dims(cp.pad_end))
                       : dnnl::convolution_forward::desc(
                             dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any, w_any,
                             dst_any, to_dims(cp.strides), dil, to_dims(cp.pad_begin), to_dims(cp.pad_end));
  q->pd = dnnl::convolution_forward::primitive_desc(desc, attr, cpu_engine());
  if (p.impl != QConvParams::Impl::kFirst) {
    // oneDNN's implementations in its order of preference; "jit_int8:" is not a prefix of "jit_int8_1x1:".
    const std::string want = p.impl == QConvParams::Impl::kJit ? "jit_int8:" : "jit_int8_1x1:";
    dnnl::convolution_forward::primitive_desc it = q->pd;
    do {
      if (std::string(it.impl_info_str()).rfind(want, 0) == 0) {
        q->pd = it;
        break;
      }
    } while (it.next_impl());
  }
  q->prim = dnnl::convolution_forward(q->pd);
  if (constant_weights) {
    std::vector<int64_t> fields(w_dims.begin(), w_dims.end());
    fields.push_back(p.x_signed);  // signed sources add a compensation to the packed weights
    KILN_ASSIGN_OR_RETURN(q->packed_w_bytes, packed_weights(shared, cpu::CacheEntry::kDnnlConvWeights, w.raw_data(),
                                                            fields, q->w_md, q->pd.weights_desc()));
    q->packed_w = memory(q->pd.weights_desc(), cpu_engine(), q->packed_w_bytes->buffer.get());
  }
  q->direct = (q->packed_w || q->pd.weights_desc() == q->w_md) && q->pd.src_desc() == q->src_md &&
              q->pd.dst_desc() == q->dst_md;
  return q;
}

}  // namespace

Status qconv_int8(const Tensor& x, const Tensor& w, const Tensor* bias, const QConvParams& p, cpu::KernelCache* cache,
                  bool constant_weights, Tensor& y, int threads, std::string* impl, cpu::KernelCache* shared,
                  const void* z) {
  if (y.num_elements() == 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    std::shared_ptr<QConvPrimitive> q;
    auto make = [&] { return make_qconv(x, w, bias != nullptr, p, constant_weights && cache, shared); };
    if (cache) {
      std::vector<int64_t> key = x.dims();
      key.insert(key.end(), {bias != nullptr, p.x_signed, p.y_signed, p.x_zero_point, p.y_zero_point, p.channels_last,
                             static_cast<int64_t>(p.impl)});
      append_bits(key, p.scales);
      if (p.sum) {
        key.insert(key.end(), {p.relu, p.sum_zero_point});
        append_bits(key, {p.clip_lo, p.clip_hi, p.sum_scale});
      }
      KILN_ASSIGN_OR_RETURN(q, cache->get<QConvPrimitive>(cpu::CacheKey{cpu::CacheEntry::kDnnlQConv, key}, make));
    } else {
      KILN_ASSIGN_OR_RETURN(q, make());
    }
    if (impl) *impl = std::string("dnnl_qconv(") + q->pd.impl_info_str() + ")";
    dnnl::engine& eng = cpu_engine();
    if (q->direct) {
      // The sum post-op accumulates into y: start it from z.
      if (p.sum && z && z != y.raw_data()) std::memcpy(y.raw_data(), z, y.nbytes());
      execute_direct(q->prim, q->bound, q->src_md, q->pd.weights_desc(), q->dst_md, q->pd.scratchpad_desc(), q->b_md,
                     x.raw_data(), q->packed_w ? q->packed_w.get_data_handle() : w.raw_data(), y.raw_data(),
                     bias ? bias->raw_data() : nullptr);
      return Status::ok();
    }
    dnnl::stream strm(eng);
    execute_in_user_layouts(q->prim, q->pd, memory(q->src_md, eng, const_cast<void*>(x.raw_data())), q->packed_w,
                            memory(q->w_md, eng, const_cast<void*>(w.raw_data())), memory(q->dst_md, eng, y.raw_data()),
                            q->b_md, bias ? bias->raw_data() : nullptr, strm, p.sum ? z : nullptr);
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN quantized convolution failed: ") + e.what());
  }
  return Status::ok();
}

namespace {

struct QMatMulPrimitive {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  memory::desc a_md, b_md, y_md;
  std::shared_ptr<PackedWeights> packed_b;
  memory packed_b_mem;
};

memory::data_type dt_of(DType t) {
  switch (t) {
    case DType::kUInt8: return memory::data_type::u8;
    case DType::kInt8: return memory::data_type::s8;
    default: return memory::data_type::s32;
  }
}

StatusOr<std::shared_ptr<QMatMulPrimitive>> make_qmatmul(const void* b, const QMatMulParams& p, bool constant_b,
                                                         cpu::KernelCache* shared) {
  auto q = std::make_shared<QMatMulPrimitive>();
  q->a_md = memory::desc({p.M, p.K}, dt_of(p.a_type), tag::ab);
  q->b_md = memory::desc({p.K, p.N}, dt_of(p.b_type), tag::ab);
  q->y_md = memory::desc({p.M, p.N}, dt_of(p.y_type), tag::ab);
  dnnl::primitive_attr attr;
  if (!p.scales.empty()) attr.set_output_scales(p.scales.size() > 1 ? 1 << 1 : 0, p.scales);
  if (p.a_zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {p.a_zero_point});
  if (p.y_zero_point != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {p.y_zero_point});
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const memory::desc b_any = constant_b ? memory::desc({p.K, p.N}, dt_of(p.b_type), tag::any) : q->b_md;
  q->pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(q->a_md, b_any, q->y_md), attr, cpu_engine());
  q->prim = dnnl::matmul(q->pd);
  if (constant_b && q->pd.weights_desc() != q->b_md) {
    KILN_ASSIGN_OR_RETURN(q->packed_b,
                          packed_weights(shared, cpu::CacheEntry::kDnnlMatMulWeights, b,
                                         {p.K, p.N, 2, p.a_type == DType::kInt8}, q->b_md, q->pd.weights_desc()));
    q->packed_b_mem = memory(q->pd.weights_desc(), cpu_engine(), q->packed_b->buffer.get());
  }
  return q;
}

}  // namespace

Status qmatmul_int8(const void* a, const void* b, void* y, const QMatMulParams& p, cpu::KernelCache* cache,
                    bool constant_b, int threads, std::string* impl, cpu::KernelCache* shared) {
  if (p.M <= 0 || p.N <= 0) return Status::ok();
  try {
    if (threads > 0) omp_set_num_threads(threads);
    std::shared_ptr<QMatMulPrimitive> q;
    auto make = [&] { return make_qmatmul(b, p, constant_b && cache, shared); };
    if (cache) {
      std::vector<int64_t> key{p.M,
                               p.N,
                               p.K,
                               static_cast<int64_t>(p.a_type),
                               static_cast<int64_t>(p.b_type),
                               static_cast<int64_t>(p.y_type),
                               p.a_zero_point,
                               p.y_zero_point};
      append_bits(key, p.scales);
      KILN_ASSIGN_OR_RETURN(q, cache->get<QMatMulPrimitive>(cpu::CacheKey{cpu::CacheEntry::kDnnlQMatMul, key}, make));
    } else {
      KILN_ASSIGN_OR_RETURN(q, make());
    }
    if (impl) *impl = std::string("dnnl_qmatmul(") + q->pd.impl_info_str() + ")";
    dnnl::engine& eng = cpu_engine();
    dnnl::stream strm(eng);
    memory b_mem = q->packed_b ? q->packed_b_mem : memory(q->b_md, eng, const_cast<void*>(b));
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(q->a_md, eng, const_cast<void*>(a))},
                                         {DNNL_ARG_WEIGHTS, b_mem},
                                         {DNNL_ARG_DST, memory(q->y_md, eng, y)}};
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_for(q->pd.scratchpad_desc()));
    q->prim.execute(strm, args);
    strm.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN quantized matmul failed: ") + e.what());
  }
  return Status::ok();
}

}  // namespace kiln::dnnl_kernels
