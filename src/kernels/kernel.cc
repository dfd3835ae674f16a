#include "kernels/kernel.h"

#include <emmintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace kiln::cpu {

// Declarations of every kernel function, from the lists.
#define KILN_KERNEL(domain, op, since, until, fn) Status fn(KernelContext&);
#define KILN_KERNEL_T(domain, op, since, until, fn, dtypes) Status fn(KernelContext&);
#include "kernels/ref/kernels.inc"
#undef KILN_KERNEL
#undef KILN_KERNEL_T
#define KILN_FAST_KERNEL(domain, op, since, until, name, fn, supports) \
  Status fn(KernelContext&);                                           \
  bool supports(const KernelContext&);
#define KILN_FAST_KERNEL_P(domain, op, since, until, name, fn, supports, prefer) \
  Status fn(KernelContext&);                                                     \
  bool supports(const KernelContext&);                                           \
  bool prefer(const KernelContext&);
#define KILN_FAST_KERNEL_PREPARES KILN_FAST_KERNEL
#include "kernels/fast/fast_kernels.inc"
#undef KILN_FAST_KERNEL
#undef KILN_FAST_KERNEL_P
#undef KILN_FAST_KERNEL_PREPARES

const std::vector<KernelDef>& all_kernels() {
  static const std::vector<KernelDef> kernels = {
#define KILN_KERNEL(domain, op, since, until, fn) KernelDef{domain, op, since, until, fn, kAnyDType},
#define KILN_KERNEL_T(domain, op, since, until, fn, dtypes) KernelDef{domain, op, since, until, fn, dtypes},
#include "kernels/ref/kernels.inc"
#undef KILN_KERNEL
#undef KILN_KERNEL_T
#define KILN_FAST_KERNEL(domain, op, since, until, name, fn, supports) \
  KernelDef{domain, op, since, until, fn, kAnyDType, Backend::kFast, name, supports, nullptr},
#define KILN_FAST_KERNEL_P(domain, op, since, until, name, fn, supports, prefer) \
  KernelDef{domain, op, since, until, fn, kAnyDType, Backend::kFast, name, supports, prefer},
#define KILN_FAST_KERNEL_PREPARES(domain, op, since, until, name, fn, supports) \
  KernelDef{domain, op, since, until, fn, kAnyDType, Backend::kFast, name, supports, nullptr, nullptr, true},
#include "kernels/fast/fast_kernels.inc"
#undef KILN_FAST_KERNEL
#undef KILN_FAST_KERNEL_P
#undef KILN_FAST_KERNEL_PREPARES
  };
  return kernels;
}

namespace {

bool serves(const KernelDef& k, const std::string& domain, const std::string& op, int64_t opset) {
  const std::string_view d = domain == "ai.onnx" ? std::string_view() : std::string_view(domain);
  return d == k.domain && op == k.op && opset >= k.since && opset <= k.until;
}

}  // namespace

const KernelDef* find_kernel(const std::string& domain, const std::string& op, int64_t opset) {
  for (const auto& k : all_kernels()) {
    if (k.backend == Backend::kRef && serves(k, domain, op, opset)) return &k;
  }
  return nullptr;
}

std::vector<const KernelDef*> find_candidates(const std::string& domain, const std::string& op, int64_t opset) {
  const KernelDef* ref = find_kernel(domain, op, opset);
  if (!ref) return {};
  std::vector<const KernelDef*> out;
  for (const auto& k : all_kernels()) {
    if (k.backend == Backend::kFast && serves(k, domain, op, opset)) out.push_back(&k);
  }
  out.push_back(ref);
  return out;
}

const KernelDef* select_kernel(const std::vector<const KernelDef*>& candidates, const KernelContext& ctx,
                               bool reference_only) {
  if (!reference_only) {
    const KernelDef* supporting = nullptr;
    for (const KernelDef* k : candidates) {
      if (k->backend != Backend::kFast || !k->supports(ctx)) continue;
      if (!k->prefer || k->prefer(ctx)) return k;
      if (!supporting) supporting = k;
    }
    // None prefers the case (the usual catch-all, oneDNN, was disabled): the first that can run it.
    if (supporting) return supporting;
  }
  return candidates.back();
}

std::string dtype_mask_names(DTypeMask mask) {
  std::string out;
  for (int t = 1; t < 32; ++t) {
    if (mask & (1u << t)) out += (out.empty() ? "" : ", ") + std::string(dtype_name(static_cast<DType>(t)));
  }
  return out;
}

StatusOr<const Tensor*> KernelContext::required_input(size_t i) const {
  const Value* v = value(i);
  if (!v) return error("input " + std::to_string(i) + " is required but missing");
  if (!v->is_tensor()) {
    return error("input " + std::to_string(i) + " is " + v->describe() + " but a tensor was expected");
  }
  return &v->tensor();
}

namespace {

// Elements of ES bytes, copied with fixed-size memcpy (one move each).
template <int64_t ES>
void transpose_tile(const uint8_t* from, uint8_t* to, int64_t i0, int64_t i1, int64_t J, int64_t rstride) {
  constexpr int64_t kTile = 32;
  for (int64_t j0 = 0; j0 < J; j0 += kTile) {
    const int64_t j1 = std::min(J, j0 + kTile);
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = j0; j < j1; ++j) std::memcpy(to + (i * J + j) * ES, from + (i + j * rstride) * ES, ES);
  }
}

// to[i * J + j] = from[i + j * rstride] for a 16 x 16 block of bytes at (i0, j0): 16 loads of 16 bytes, four rounds
// of SSE2 interleaves (bytes, then pairs, quads and octets of the 16 source rows), 16 stores.
void transpose_block16(const uint8_t* from, uint8_t* to, int64_t i0, int64_t j0, int64_t J, int64_t rstride) {
  __m128i lo8[8], hi8[8], q[4][4], e[2][8];
  for (int k = 0; k < 8; ++k) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i0 + (j0 + 2 * k) * rstride));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i0 + (j0 + 2 * k + 1) * rstride));
    lo8[k] = _mm_unpacklo_epi8(a, b);  // rows 2k, 2k+1 of columns 0..7
    hi8[k] = _mm_unpackhi_epi8(a, b);  // of columns 8..15
  }
  for (int m = 0; m < 4; ++m) {  // rows 4m .. 4m+3, columns 4g .. 4g+3 in q[m][g]
    q[m][0] = _mm_unpacklo_epi16(lo8[2 * m], lo8[2 * m + 1]);
    q[m][1] = _mm_unpackhi_epi16(lo8[2 * m], lo8[2 * m + 1]);
    q[m][2] = _mm_unpacklo_epi16(hi8[2 * m], hi8[2 * m + 1]);
    q[m][3] = _mm_unpackhi_epi16(hi8[2 * m], hi8[2 * m + 1]);
  }
  for (int o = 0; o < 2; ++o) {  // rows 8o .. 8o+7, columns 2h, 2h+1 in e[o][h]
    for (int g = 0; g < 4; ++g) {
      e[o][2 * g] = _mm_unpacklo_epi32(q[2 * o][g], q[2 * o + 1][g]);
      e[o][2 * g + 1] = _mm_unpackhi_epi32(q[2 * o][g], q[2 * o + 1][g]);
    }
  }
  for (int h = 0; h < 8; ++h) {  // all 16 rows of columns 2h and 2h+1: the output's rows i0 + 2h, i0 + 2h + 1
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to + (i0 + 2 * h) * J + j0), _mm_unpacklo_epi64(e[0][h], e[1][h]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to + (i0 + 2 * h + 1) * J + j0), _mm_unpackhi_epi64(e[0][h], e[1][h]));
  }
}

// A few source rows (an image's 3 channels to channels-last): each output row's J bytes gathered in turn.
template <int64_t kJ>
void transpose_narrow(const uint8_t* from, uint8_t* to, int64_t i0, int64_t i1, int64_t rstride) {
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = 0; j < kJ; ++j) to[i * kJ + j] = from[i + j * rstride];
}

// Bytes: 16 x 16 blocks in SSE2 registers where both extents allow, the edges element by element.
template <>
void transpose_tile<1>(const uint8_t* from, uint8_t* to, int64_t i0, int64_t i1, int64_t J, int64_t rstride) {
  switch (J) {
    case 2: return transpose_narrow<2>(from, to, i0, i1, rstride);
    case 3: return transpose_narrow<3>(from, to, i0, i1, rstride);
    case 4: return transpose_narrow<4>(from, to, i0, i1, rstride);
    default: break;
  }
  const int64_t i16 = i0 + (i1 - i0) / 16 * 16, j16 = J / 16 * 16;
  for (int64_t i = i0; i < i16; i += 16)
    for (int64_t j = 0; j < j16; j += 16) transpose_block16(from, to, i, j, J, rstride);
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t j = i < i16 ? j16 : 0; j < J; ++j) to[i * J + j] = from[i + j * rstride];
  }
}

// out[outer..., i, j] = src[outer offset + i + j * rstride] for merged dims d (the last two I and J, I contiguous in
// the source), elements of es bytes; false (nothing done) for an element size without a copy type.
bool transpose_tiles(const KernelContext& ctx, const uint8_t* base, uint8_t* dst, size_t es,
                     const std::vector<int64_t>& d, const std::vector<int64_t>& st) {
  if (es != 1 && es != 2 && es != 4 && es != 8) return false;
  const size_t n = d.size();
  const int64_t I = d[n - 2], J = d[n - 1], rstride = st[n - 1];
  int64_t outer = 1;
  for (size_t k = 0; k + 2 < n; ++k) outer *= d[k];
  constexpr int64_t kTile = 32;
  const int64_t tiles = (I + kTile - 1) / kTile;
  ctx.parallel_for(outer * tiles, std::max<int64_t>(1, 8192 / (kTile * J)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t o = t / tiles, off = 0;
      for (size_t k = n - 2; k-- > 0;) {
        off += (o % d[k]) * st[k];
        o /= d[k];
      }
      const int64_t i0 = (t % tiles) * kTile, i1 = std::min(I, i0 + kTile);
      const uint8_t* from = base + off * static_cast<int64_t>(es);
      uint8_t* to = dst + (t / tiles) * I * J * static_cast<int64_t>(es);
      switch (es) {
        case 1: transpose_tile<1>(from, to, i0, i1, J, rstride); break;
        case 2: transpose_tile<2>(from, to, i0, i1, J, rstride); break;
        case 4: transpose_tile<4>(from, to, i0, i1, J, rstride); break;
        default: transpose_tile<8>(from, to, i0, i1, J, rstride); break;
      }
    }
  });
  return true;
}

}  // namespace

void strided_copy(const KernelContext& ctx, const Tensor& src, int64_t offset, std::vector<int64_t> dims,
                  std::vector<int64_t> strides, Tensor& out) {
  const size_t es = static_cast<size_t>(dtype_bits(src.dtype()) / 8);
  if (out.num_elements() == 0) return;
  // Drop unit dims, then merge neighbours that are contiguous in the source.
  std::vector<int64_t> d, st;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    if (!d.empty() && st.back() == strides[i] * dims[i]) {
      d.back() *= dims[i];
      st.back() = strides[i];
    } else {
      d.push_back(dims[i]);
      st.push_back(strides[i]);
    }
  }
  if (d.empty()) {
    d.push_back(1);
    st.push_back(1);
  }
  const int64_t row = d.back(), rstride = st.back();
  const int64_t rows = out.num_elements() / row;
  const auto* base = static_cast<const uint8_t*>(src.raw_data()) + offset * static_cast<int64_t>(es);
  auto* dst = static_cast<uint8_t*>(out.raw_data());
  if (d.size() >= 2 && st[d.size() - 2] == 1 && rstride != 1) {
    // The innermost two dims swap (NCHW <-> NHWC, a matrix transpose): in tiles, which read and write whole cache
    // lines, where row by row each element would come from a different line.
    const bool done = transpose_tiles(ctx, base, dst, es, d, st);
    if (done) return;
  }
  const size_t outer_rank = d.size() - 1;
  ctx.parallel_for(rows, std::max<int64_t>(1, 16384 / row), [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx(outer_rank, 0);
    int64_t rem = r0;
    for (size_t k = outer_rank; k-- > 0;) {
      idx[k] = rem % d[k];
      rem /= d[k];
    }
    for (int64_t r = r0; r < r1; ++r) {
      int64_t off = 0;
      for (size_t k = 0; k < outer_rank; ++k) off += idx[k] * st[k];
      const uint8_t* from = base + off * static_cast<int64_t>(es);
      uint8_t* to = dst + r * row * static_cast<int64_t>(es);
      if (rstride == 1) {
        std::memcpy(to, from, static_cast<size_t>(row) * es);
      } else if (es == 4) {
        auto* t4 = reinterpret_cast<uint32_t*>(to);
        for (int64_t j = 0; j < row; ++j) std::memcpy(t4 + j, from + j * rstride * 4, 4);
      } else {
        for (int64_t j = 0; j < row; ++j)
          std::memcpy(to + j * static_cast<int64_t>(es), from + j * rstride * static_cast<int64_t>(es), es);
      }
      for (size_t k = outer_rank; k-- > 0;) {
        if (++idx[k] < d[k]) break;
        idx[k] = 0;
      }
    }
  });
}

std::vector<int64_t> nchwc_dims(const std::vector<int64_t>& nchw, int64_t block) {
  return {nchw[0], (nchw[1] + block - 1) / block, nchw[2], nchw[3], block};
}

void nchwc_block(const KernelContext& ctx, const float* src, float* dst, int64_t N, int64_t C, int64_t HW,
                 int64_t block) {
  const int64_t CB = (C + block - 1) / block;
  ctx.parallel_for(N * CB, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / CB, cb = p % CB;
      const int64_t lanes = std::min<int64_t>(block, C - cb * block);
      const float* in = src + (n * C + cb * block) * HW;
      float* out = dst + p * HW * block;
      for (int64_t i = 0; i < HW; ++i) {
        for (int64_t l = 0; l < lanes; ++l) out[i * block + l] = in[l * HW + i];
        for (int64_t l = lanes; l < block; ++l) out[i * block + l] = 0.0f;
      }
    }
  });
}

void nchwc_unblock(const KernelContext& ctx, const float* src, float* dst, int64_t N, int64_t C, int64_t HW,
                   int64_t block) {
  const int64_t CB = (C + block - 1) / block;
  ctx.parallel_for(N * C, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, HW)), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n = p / C, c = p % C;
      const float* in = src + (n * CB + c / block) * HW * block + c % block;
      float* out = dst + p * HW;
      for (int64_t i = 0; i < HW; ++i) out[i] = in[i * block];
    }
  });
}

int KernelContext::num_threads() const { return pool_ ? pool_->num_threads() : 1; }

void KernelContext::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) const {
  if (pool_) {
    pool_->parallel_for(n, grain, fn);
  } else if (n > 0) {
    fn(0, n);
  }
}

void KernelContext::parallel_for_static(int64_t n, const std::function<void(int64_t, int64_t)>& fn) const {
  if (pool_) {
    pool_->parallel_for_static(n, fn);
  } else if (n > 0) {
    fn(0, n);
  }
}

Value KernelContext::take_output(size_t i) {
  if (i >= outputs_.size()) return Value();
  if (value_outputs_[i].defined()) return std::move(value_outputs_[i]);
  if (outputs_[i].defined()) return Value(std::move(outputs_[i]));
  return Value();
}

Status KernelContext::check_output_size(size_t i, DType dtype, const std::vector<int64_t>& dims) const {
  const std::string what =
      "output " + std::to_string(i) + " would be " + dtype_name(dtype) + " " + dims_to_string(dims);
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return error(what + ", which has a negative dimension");
    if (__builtin_mul_overflow(n, d, &n)) {
      return resource_exhausted(error(what + ": more than 2^63 elements").message());
    }
  }
  const size_t per = dtype == DType::kString ? sizeof(std::string) : dtype_storage_bytes(dtype, 1);
  size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(n), std::max<size_t>(per, 1), &bytes)) bytes = SIZE_MAX;
  const size_t limit = tensor_limit_ ? tensor_limit_ : physical_memory_bytes();
  if (bytes > limit) {
    const std::string of = tensor_limit_what_.empty()
                               ? "this machine's " + human_bytes(static_cast<double>(limit)) + " of memory"
                               : tensor_limit_what_;
    return resource_exhausted(error(what + ": " + std::to_string(n) + " elements, " + std::to_string(bytes) +
                                    " bytes (" + human_bytes(static_cast<double>(bytes)) + "), more than " + of)
                                  .message());
  }
  return Status::ok();
}

StatusOr<Tensor*> KernelContext::allocate_output(size_t i, DType dtype, std::vector<int64_t> dims) {
  if (i >= outputs_.size()) return error("has no output " + std::to_string(i));
  if (preparing_) return allocate_output_uninitialized(i, dtype, std::move(dims));
  if (memory_ && dtype != DType::kString) {
    KILN_ASSIGN_OR_RETURN(Tensor * t, allocate_output_uninitialized(i, dtype, std::move(dims)));
    std::memset(t->raw_data(), 0, t->nbytes());
    return t;
  }
  KILN_RETURN_IF_ERROR(check_output_size(i, dtype, dims));
  auto t = Tensor::allocate(dtype, std::move(dims));
  if (!t.is_ok()) return Status(t.status().code(), error(t.status().message()).message());
  outputs_[i] = std::move(t).value();
  return &outputs_[i];
}

StatusOr<Tensor*> KernelContext::allocate_output_uninitialized(size_t i, DType dtype, std::vector<int64_t> dims) {
  if (i >= outputs_.size()) return error("has no output " + std::to_string(i));
  KILN_RETURN_IF_ERROR(check_output_size(i, dtype, dims));
  if (preparing_) {
    outputs_[i] = Tensor::borrow(dtype, std::move(dims), nullptr);
    return &outputs_[i];
  }
  if (dtype == DType::kString) return allocate_output(i, dtype, std::move(dims));
  auto t = memory_ ? memory_->allocate(node_index_, i, dtype, std::move(dims))
                   : Tensor::allocate(dtype, std::move(dims), Allocator::cpu_uninitialized());
  if (!t.is_ok()) return Status(t.status().code(), error(t.status().message()).message());
  outputs_[i] = std::move(t).value();
  return &outputs_[i];
}

StatusOr<Tensor*> KernelContext::allocate_output_reusing(size_t i, size_t input, DType dtype,
                                                         std::vector<int64_t> dims) {
  const Tensor* in = this->input(input);
  if (i >= outputs_.size() || !memory_ || preparing_ || !in || dtype == DType::kString || in->nbytes() == 0) {
    return allocate_output_uninitialized(i, dtype, std::move(dims));
  }
  const auto* lo = static_cast<const uint8_t*>(in->raw_data());
  const uint8_t* hi = lo + in->nbytes();
  for (size_t j = 0; j < inputs_.size(); ++j) {
    const Tensor* other = j == input ? nullptr : this->input(j);
    if (!other || other->nbytes() == 0) continue;
    const auto* olo = static_cast<const uint8_t*>(other->raw_data());
    if (olo < hi && lo < olo + other->nbytes()) return allocate_output_uninitialized(i, dtype, std::move(dims));
  }
  KILN_RETURN_IF_ERROR(check_output_size(i, dtype, dims));
  auto t = memory_->allocate(node_index_, i, dtype, std::move(dims), lo);
  if (!t.is_ok()) return Status(t.status().code(), error(t.status().message()).message());
  outputs_[i] = std::move(t).value();
  return &outputs_[i];
}

int64_t KernelContext::attr_int(const std::string& name, int64_t def) const {
  const auto* a = attr(name);
  return a && a->type == ir::AttrType::kInt ? a->i : def;
}
float KernelContext::attr_float(const std::string& name, float def) const {
  const auto* a = attr(name);
  return a && a->type == ir::AttrType::kFloat ? a->f : def;
}
std::string KernelContext::attr_string(const std::string& name, const std::string& def) const {
  const auto* a = attr(name);
  return a && a->type == ir::AttrType::kString ? a->s : def;
}
std::vector<int64_t> KernelContext::attr_ints(const std::string& name, std::vector<int64_t> def) const {
  const auto* a = attr(name);
  return a && a->type == ir::AttrType::kInts ? a->ints : def;
}
std::vector<float> KernelContext::attr_floats(const std::string& name, std::vector<float> def) const {
  const auto* a = attr(name);
  return a && a->type == ir::AttrType::kFloats ? a->floats : def;
}

Status KernelContext::error(const std::string& msg) const {
  std::string where = node_.name.empty() ? "node (" : "node '" + node_.name + "' (";
  where +=
      (node_.domain.empty() ? "" : node_.domain + "::") + node_.op_type + ", opset " + std::to_string(opset_) + ")";
  return invalid_argument(where + ": " + msg);
}

Status KernelContext::unsupported_dtype(DType t, const std::string& which) const {
  return Status(StatusCode::kUnimplemented,
                error(which + " has dtype " + dtype_name(t) + ", which kiln's CPU kernel for " + node_.op_type +
                      " does not support")
                    .message());
}

StatusOr<std::vector<int64_t>> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      return invalid_argument("shapes " + dims_to_string(a) + " and " + dims_to_string(b) +
                              " cannot be broadcast (dimension " + std::to_string(i) + ": " + std::to_string(da) +
                              " vs " + std::to_string(db) + ")");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool next_index(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (size_t d = dims.size(); d-- > 0;) {
    if (++idx[d] < dims[d]) return true;
    idx[d] = 0;
  }
  return false;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  std::vector<int64_t> s(out.size(), 0);
  auto own = strides_of(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

StatusOr<int64_t> normalize_axis(const KernelContext& ctx, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) {
    return ctx.error("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + rank : axis;
}

int64_t product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < dims.size(); ++i) p *= dims[i];
  return p;
}

void copy_elements(Tensor& dst, int64_t dst_off, const Tensor& src, int64_t src_off, int64_t n) {
  if (n <= 0) return;
  if (src.dtype() == DType::kString) {
    const auto& s = src.strings();
    auto& d = dst.mutable_strings();
    for (int64_t i = 0; i < n; ++i) d[static_cast<size_t>(dst_off + i)] = s[static_cast<size_t>(src_off + i)];
    return;
  }
  const size_t eb = static_cast<size_t>(dtype_bits(src.dtype()) / 8);
  std::memcpy(static_cast<char*>(dst.raw_data()) + static_cast<size_t>(dst_off) * eb,
              static_cast<const char*>(src.raw_data()) + static_cast<size_t>(src_off) * eb,
              static_cast<size_t>(n) * eb);
}

std::vector<int64_t> to_int64s(const Tensor& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.num_elements()));
  dispatch_numeric(t.dtype(), [&](auto v) {
    using T = decltype(v);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int64_t>(t.data<T>()[i]);
  });
  return out;
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.num_elements()));
  if (is_half(t.dtype())) {
    auto f = as_float(t);
    if (f.is_ok()) return to_doubles(*f);
    return out;
  }
  dispatch_numeric(t.dtype(), [&](auto v) {
    using T = decltype(v);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(t.data<T>()[i]);
  });
  return out;
}

bool is_half(DType t) { return t == DType::kFloat16 || t == DType::kBFloat16; }

StatusOr<Tensor> as_float(const Tensor& t) {
  if (!is_half(t.dtype())) return t;
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(DType::kFloat32, t.dims()));
  const auto* src = t.data<uint16_t>();
  auto* dst = out.data<float>();
  const bool bf = t.dtype() == DType::kBFloat16;
  for (int64_t i = 0; i < t.num_elements(); ++i) dst[i] = bf ? bfloat16_to_float(src[i]) : half_to_float(src[i]);
  return out;
}

StatusOr<Tensor> from_float(const Tensor& t, DType target) {
  if (!is_half(target) || t.dtype() != DType::kFloat32) return t;
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(target, t.dims()));
  const auto* src = t.data<float>();
  auto* dst = out.data<uint16_t>();
  const bool bf = target == DType::kBFloat16;
  for (int64_t i = 0; i < t.num_elements(); ++i) dst[i] = bf ? float_to_bfloat16(src[i]) : float_to_half(src[i]);
  return out;
}

}  // namespace kiln::cpu
