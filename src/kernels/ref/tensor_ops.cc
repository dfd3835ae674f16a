// Tensor manipulation: shapes, copies, gathers, casts.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>

#include "kernels/kernel.h"
#include "kernels/ref/tensor_ops.h"

namespace kiln::cpu {

Status constant_kernel(KernelContext& ctx) {
  const auto& n = ctx.node();
  if (const auto* a = n.attr("value"); a && a->type == ir::AttrType::kTensor) {
    ctx.set_output(0, a->t.tensor);
    return Status::ok();
  }
  if (const auto* a = n.attr("value_float")) {
    ctx.set_output(0, Tensor::from_vector<float>({}, {a->f}));
  } else if (const auto* a = n.attr("value_floats")) {
    ctx.set_output(0, Tensor::from_vector<float>({static_cast<int64_t>(a->floats.size())}, a->floats));
  } else if (const auto* a = n.attr("value_int")) {
    ctx.set_output(0, Tensor::from_vector<int64_t>({}, {a->i}));
  } else if (const auto* a = n.attr("value_ints")) {
    ctx.set_output(0, Tensor::from_vector<int64_t>({static_cast<int64_t>(a->ints.size())}, a->ints));
  } else if (const auto* a = n.attr("value_string")) {
    ctx.set_output(0, Tensor::from_strings({}, {a->s}));
  } else if (const auto* a = n.attr("value_strings")) {
    ctx.set_output(0, Tensor::from_strings({static_cast<int64_t>(a->strings.size())}, a->strings));
  } else {
    return ctx.error("has no value attribute (value, value_float(s), value_int(s) or value_string(s))");
  }
  return Status::ok();
}

Status shape_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  const auto rank = static_cast<int64_t>(x->rank());
  int64_t start = ctx.attr_int("start", 0), end = ctx.attr_int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  std::vector<int64_t> dims(x->dims().begin() + start, x->dims().begin() + end);
  ctx.set_output(0, Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims));
  return Status::ok();
}

Status reshape_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  std::vector<int64_t> shape;
  if (ctx.opset() < 5) {
    shape = ctx.attr_ints("shape");
  } else {
    KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(1));
    shape = to_int64s(*s);
  }
  const bool allowzero = ctx.attr_int("allowzero", 0) != 0;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0 && !allowzero) {
      if (i >= x->rank()) return ctx.error("shape has 0 at dimension " + std::to_string(i) + " beyond the input rank");
      shape[i] = x->dims()[i];
    }
    if (shape[i] == -1) {
      if (infer >= 0) return ctx.error("shape " + dims_to_string(shape) + " has more than one -1");
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      return ctx.error("shape " + dims_to_string(shape) + " has a negative dimension");
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x->num_elements() % known != 0) {
      return ctx.error("cannot reshape " + dims_to_string(x->dims()) + " to " + dims_to_string(shape));
    }
    shape[static_cast<size_t>(infer)] = x->num_elements() / known;
  }
  auto n = checked_num_elements(shape);
  if (!n || *n != x->num_elements()) {
    return ctx.error("cannot reshape " + dims_to_string(x->dims()) + " (" + std::to_string(x->num_elements()) +
                     " elements) to " + dims_to_string(shape));
  }
  ctx.set_output(0, x->reshaped(shape));
  return Status::ok();
}

}  // namespace kiln::cpu

// ===================================================================================================
// Helpers shared by the copy-style kernels below.
namespace kiln::cpu {
namespace {

// Bytes per element for copy kernels; 0 for strings and the packed 4-bit types.
size_t elem_bytes(DType t) { return t == DType::kString ? 0 : static_cast<size_t>(dtype_bits(t) / 8); }

bool copyable(DType t) { return t == DType::kString || (dtype_bits(t) % 8 == 0 && dtype_bits(t) > 0); }

// A zero-filled (or empty-string-filled) tensor of any copyable dtype.
StatusOr<Tensor> alloc_any(DType dtype, const std::vector<int64_t>& dims) {
  if (dtype == DType::kString) {
    auto n = checked_num_elements(dims);
    if (!n) return invalid_argument("bad output dims " + dims_to_string(dims));
    return Tensor::from_strings(dims, std::vector<std::string>(static_cast<size_t>(*n)));
  }
  return Tensor::allocate(dtype, dims);
}

// Copies n elements from src[si..] to dst[di..] (same dtype).
void copy_elems(Tensor& dst, int64_t di, const Tensor& src, int64_t si, int64_t n) {
  if (n <= 0) return;
  if (src.dtype() == DType::kString) {
    auto& d = dst.mutable_strings();
    const auto& s = src.strings();
    for (int64_t k = 0; k < n; ++k) d[static_cast<size_t>(di + k)] = s[static_cast<size_t>(si + k)];
    return;
  }
  const size_t es = elem_bytes(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw_data()) + static_cast<size_t>(di) * es,
              static_cast<const char*>(src.raw_data()) + static_cast<size_t>(si) * es, static_cast<size_t>(n) * es);
}

// out[i] = x[src[i]] (src[i] < 0 leaves the zero / empty string).
StatusOr<Tensor> take(const Tensor& x, const std::vector<int64_t>& dims, const std::vector<int64_t>& src) {
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x.dtype(), dims));
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] >= 0) copy_elems(out, static_cast<int64_t>(i), x, src[i], 1);
  }
  return out;
}

// Calls f(idx) for every multi-index of dims in row-major order.
template <typename F>
void for_each_index(const std::vector<int64_t>& dims, F&& f) {
  int64_t total = 1;
  for (int64_t d : dims) total *= d;
  if (total <= 0) return;
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t i = 0; i < total; ++i) {
    f(idx);
    for (size_t d = dims.size(); d-- > 0;) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}

int64_t prod(const std::vector<int64_t>& d, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < d.size() && i < to; ++i) p *= d[i];
  return p;
}

Status check_copyable(const KernelContext& ctx, const Tensor& t, const std::string& which = "input 0") {
  if (!copyable(t.dtype())) return ctx.unsupported_dtype(t.dtype(), which);
  return Status::ok();
}

StatusOr<std::vector<int64_t>> int_input(const KernelContext& ctx, size_t i, const char* name) {
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(i));
  if (t->dtype() != DType::kInt64 && t->dtype() != DType::kInt32) {
    return ctx.error("input " + std::to_string(i) + " (" + name + ") must be int32 or int64, got " +
                     dtype_name(t->dtype()));
  }
  return to_int64s(*t);
}

// Applies f(T{}) for numeric types and float16/bfloat16 computed as float: returns the result converted back.
// f(const Tensor& x_as_float_or_numeric, auto tag) -> StatusOr<Tensor>.

}  // namespace
}  // namespace kiln::cpu

// ===================================================================================================
// Cast / CastLike
namespace kiln::cpu {
namespace {

// Python repr() of a float value with the shortest digits that round-trip as float F.
template <typename F>
std::string python_float_string(F v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, r.ptr);
  // s = [-]d[.ddd]e(+|-)XX
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s = s.substr(1);
  }
  const size_t epos = s.find('e');
  std::string mant = s.substr(0, epos);
  const int exp = std::stoi(s.substr(epos + 1));
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exp >= -4 && exp < 16) {
    const int nd = static_cast<int>(digits.size());
    if (exp >= 0) {
      if (nd <= exp + 1) {
        out = digits + std::string(static_cast<size_t>(exp + 1 - nd), '0') + ".0";
      } else {
        out = digits.substr(0, static_cast<size_t>(exp + 1)) + "." + digits.substr(static_cast<size_t>(exp + 1));
      }
    } else {
      out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return neg ? "-" + out : out;
}

// The shortest decimal string that rounds back to the same float16/bfloat16 value, in Python style.
std::string half_string(float v, DType t) {
  if (std::isnan(v) || std::isinf(v)) return python_float_string(v);
  auto to_half = [t](float f) { return t == DType::kBFloat16 ? float_to_bfloat16(f) : float_to_half(f); };
  const uint16_t want = to_half(v);
  for (int prec = 0; prec < 9; ++prec) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.*e", prec, static_cast<double>(v));
    const float back = std::strtof(buf, nullptr);
    if (to_half(back) == want) return python_float_string(back);
  }
  return python_float_string(v);
}

// Casts one value with defined behaviour for out-of-range float -> integer (NaN -> 0, saturating).
template <typename D, typename S>
D cast_value(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S{};
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    if (std::isnan(v)) return D{};
    const auto lo = static_cast<long double>(std::numeric_limits<D>::lowest());
    const auto hi = static_cast<long double>(std::numeric_limits<D>::max());
    const auto x = static_cast<long double>(v);
    if (x <= lo) return std::numeric_limits<D>::lowest();
    if (x >= hi) return std::numeric_limits<D>::max();
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

StatusOr<Tensor> cast_tensor(const KernelContext& ctx, const Tensor& in, DType to) {
  const DType from = in.dtype();
  if (from == to) return in;
  const auto& dims = in.dims();
  const int64_t n = in.num_elements();
  if (to == DType::kString) {
    std::vector<std::string> out(static_cast<size_t>(n));
    KILN_ASSIGN_OR_RETURN(Tensor x, as_float(in));
    const bool half = is_half(from);
    bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* p = x.data<T>();
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<T, bool>) {
          out[static_cast<size_t>(i)] = p[i] ? "True" : "False";
        } else if constexpr (std::is_floating_point_v<T>) {
          if (half) {
            out[static_cast<size_t>(i)] = half_string(static_cast<float>(p[i]), from);
          } else {
            out[static_cast<size_t>(i)] = python_float_string(p[i]);
          }
        } else {
          out[static_cast<size_t>(i)] = std::to_string(p[i]);
        }
      }
    });
    if (!ok) return ctx.unsupported_dtype(from);
    return Tensor::from_strings(dims, std::move(out));
  }
  const DType compute_to = is_half(to) ? DType::kFloat32 : to;
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(compute_to, dims));
  if (from == DType::kString) {
    const auto& s = in.strings();
    bool ok = dispatch_numeric(compute_to, [&](auto tag) {
      using D = decltype(tag);
      D* dst = out.data<D>();
      for (int64_t i = 0; i < n; ++i) {
        const std::string& str = s[static_cast<size_t>(i)];
        if constexpr (std::is_floating_point_v<D>) {
          dst[i] = static_cast<D>(std::strtod(str.c_str(), nullptr));
        } else if constexpr (std::is_same_v<D, bool>) {
          dst[i] = !(str.empty() || str == "0" || str == "False" || str == "false" ||
                     std::strtod(str.c_str(), nullptr) == 0.0);
        } else if constexpr (std::is_signed_v<D>) {
          dst[i] = static_cast<D>(std::strtoll(str.c_str(), nullptr, 10));
        } else {
          dst[i] = static_cast<D>(std::strtoull(str.c_str(), nullptr, 10));
        }
      }
    });
    if (!ok) return ctx.error(std::string("cannot cast string to ") + dtype_name(to));
  } else {
    KILN_ASSIGN_OR_RETURN(Tensor x, as_float(in));
    bool inner_ok = true;
    bool ok = dispatch_numeric(x.dtype(), [&](auto stag) {
      using S = decltype(stag);
      const S* src = x.data<S>();
      inner_ok = dispatch_numeric(compute_to, [&](auto dtag) {
        using D = decltype(dtag);
        D* dst = out.data<D>();
        for (int64_t i = 0; i < n; ++i) dst[i] = cast_value<D>(src[i]);
      });
    });
    if (!ok) return ctx.unsupported_dtype(from);
    if (!inner_ok) return ctx.error(std::string("cannot cast to ") + dtype_name(to));
  }
  if (to == DType::kBFloat16 && ctx.opset() < 19) {
    // Before opset 19 the reference (and the ONNX backend tests) convert float32 to bfloat16 by truncating the
    // low 16 bits; Cast-19 defines round-to-nearest-even, which from_float implements.
    KILN_ASSIGN_OR_RETURN(Tensor bf, Tensor::allocate(DType::kBFloat16, dims));
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits = 0;
      std::memcpy(&bits, out.data<float>() + i, sizeof(bits));
      bf.data<uint16_t>()[i] = static_cast<uint16_t>(bits >> 16);
    }
    return bf;
  }
  return from_float(out, to);
}

}  // namespace

Status cast_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  const int64_t to = ctx.attr_int("to", 0);
  if (!ctx.attr("to") || !dtype_is_valid(static_cast<int32_t>(to))) {
    return ctx.error("attribute 'to' is missing or not a valid dtype (" + std::to_string(to) + ")");
  }
  KILN_ASSIGN_OR_RETURN(Tensor y, cast_tensor(ctx, *x, static_cast<DType>(to)));
  ctx.set_output(0, std::move(y));
  return Status::ok();
}

Status castlike_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* like, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(Tensor y, cast_tensor(ctx, *x, like->dtype()));
  ctx.set_output(0, std::move(y));
  return Status::ok();
}

// ===================================================================================================
// Shape manipulation and copies

Status concat_kernel(KernelContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.error("needs at least one input");
  KILN_ASSIGN_OR_RETURN(const Tensor* first, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *first));
  const auto rank = static_cast<int64_t>(first->rank());
  if (rank == 0) return ctx.error("input 0 is a scalar; Concat needs rank >= 1");
  if (!ctx.attr("axis") && ctx.opset() >= 4) return ctx.error("attribute 'axis' is required");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 1), rank));
  std::vector<int64_t> out_dims = first->dims();
  out_dims[static_cast<size_t>(axis)] = 0;
  std::vector<const Tensor*> ins;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(i));
    if (t->dtype() != first->dtype()) {
      return ctx.error("input " + std::to_string(i) + " has dtype " + dtype_name(t->dtype()) + ", input 0 has " +
                       dtype_name(first->dtype()));
    }
    if (t->rank() != first->rank()) {
      return ctx.error("input " + std::to_string(i) + " has shape " + dims_to_string(t->dims()) +
                       ", not the rank of input 0 " + dims_to_string(first->dims()));
    }
    for (int64_t d = 0; d < rank; ++d) {
      if (d != axis && t->dims()[static_cast<size_t>(d)] != first->dims()[static_cast<size_t>(d)]) {
        return ctx.error("input " + std::to_string(i) + " has shape " + dims_to_string(t->dims()) +
                         ", which differs from input 0 " + dims_to_string(first->dims()) + " at dimension " +
                         std::to_string(d));
      }
    }
    out_dims[static_cast<size_t>(axis)] += t->dims()[static_cast<size_t>(axis)];
    ins.push_back(t);
  }
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(first->dtype(), out_dims));
  const int64_t outer = prod(out_dims, 0, static_cast<size_t>(axis));
  const int64_t inner = prod(out_dims, static_cast<size_t>(axis) + 1);
  const int64_t out_row = out_dims[static_cast<size_t>(axis)] * inner;
  int64_t col = 0;
  for (const Tensor* t : ins) {
    const int64_t block = t->dims()[static_cast<size_t>(axis)] * inner;
    for (int64_t o = 0; o < outer; ++o) copy_elems(out, o * out_row + col, *t, o * block, block);
    col += block;
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status split_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  const auto rank = static_cast<int64_t>(x->rank());
  if (rank == 0) return ctx.error("input 0 is a scalar; Split needs rank >= 1");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), rank));
  const int64_t len = x->dims()[static_cast<size_t>(axis)];
  std::vector<int64_t> split;
  if (ctx.opset() >= 13 && ctx.input(1)) {
    KILN_ASSIGN_OR_RETURN(split, int_input(ctx, 1, "split"));
  } else if (ctx.opset() < 13 && ctx.attr("split")) {
    split = ctx.attr_ints("split");
  } else if (ctx.opset() < 2 && ctx.input(1)) {
    KILN_ASSIGN_OR_RETURN(split, int_input(ctx, 1, "split"));
  }
  const auto nout = static_cast<int64_t>(ctx.num_outputs());
  if (split.empty()) {
    if (ctx.opset() >= 18 && ctx.attr("num_outputs")) {
      const int64_t k = ctx.attr_int("num_outputs", nout);
      if (k <= 0) return ctx.error("num_outputs must be positive, got " + std::to_string(k));
      const int64_t chunk = (len + k - 1) / k;
      for (int64_t i = 0; i < k; ++i) split.push_back(std::max<int64_t>(0, std::min(chunk, len - i * chunk)));
    } else {
      if (nout == 0 || len % nout != 0) {
        return ctx.error("cannot split dimension " + std::to_string(axis) + " of size " + std::to_string(len) +
                         " into " + std::to_string(nout) + " equal parts");
      }
      split.assign(static_cast<size_t>(nout), len / nout);
    }
  }
  int64_t total = 0;
  for (int64_t s : split) {
    if (s < 0) return ctx.error("split has a negative size " + std::to_string(s));
    total += s;
  }
  if (total != len || static_cast<int64_t>(split.size()) != nout) {
    return ctx.error("split " + dims_to_string(split) + " does not match dimension " + std::to_string(axis) +
                     " of size " + std::to_string(len) + " with " + std::to_string(nout) + " outputs");
  }
  const int64_t outer = prod(x->dims(), 0, static_cast<size_t>(axis));
  const int64_t inner = prod(x->dims(), static_cast<size_t>(axis) + 1);
  int64_t col = 0;
  for (size_t k = 0; k < split.size(); ++k) {
    std::vector<int64_t> dims = x->dims();
    dims[static_cast<size_t>(axis)] = split[k];
    KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x->dtype(), dims));
    const int64_t block = split[k] * inner;
    for (int64_t o = 0; o < outer; ++o) copy_elems(out, o * block, *x, o * len * inner + col, block);
    col += block;
    ctx.set_output(k, std::move(out));
  }
  return Status::ok();
}

Status slice_setup(const KernelContext& ctx, std::vector<int64_t>& first, std::vector<int64_t>& step,
                   std::vector<int64_t>& dims) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  const auto rank = static_cast<int64_t>(x->rank());
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = ctx.attr_ints("starts");
    ends = ctx.attr_ints("ends");
    axes = ctx.attr_ints("axes");
  } else {
    KILN_ASSIGN_OR_RETURN(starts, int_input(ctx, 1, "starts"));
    KILN_ASSIGN_OR_RETURN(ends, int_input(ctx, 2, "ends"));
    if (ctx.input(3)) {
      KILN_ASSIGN_OR_RETURN(axes, int_input(ctx, 3, "axes"));
    }
    if (ctx.input(4)) {
      KILN_ASSIGN_OR_RETURN(steps, int_input(ctx, 4, "steps"));
    }
  }
  if (starts.size() != ends.size()) {
    return ctx.error("starts " + dims_to_string(starts) + " and ends " + dims_to_string(ends) + " differ in length");
  }
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) {
    return ctx.error("starts, ends, axes and steps must have the same length");
  }
  first.assign(static_cast<size_t>(rank), 0);
  step.assign(static_cast<size_t>(rank), 1);
  dims = x->dims();
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t i = 0; i < starts.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t a, normalize_axis(ctx, axes[i], rank));
    const auto ua = static_cast<size_t>(a);
    if (seen[ua]) return ctx.error("axes lists axis " + std::to_string(axes[i]) + " twice");
    seen[ua] = true;
    const int64_t dim = x->dims()[ua];
    const int64_t st = steps[i];
    if (st == 0) return ctx.error("steps[" + std::to_string(i) + "] is 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t count;
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      count = e > s ? (e - s + st - 1) / st : 0;
    } else {
      s = std::clamp<int64_t>(s, -1, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      count = s > e ? (s - e + (-st) - 1) / (-st) : 0;
    }
    first[ua] = s;
    step[ua] = st;
    dims[ua] = count;
  }
  return Status::ok();
}

Status slice_kernel(KernelContext& ctx) {
  std::vector<int64_t> first, step, dims;
  KILN_RETURN_IF_ERROR(slice_setup(ctx, first, step, dims));
  const Tensor* x = ctx.input(0);
  const auto in_str = strides_of(x->dims());
  std::vector<int64_t> src;
  src.reserve(static_cast<size_t>(prod(dims)));
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += (first[d] + idx[d] * step[d]) * in_str[d];
    src.push_back(off);
  });
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, dims, src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status gather_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, int_input(ctx, 1, "indices"));
  const Tensor* it = ctx.input(1);
  const auto rank = static_cast<int64_t>(x->rank());
  if (rank == 0) return ctx.error("input 0 (data) is a scalar; Gather needs rank >= 1");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), rank));
  const auto ua = static_cast<size_t>(axis);
  const int64_t len = x->dims()[ua];
  for (auto& i : idx) {
    if (i < -len || i >= len) {
      return ctx.error("index " + std::to_string(i) + " is out of range for dimension " + std::to_string(axis) +
                       " of size " + std::to_string(len));
    }
    if (i < 0) i += len;
  }
  std::vector<int64_t> dims(x->dims().begin(), x->dims().begin() + axis);
  dims.insert(dims.end(), it->dims().begin(), it->dims().end());
  dims.insert(dims.end(), x->dims().begin() + axis + 1, x->dims().end());
  const int64_t outer = prod(x->dims(), 0, ua), inner = prod(x->dims(), ua + 1);
  const auto n = static_cast<int64_t>(idx.size());
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x->dtype(), dims));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      copy_elems(out, (o * n + k) * inner, *x, (o * len + idx[static_cast<size_t>(k)]) * inner, inner);
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status gather_elements_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, int_input(ctx, 1, "indices"));
  const Tensor* it = ctx.input(1);
  const auto rank = static_cast<int64_t>(x->rank());
  if (rank == 0 || static_cast<int64_t>(it->rank()) != rank) {
    return ctx.error("input 1 (indices) " + dims_to_string(it->dims()) + " must have the rank of input 0 (data) " +
                     dims_to_string(x->dims()) + ", at least 1");
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), rank));
  const auto ua = static_cast<size_t>(axis);
  const auto xs = strides_of(x->dims());
  const int64_t len = x->dims()[ua];
  std::vector<int64_t> src;
  size_t k = 0;
  Status st = Status::ok();
  for_each_index(it->dims(), [&](const std::vector<int64_t>& ix) {
    int64_t i = idx[k++];
    if (i < -len || i >= len) {
      if (st.is_ok())
        st = ctx.error("index " + std::to_string(i) + " is out of range for axis " + std::to_string(axis) +
                       " of size " + std::to_string(len));
      src.push_back(-1);
      return;
    }
    if (i < 0) i += len;
    int64_t off = 0;
    for (size_t d = 0; d < ix.size(); ++d) off += (d == ua ? i : ix[d]) * xs[d];
    src.push_back(off);
  });
  KILN_RETURN_IF_ERROR(st);
  for (size_t d = 0; d < it->rank(); ++d) {
    if (d != ua && it->dims()[d] > x->dims()[d]) {
      return ctx.error("input 1 (indices) " + dims_to_string(it->dims()) + " is larger than input 0 (data) " +
                       dims_to_string(x->dims()) + " at dimension " + std::to_string(d));
    }
  }
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, it->dims(), src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status gather_nd_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, int_input(ctx, 1, "indices"));
  const Tensor* it = ctx.input(1);
  const int64_t b = ctx.attr_int("batch_dims", 0);
  const auto r = static_cast<int64_t>(x->rank()), q = static_cast<int64_t>(it->rank());
  if (q < 1 || r < 1 || b < 0 || b >= std::min(q, r)) {
    return ctx.error("batch_dims " + std::to_string(b) + " is invalid for data " + dims_to_string(x->dims()) +
                     " and indices " + dims_to_string(it->dims()));
  }
  const int64_t m = it->dims().back();
  if (m < 1 || m > r - b) {
    return ctx.error("indices' last dimension " + std::to_string(m) + " must be in [1, " + std::to_string(r - b) + "]");
  }
  for (int64_t d = 0; d < b; ++d) {
    if (x->dims()[static_cast<size_t>(d)] != it->dims()[static_cast<size_t>(d)]) {
      return ctx.error("batch dimension " + std::to_string(d) + " differs between data " + dims_to_string(x->dims()) +
                       " and indices " + dims_to_string(it->dims()));
    }
  }
  std::vector<int64_t> dims(it->dims().begin(), it->dims().end() - 1);
  dims.insert(dims.end(), x->dims().begin() + b + m, x->dims().end());
  const int64_t slice = prod(x->dims(), static_cast<size_t>(b + m));
  const int64_t batch = prod(x->dims(), 0, static_cast<size_t>(b));
  const int64_t per_batch_in = prod(x->dims(), static_cast<size_t>(b));
  const int64_t tuples = prod(it->dims(), 0, static_cast<size_t>(q - 1));
  const int64_t per_batch_t = batch ? tuples / batch : 0;
  const auto xs = strides_of(x->dims());
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x->dtype(), dims));
  for (int64_t t = 0; t < tuples; ++t) {
    const int64_t bi = per_batch_t ? t / per_batch_t : 0;
    int64_t off = bi * per_batch_in;
    for (int64_t j = 0; j < m; ++j) {
      int64_t i = idx[static_cast<size_t>(t * m + j)];
      const int64_t dim = x->dims()[static_cast<size_t>(b + j)];
      if (i < -dim || i >= dim) {
        return ctx.error("index " + std::to_string(i) + " is out of range for data dimension " + std::to_string(b + j) +
                         " of size " + std::to_string(dim));
      }
      if (i < 0) i += dim;
      off += i * xs[static_cast<size_t>(b + j)];
    }
    copy_elems(out, t * slice, *x, off, slice);
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

namespace {
StatusOr<std::vector<int64_t>> axes_arg(KernelContext& ctx, int64_t input_opset) {
  if (ctx.opset() >= input_opset) {
    if (!ctx.input(1)) return std::vector<int64_t>{};
    return int_input(ctx, 1, "axes");
  }
  return ctx.attr_ints("axes");
}
}  // namespace

Status squeeze_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, axes_arg(ctx, 13));
  const auto rank = static_cast<int64_t>(x->rank());
  std::vector<bool> drop(static_cast<size_t>(rank), false);
  if (axes.empty()) {
    for (int64_t d = 0; d < rank; ++d) drop[static_cast<size_t>(d)] = x->dims()[static_cast<size_t>(d)] == 1;
  }
  for (int64_t a : axes) {
    KILN_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(ctx, a, rank));
    if (x->dims()[static_cast<size_t>(ax)] != 1) {
      return ctx.error("cannot squeeze axis " + std::to_string(a) + " of shape " + dims_to_string(x->dims()) +
                       ": its size is not 1");
    }
    drop[static_cast<size_t>(ax)] = true;
  }
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < rank; ++d) {
    if (!drop[static_cast<size_t>(d)]) dims.push_back(x->dims()[static_cast<size_t>(d)]);
  }
  ctx.set_output(0, x->reshaped(dims));
  return Status::ok();
}

Status unsqueeze_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> axes, axes_arg(ctx, 13));
  const auto out_rank = static_cast<int64_t>(x->rank() + axes.size());
  std::vector<bool> added(static_cast<size_t>(out_rank), false);
  for (int64_t a : axes) {
    KILN_ASSIGN_OR_RETURN(int64_t ax, normalize_axis(ctx, a, out_rank));
    if (added[static_cast<size_t>(ax)]) return ctx.error("axes lists axis " + std::to_string(a) + " twice");
    added[static_cast<size_t>(ax)] = true;
  }
  std::vector<int64_t> dims;
  size_t k = 0;
  for (int64_t d = 0; d < out_rank; ++d) dims.push_back(added[static_cast<size_t>(d)] ? 1 : x->dims()[k++]);
  ctx.set_output(0, x->reshaped(dims));
  return Status::ok();
}

Status flatten_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  const auto rank = static_cast<int64_t>(x->rank());
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < -rank || axis > rank) {
    return ctx.error("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  if (axis < 0) axis += rank;
  const int64_t a = prod(x->dims(), 0, static_cast<size_t>(axis));
  const int64_t b = prod(x->dims(), static_cast<size_t>(axis));
  ctx.set_output(0, x->reshaped({a, b}));
  return Status::ok();
}

Status expand_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> shape, int_input(ctx, 1, "shape"));
  auto dims = broadcast_shapes(x->dims(), shape);
  if (!dims.is_ok()) return ctx.error(dims.status().message());
  const auto bs = broadcast_strides(x->dims(), *dims);
  std::vector<int64_t> src;
  for_each_index(*dims, [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * bs[d];
    src.push_back(off);
  });
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, *dims, src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status tile_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> reps, int_input(ctx, 1, "repeats"));
  if (reps.size() != x->rank()) {
    return ctx.error("input 1 (repeats) has " + std::to_string(reps.size()) + " values, input 0 has rank " +
                     std::to_string(x->rank()));
  }
  std::vector<int64_t> dims = x->dims();
  for (size_t d = 0; d < dims.size(); ++d) {
    if (reps[d] < 0) return ctx.error("repeats[" + std::to_string(d) + "] is negative");
    dims[d] *= reps[d];
  }
  const auto xs = strides_of(x->dims());
  std::vector<int64_t> src;
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += (idx[d] % x->dims()[d]) * xs[d];
    src.push_back(off);
  });
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, dims, src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status transpose_setup(const KernelContext& ctx, std::vector<int64_t>& perm, std::vector<int64_t>& dims,
                       std::vector<int64_t>& ps) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  const size_t rank = x->rank();
  perm = ctx.attr_ints("perm");
  if (perm.empty()) {
    for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  if (perm.size() != rank) {
    return ctx.error("perm " + dims_to_string(perm) + " does not match input rank " + std::to_string(rank));
  }
  std::vector<bool> seen(rank, false);
  for (auto& p : perm) {
    KILN_ASSIGN_OR_RETURN(p, normalize_axis(ctx, p, static_cast<int64_t>(rank)));
    if (seen[static_cast<size_t>(p)]) return ctx.error("perm " + dims_to_string(perm) + " is not a permutation");
    seen[static_cast<size_t>(p)] = true;
  }
  dims.assign(rank, 0);
  const auto xs = strides_of(x->dims());
  ps.assign(rank, 0);
  for (size_t i = 0; i < rank; ++i) {
    dims[i] = x->dims()[static_cast<size_t>(perm[i])];
    ps[i] = xs[static_cast<size_t>(perm[i])];
  }
  return Status::ok();
}

Status transpose_kernel(KernelContext& ctx) {
  std::vector<int64_t> perm, dims, ps;
  KILN_RETURN_IF_ERROR(transpose_setup(ctx, perm, dims, ps));
  const Tensor* x = ctx.input(0);
  std::vector<int64_t> src;
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * ps[d];
    src.push_back(off);
  });
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, dims, src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status constant_of_shape_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, int_input(ctx, 0, "shape"));
  for (int64_t d : dims) {
    if (d < 0) return ctx.error("input 0 (shape) " + dims_to_string(dims) + " has a negative dimension");
  }
  Tensor value = Tensor::from_vector<float>({1}, {0.0f});
  if (const auto* a = ctx.attr("value"); a && a->type == ir::AttrType::kTensor) {
    value = a->t.tensor;
    if (value.num_elements() != 1) return ctx.error("attribute 'value' must hold exactly one element");
  }
  KILN_RETURN_IF_ERROR(check_copyable(ctx, value, "attribute 'value'"));
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(value.dtype(), dims));
  for (int64_t i = 0; i < out.num_elements(); ++i) copy_elems(out, i, value, 0, 1);
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status size_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  ctx.set_output(0, Tensor::from_vector<int64_t>({}, {x->num_elements()}));
  return Status::ok();
}

}  // namespace kiln::cpu

// ===================================================================================================
// Scatter family
namespace kiln::cpu {
namespace {

// Writes (or combines) the update element us[si] into out[di]; out and upd share dtype (half already float).
Status scatter_apply(const KernelContext& ctx, Tensor& out, int64_t di, const Tensor& upd, int64_t si,
                     const std::string& reduction) {
  if (reduction == "none" || reduction.empty()) {
    copy_elems(out, di, upd, si, 1);
    return Status::ok();
  }
  Status st = Status::ok();
  bool ok = dispatch_numeric(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T& d = out.data<T>()[di];
    const T u = upd.data<T>()[si];
    if (reduction == "add") {
      if constexpr (std::is_same_v<T, bool>) {
        d = d || u;
      } else {
        d = static_cast<T>(d + u);
      }
    } else if (reduction == "mul") {
      if constexpr (std::is_same_v<T, bool>) {
        d = d && u;
      } else {
        d = static_cast<T>(d * u);
      }
    } else if (reduction == "max") {
      d = std::max(d, u);
    } else if (reduction == "min") {
      d = std::min(d, u);
    } else {
      st = ctx.error("unknown reduction '" + reduction + "' (expected none, add, mul, max or min)");
    }
  });
  if (!ok) return ctx.unsupported_dtype(out.dtype());
  return st;
}

Status scatter_elements_impl(KernelContext& ctx, const std::string& reduction) {
  KILN_ASSIGN_OR_RETURN(const Tensor* data_in, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *data_in));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, int_input(ctx, 1, "indices"));
  const Tensor* it = ctx.input(1);
  KILN_ASSIGN_OR_RETURN(const Tensor* upd_in, ctx.required_input(2));
  if (upd_in->dtype() != data_in->dtype() || upd_in->dims() != it->dims()) {
    return ctx.error("input 2 (updates) " + dims_to_string(upd_in->dims()) + " must match indices " +
                     dims_to_string(it->dims()) + " in shape and data in dtype");
  }
  const auto rank = static_cast<int64_t>(data_in->rank());
  if (static_cast<int64_t>(it->rank()) != rank || rank == 0) {
    return ctx.error("input 1 (indices) " + dims_to_string(it->dims()) + " must have the rank of data " +
                     dims_to_string(data_in->dims()));
  }
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), rank));
  const DType dtype = data_in->dtype();
  KILN_ASSIGN_OR_RETURN(Tensor data, as_float(*data_in));
  KILN_ASSIGN_OR_RETURN(Tensor upd, as_float(*upd_in));
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(data.dtype(), data.dims()));
  copy_elems(out, 0, data, 0, data.num_elements());
  const auto xs = strides_of(data.dims());
  const auto ua = static_cast<size_t>(axis);
  const int64_t len = data.dims()[ua];
  int64_t k = 0;
  Status st = Status::ok();
  for_each_index(it->dims(), [&](const std::vector<int64_t>& ix) {
    if (!st.is_ok()) return;
    int64_t i = idx[static_cast<size_t>(k)];
    if (i < -len || i >= len) {
      st = ctx.error("index " + std::to_string(i) + " is out of range for axis " + std::to_string(axis) + " of size " +
                     std::to_string(len));
      return;
    }
    if (i < 0) i += len;
    int64_t off = 0;
    for (size_t d = 0; d < ix.size(); ++d) {
      if (d != ua && ix[d] >= data.dims()[d]) {
        st = ctx.error("indices shape " + dims_to_string(it->dims()) + " exceeds data shape " +
                       dims_to_string(data.dims()));
        return;
      }
      off += (d == ua ? i : ix[d]) * xs[d];
    }
    st = scatter_apply(ctx, out, off, upd, k, reduction);
    ++k;
  });
  KILN_RETURN_IF_ERROR(st);
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(out, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

}  // namespace

Status scatter_kernel(KernelContext& ctx) { return scatter_elements_impl(ctx, "none"); }
Status scatter_elements_kernel(KernelContext& ctx) {
  return scatter_elements_impl(ctx, ctx.attr_string("reduction", "none"));
}

Status scatter_nd_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* data_in, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *data_in));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, int_input(ctx, 1, "indices"));
  const Tensor* it = ctx.input(1);
  KILN_ASSIGN_OR_RETURN(const Tensor* upd_in, ctx.required_input(2));
  const auto r = static_cast<int64_t>(data_in->rank()), q = static_cast<int64_t>(it->rank());
  if (q < 1) return ctx.error("input 1 (indices) must have rank >= 1");
  const int64_t m = it->dims().back();
  if (m > r)
    return ctx.error("indices' last dimension " + std::to_string(m) + " exceeds data rank " + std::to_string(r));
  std::vector<int64_t> want(it->dims().begin(), it->dims().end() - 1);
  want.insert(want.end(), data_in->dims().begin() + m, data_in->dims().end());
  if (upd_in->dims() != want || upd_in->dtype() != data_in->dtype()) {
    return ctx.error("input 2 (updates) has shape " + dims_to_string(upd_in->dims()) + ", expected " +
                     dims_to_string(want) + " with the data's dtype");
  }
  const std::string reduction = ctx.attr_string("reduction", "none");
  const DType dtype = data_in->dtype();
  KILN_ASSIGN_OR_RETURN(Tensor data, as_float(*data_in));
  KILN_ASSIGN_OR_RETURN(Tensor upd, as_float(*upd_in));
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(data.dtype(), data.dims()));
  copy_elems(out, 0, data, 0, data.num_elements());
  const auto xs = strides_of(data.dims());
  const int64_t slice = prod(data.dims(), static_cast<size_t>(m));
  const int64_t tuples = prod(it->dims(), 0, static_cast<size_t>(q - 1));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0;
    for (int64_t j = 0; j < m; ++j) {
      int64_t i = idx[static_cast<size_t>(t * m + j)];
      const int64_t dim = data.dims()[static_cast<size_t>(j)];
      if (i < -dim || i >= dim) {
        return ctx.error("index " + std::to_string(i) + " is out of range for data dimension " + std::to_string(j) +
                         " of size " + std::to_string(dim));
      }
      if (i < 0) i += dim;
      off += i * xs[static_cast<size_t>(j)];
    }
    for (int64_t e = 0; e < slice; ++e)
      KILN_RETURN_IF_ERROR(scatter_apply(ctx, out, off + e, upd, t * slice + e, reduction));
  }
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(out, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

// ===================================================================================================
// Generators and selections

Status range_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* l, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(const Tensor* d, ctx.required_input(2));
  if (s->num_elements() != 1 || l->num_elements() != 1 || d->num_elements() != 1) {
    return ctx.error("start, limit and delta must be scalars");
  }
  if (s->dtype() != l->dtype() || s->dtype() != d->dtype()) return ctx.error("start, limit and delta differ in dtype");
  Status st = Status::ok();
  bool ok = dispatch_numeric(s->dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      st = ctx.unsupported_dtype(DType::kBool);
    } else {
      const T start = s->data<T>()[0], limit = l->data<T>()[0], delta = d->data<T>()[0];
      if (delta == T{}) {
        st = ctx.error("delta is 0");
        return;
      }
      const double nd =
          std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
      if (std::isnan(nd) || nd > 1e15) {
        st = ctx.error("start, limit and delta give an invalid or too large number of elements");
        return;
      }
      const int64_t n = nd > 0 ? static_cast<int64_t>(nd) : 0;
      auto out = ctx.allocate_output(0, s->dtype(), {n});
      if (!out.is_ok()) {
        st = out.status();
        return;
      }
      T* p = (*out)->template data<T>();
      T v = start;
      for (int64_t i = 0; i < n; ++i) {
        p[i] = v;
        v = static_cast<T>(v + delta);
      }
    }
  });
  if (!ok) return ctx.unsupported_dtype(s->dtype());
  return st;
}

Status nonzero_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*in));
  std::vector<bool> nz(static_cast<size_t>(x.num_elements()));
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < nz.size(); ++i) nz[i] = x.data<T>()[i] != T{};
  });
  if (!ok) return ctx.unsupported_dtype(in->dtype());
  const size_t rank = x.rank();
  std::vector<std::vector<int64_t>> coords;
  size_t i = 0;
  if (rank == 0) {
    if (!nz.empty() && nz[0]) coords.push_back({});
  } else {
    for_each_index(x.dims(), [&](const std::vector<int64_t>& idx) {
      if (nz[i++]) coords.push_back(idx);
    });
  }
  const auto count = static_cast<int64_t>(coords.size());
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, DType::kInt64, {static_cast<int64_t>(rank), count}));
  for (size_t d = 0; d < rank; ++d) {
    for (int64_t c = 0; c < count; ++c)
      out->data<int64_t>()[static_cast<int64_t>(d) * count + c] = coords[static_cast<size_t>(c)][d];
  }
  return Status::ok();
}

Status topk_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  int64_t k;
  if (ctx.opset() < 10) {
    k = ctx.attr_int("k", -1);
  } else {
    KILN_ASSIGN_OR_RETURN(std::vector<int64_t> kv, int_input(ctx, 1, "K"));
    if (kv.size() != 1) return ctx.error("input 1 (K) must hold one value");
    k = kv[0];
  }
  const auto rank = static_cast<int64_t>(in->rank());
  if (rank == 0) return ctx.error("input 0 is a scalar; TopK needs rank >= 1");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", -1), rank));
  const auto ua = static_cast<size_t>(axis);
  const int64_t len = in->dims()[ua];
  if (k < 0 || k > len) {
    return ctx.error("K = " + std::to_string(k) + " is out of range for axis " + std::to_string(axis) + " of size " +
                     std::to_string(len));
  }
  const bool largest = ctx.attr_int("largest", 1) != 0;
  const bool sorted = ctx.attr_int("sorted", 1) != 0;
  const DType dtype = in->dtype();
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*in));
  std::vector<int64_t> dims = x.dims();
  dims[ua] = k;
  KILN_ASSIGN_OR_RETURN(Tensor vals, Tensor::allocate(x.dtype(), dims));
  KILN_ASSIGN_OR_RETURN(Tensor * inds, ctx.allocate_output(1, DType::kInt64, dims));
  const int64_t outer = prod(x.dims(), 0, ua), inner = prod(x.dims(), ua + 1);
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    std::vector<int64_t> order(static_cast<size_t>(len));
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t j) { return src[(o * len + j) * inner + i]; };
        std::iota(order.begin(), order.end(), 0);
        auto better = [&](int64_t a, int64_t b) {
          const T va = at(a), vb = at(b);
          const bool na = va != va, nb = vb != vb;  // NaN counts as larger than any number
          if (na || nb) {
            if (na && nb) return a < b;
            return largest ? na : nb;
          }
          if (va == vb) return a < b;
          return largest ? va > vb : va < vb;
        };
        std::stable_sort(order.begin(), order.end(), better);
        std::vector<int64_t> chosen(order.begin(), order.begin() + k);
        if (!sorted) std::sort(chosen.begin(), chosen.end());
        for (int64_t j = 0; j < k; ++j) {
          const int64_t dst = (o * k + j) * inner + i;
          vals.data<T>()[dst] = at(chosen[static_cast<size_t>(j)]);
          inds->data<int64_t>()[dst] = chosen[static_cast<size_t>(j)];
        }
      }
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype);
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(vals, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

Status pad_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  const auto rank = static_cast<int64_t>(x->rank());
  std::vector<int64_t> pads;
  std::string mode = ctx.attr_string("mode", "constant");
  Tensor value;  // one element of x's dtype, or undefined for zero
  if (ctx.opset() < 11) {
    pads = ctx.attr_ints(ctx.opset() < 2 ? "paddings" : "pads");
    const float v = ctx.attr_float("value", 0.0f);
    auto c = cast_tensor(ctx, Tensor::from_vector<float>({}, {v}), x->dtype());
    if (c.is_ok() && x->dtype() != DType::kString) value = *c;
  } else {
    KILN_ASSIGN_OR_RETURN(pads, int_input(ctx, 1, "pads"));
    if (const Tensor* cv = ctx.input(2); cv && cv->num_elements() > 0) {
      if (cv->dtype() != x->dtype()) {
        return ctx.error(std::string("input 2 (constant_value) has dtype ") + dtype_name(cv->dtype()) + ", expected " +
                         dtype_name(x->dtype()));
      }
      value = *cv;
    }
  }
  std::vector<int64_t> axes;
  if (ctx.opset() >= 18 && ctx.input(3)) {
    KILN_ASSIGN_OR_RETURN(axes, int_input(ctx, 3, "axes"));
  } else {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size()) {
    return ctx.error("pads " + dims_to_string(pads) + " must have 2 * " + std::to_string(axes.size()) + " values");
  }
  std::vector<int64_t> before(static_cast<size_t>(rank), 0), after(static_cast<size_t>(rank), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    KILN_ASSIGN_OR_RETURN(int64_t a, normalize_axis(ctx, axes[i], rank));
    before[static_cast<size_t>(a)] = pads[i];
    after[static_cast<size_t>(a)] = pads[i + axes.size()];
  }
  std::vector<int64_t> dims = x->dims();
  for (size_t d = 0; d < dims.size(); ++d) {
    dims[d] += before[d] + after[d];
    if (dims[d] < 0) return ctx.error("pads make dimension " + std::to_string(d) + " negative");
    if (mode != "constant" && x->dims()[d] == 0 && dims[d] > 0) {
      return ctx.error("cannot " + mode + "-pad dimension " + std::to_string(d) + " of size 0");
    }
  }
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap") {
    return ctx.error("unknown mode '" + mode + "' (expected constant, reflect, edge or wrap)");
  }
  const auto xs = strides_of(x->dims());
  std::vector<int64_t> src;
  bool any_fill = false;
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d) {
      int64_t i = idx[d] - before[d];
      const int64_t n = x->dims()[d];
      if (i < 0 || i >= n) {
        if (mode == "constant") {
          off = -1;
          break;
        } else if (mode == "edge") {
          i = i < 0 ? 0 : n - 1;
        } else if (mode == "wrap") {
          i = ((i % n) + n) % n;
        } else {  // reflect
          if (n == 1) {
            i = 0;
          } else {
            const int64_t period = 2 * (n - 1);
            i = ((i % period) + period) % period;
            if (i >= n) i = period - i;
          }
        }
      }
      off += i * xs[d];
    }
    if (off < 0) any_fill = true;
    src.push_back(off);
  });
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, dims, src));
  if (any_fill && value.defined()) {
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] < 0) copy_elems(out, static_cast<int64_t>(i), value, 0, 1);
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

namespace {
Status depth_space(KernelContext& ctx, bool to_space) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  if (x->rank() != 4) return ctx.error("input 0 must be 4-D (N, C, H, W), got " + dims_to_string(x->dims()));
  const int64_t b = ctx.attr_int("blocksize", 0);
  if (b <= 0) return ctx.error("attribute 'blocksize' must be positive");
  const int64_t n = x->dims()[0], c = x->dims()[1], h = x->dims()[2], w = x->dims()[3];
  const auto xs = strides_of(x->dims());
  std::vector<int64_t> dims, src;
  if (to_space) {
    if (c % (b * b) != 0) return ctx.error("channels " + std::to_string(c) + " are not divisible by blocksize^2");
    const bool crd = ctx.attr_string("mode", "DCR") == "CRD";
    const int64_t oc = c / (b * b);
    dims = {n, oc, h * b, w * b};
    for_each_index(dims, [&](const std::vector<int64_t>& ix) {
      const int64_t i = ix[2] % b, j = ix[3] % b;
      const int64_t ic = crd ? ix[1] * b * b + i * b + j : (i * b + j) * oc + ix[1];
      src.push_back(ix[0] * xs[0] + ic * xs[1] + (ix[2] / b) * xs[2] + (ix[3] / b) * xs[3]);
    });
  } else {
    if (h % b != 0 || w % b != 0) {
      return ctx.error("height and width of " + dims_to_string(x->dims()) + " must be divisible by blocksize " +
                       std::to_string(b));
    }
    dims = {n, c * b * b, h / b, w / b};
    for_each_index(dims, [&](const std::vector<int64_t>& ix) {
      const int64_t blk = ix[1] / c, ic = ix[1] % c;
      const int64_t i = blk / b, j = blk % b;
      src.push_back(ix[0] * xs[0] + ic * xs[1] + (ix[2] * b + i) * xs[2] + (ix[3] * b + j) * xs[3]);
    });
  }
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, dims, src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}
}  // namespace

Status depth_to_space_kernel(KernelContext& ctx) { return depth_space(ctx, true); }
Status space_to_depth_kernel(KernelContext& ctx) { return depth_space(ctx, false); }

Status onehot_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* ind, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* depth_t, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(const Tensor* values, ctx.required_input(2));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *values, "input 2 (values)"));
  if (depth_t->num_elements() != 1) return ctx.error("input 1 (depth) must hold one value");
  if (values->num_elements() != 2) return ctx.error("input 2 (values) must hold [off_value, on_value]");
  const std::vector<double> dd = to_doubles(*depth_t);
  if (!(dd[0] >= 1 && dd[0] < 1e12))
    return ctx.error("input 1 (depth) must be a positive count, got " + std::to_string(dd[0]));
  const auto depth = static_cast<int64_t>(dd[0]);
  if (depth <= 0) return ctx.error("depth must be positive, got " + std::to_string(depth));
  const std::vector<double> iv = to_doubles(*ind);
  const auto rank = static_cast<int64_t>(ind->rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", -1), rank + 1));
  std::vector<int64_t> dims = ind->dims();
  dims.insert(dims.begin() + axis, depth);
  const int64_t outer = prod(ind->dims(), 0, static_cast<size_t>(axis));
  const int64_t inner = prod(ind->dims(), static_cast<size_t>(axis));
  std::vector<int64_t> src(static_cast<size_t>(outer * depth * inner), 0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const double fv = iv[static_cast<size_t>(o * inner + i)];
      if (!(std::fabs(fv) < 1e15)) continue;  // NaN or far out of range: all off
      auto v = static_cast<int64_t>(fv);
      if (v < 0) v += depth;
      if (v >= 0 && v < depth) src[static_cast<size_t>((o * depth + v) * inner + i)] = 1;
    }
  }
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*values, dims, src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status trilu_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  if (x->rank() < 2) return ctx.error("input 0 must have rank >= 2, got " + dims_to_string(x->dims()));
  int64_t k = 0;
  if (ctx.input(1)) {
    KILN_ASSIGN_OR_RETURN(std::vector<int64_t> kv, int_input(ctx, 1, "k"));
    if (kv.size() != 1) return ctx.error("input 1 (k) must hold one value");
    k = kv[0];
  }
  const bool upper = ctx.attr_int("upper", 1) != 0;
  const size_t r = x->rank();
  std::vector<int64_t> src;
  int64_t lin = 0;
  for_each_index(x->dims(), [&](const std::vector<int64_t>& ix) {
    const int64_t diff = ix[r - 1] - ix[r - 2];
    const bool keep = upper ? diff >= k : diff <= k;
    src.push_back(keep ? lin : -1);
    ++lin;
  });
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, x->dims(), src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status compress_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(const Tensor* cond_t, ctx.required_input(1));
  if (cond_t->rank() != 1) return ctx.error("input 1 (condition) must be 1-D, got " + dims_to_string(cond_t->dims()));
  const std::vector<double> cond = to_doubles(*cond_t);
  Tensor src_t = *x;
  int64_t axis = 0;
  if (ctx.attr("axis")) {
    KILN_ASSIGN_OR_RETURN(axis, normalize_axis(ctx, ctx.attr_int("axis", 0), static_cast<int64_t>(x->rank())));
  } else {
    src_t = x->reshaped({x->num_elements()});
  }
  const auto ua = static_cast<size_t>(axis);
  const int64_t len = src_t.dims()[ua];
  if (static_cast<int64_t>(cond.size()) > len) {
    return ctx.error("input 1 (condition) has " + std::to_string(cond.size()) + " values, more than the " +
                     std::to_string(len) + " along axis " + std::to_string(axis));
  }
  std::vector<int64_t> keep;
  for (size_t i = 0; i < cond.size(); ++i) {
    if (cond[i] != 0) keep.push_back(static_cast<int64_t>(i));
  }
  std::vector<int64_t> dims = src_t.dims();
  dims[ua] = static_cast<int64_t>(keep.size());
  const int64_t outer = prod(src_t.dims(), 0, ua), inner = prod(src_t.dims(), ua + 1);
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x->dtype(), dims));
  int64_t di = 0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k : keep) {
      copy_elems(out, di, src_t, (o * len + k) * inner, inner);
      di += inner;
    }
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status reverse_sequence_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> lens, int_input(ctx, 1, "sequence_lens"));
  if (x->rank() < 2) return ctx.error("input 0 must have rank >= 2");
  const auto rank = static_cast<int64_t>(x->rank());
  KILN_ASSIGN_OR_RETURN(int64_t bax, normalize_axis(ctx, ctx.attr_int("batch_axis", 1), rank));
  KILN_ASSIGN_OR_RETURN(int64_t tax, normalize_axis(ctx, ctx.attr_int("time_axis", 0), rank));
  if (bax == tax) return ctx.error("batch_axis and time_axis must differ");
  const auto ub = static_cast<size_t>(bax), ut = static_cast<size_t>(tax);
  if (static_cast<int64_t>(lens.size()) != x->dims()[ub]) {
    return ctx.error("input 1 (sequence_lens) has " + std::to_string(lens.size()) + " values, batch size is " +
                     std::to_string(x->dims()[ub]));
  }
  const auto xs = strides_of(x->dims());
  std::vector<int64_t> src;
  int64_t lin = 0;
  for_each_index(x->dims(), [&](const std::vector<int64_t>& ix) {
    const int64_t l = std::clamp<int64_t>(lens[static_cast<size_t>(ix[ub])], 0, x->dims()[ut]);
    const int64_t t = ix[ut];
    src.push_back(t < l ? lin + (l - 1 - 2 * t) * xs[ut] : lin);
    ++lin;
  });
  KILN_ASSIGN_OR_RETURN(Tensor out, take(*x, x->dims(), src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status eyelike_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (x->rank() != 2) return ctx.error("input 0 must be 2-D, got " + dims_to_string(x->dims()));
  DType dtype = x->dtype();
  if (ctx.attr("dtype")) {
    const int64_t d = ctx.attr_int("dtype", 0);
    if (!dtype_is_valid(static_cast<int32_t>(d)))
      return ctx.error("attribute 'dtype' is invalid: " + std::to_string(d));
    dtype = static_cast<DType>(d);
  }
  const int64_t k = ctx.attr_int("k", 0);
  const int64_t rows = x->dims()[0], cols = x->dims()[1];
  KILN_ASSIGN_OR_RETURN(Tensor one, cast_tensor(ctx, Tensor::from_vector<float>({1}, {1.0f}), dtype));
  std::vector<int64_t> src(static_cast<size_t>(rows * cols), -1);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t j = i + k;
    if (j >= 0 && j < cols) src[static_cast<size_t>(i * cols + j)] = 0;
  }
  KILN_ASSIGN_OR_RETURN(Tensor out, take(one, x->dims(), src));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status shrink_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  const double bias = ctx.attr_float("bias", 0.0f), lambd = ctx.attr_float("lambd", 0.5f);
  const DType dtype = in->dtype();
  KILN_ASSIGN_OR_RETURN(Tensor x, as_float(*in));
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(x.dtype(), x.dims()));
  Status st = Status::ok();
  bool ok = dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      st = ctx.unsupported_dtype(dtype);
    } else {
      for (int64_t i = 0; i < x.num_elements(); ++i) {
        const auto v = static_cast<double>(x.data<T>()[i]);
        const double r = v < -lambd ? v + bias : (v > lambd ? v - bias : 0.0);
        out.data<T>()[i] = static_cast<T>(r);
      }
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype);
  KILN_RETURN_IF_ERROR(st);
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(out, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

}  // namespace kiln::cpu

// ===================================================================================================
// Bit operations, Unique, Einsum
namespace kiln::cpu {
namespace {

template <typename Op>
Status int_binary(KernelContext& ctx, Op op) {
  KILN_ASSIGN_OR_RETURN(const Tensor* a, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* b, ctx.required_input(1));
  if (a->dtype() != b->dtype()) {
    return ctx.error(std::string("inputs have different dtypes: ") + dtype_name(a->dtype()) + " and " +
                     dtype_name(b->dtype()));
  }
  auto dims = broadcast_shapes(a->dims(), b->dims());
  if (!dims.is_ok()) return ctx.error(dims.status().message());
  const auto sa = broadcast_strides(a->dims(), *dims), sb = broadcast_strides(b->dims(), *dims);
  Status st = Status::ok();
  bool ok = dispatch_numeric(a->dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_integral_v<T>) {
      st = ctx.unsupported_dtype(a->dtype());
    } else {
      auto out = ctx.allocate_output(0, a->dtype(), *dims);
      if (!out.is_ok()) {
        st = out.status();
        return;
      }
      T* dst = (*out)->template data<T>();
      int64_t i = 0;
      for_each_index(*dims, [&](const std::vector<int64_t>& ix) {
        int64_t oa = 0, ob = 0;
        for (size_t d = 0; d < ix.size(); ++d) {
          oa += ix[d] * sa[d];
          ob += ix[d] * sb[d];
        }
        dst[i++] = static_cast<T>(op(a->data<T>()[oa], b->data<T>()[ob]));
      });
    }
  });
  if (!ok) return ctx.unsupported_dtype(a->dtype());
  return st;
}

}  // namespace

Status bitshift_kernel(KernelContext& ctx) {
  const std::string dir = ctx.attr_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT")
    return ctx.error("attribute 'direction' must be LEFT or RIGHT, got '" + dir + "'");
  const bool left = dir == "LEFT";
  return int_binary(ctx, [&](auto x, auto y) -> decltype(x) {
    using T = decltype(x);
    if constexpr (std::is_same_v<T, bool>) {
      return x;
    } else {
      using U = std::make_unsigned_t<T>;
      const auto bits = static_cast<uint64_t>(sizeof(T) * 8);
      const auto sh = static_cast<uint64_t>(y);
      if (sh >= bits) return T{};
      return left ? static_cast<T>(static_cast<U>(x) << sh) : static_cast<T>(static_cast<U>(x) >> sh);
    }
  });
}

Status bitwise_and_kernel(KernelContext& ctx) {
  return int_binary(ctx, [](auto x, auto y) { return x & y; });
}
Status bitwise_or_kernel(KernelContext& ctx) {
  return int_binary(ctx, [](auto x, auto y) { return x | y; });
}
Status bitwise_xor_kernel(KernelContext& ctx) {
  return int_binary(ctx, [](auto x, auto y) { return x ^ y; });
}

Status bitwise_not_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  Status st = Status::ok();
  bool ok = dispatch_numeric(x->dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_integral_v<T> || std::is_same_v<T, bool>) {
      st = ctx.unsupported_dtype(x->dtype());
    } else {
      auto out = ctx.allocate_output(0, x->dtype(), x->dims());
      if (!out.is_ok()) {
        st = out.status();
        return;
      }
      for (int64_t i = 0; i < x->num_elements(); ++i) (*out)->template data<T>()[i] = static_cast<T>(~x->data<T>()[i]);
    }
  });
  if (!ok) return ctx.unsupported_dtype(x->dtype());
  return st;
}

Status unique_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* in, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *in));
  const bool sorted = ctx.attr_int("sorted", 1) != 0;
  Tensor x = *in;
  int64_t axis = 0;
  if (ctx.attr("axis")) {
    KILN_ASSIGN_OR_RETURN(axis, normalize_axis(ctx, ctx.attr_int("axis", 0), static_cast<int64_t>(in->rank())));
  } else {
    x = in->reshaped({in->num_elements()});
  }
  const auto ua = static_cast<size_t>(axis);
  const int64_t len = x.dims()[ua];
  const int64_t outer = prod(x.dims(), 0, ua), inner = prod(x.dims(), ua + 1);
  // Compares slices a and b along axis: -1, 0, 1.
  std::function<int(int64_t, int64_t)> cmp;
  if (x.dtype() == DType::kString) {
    cmp = [&](int64_t a, int64_t b) {
      const auto& s = x.strings();
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
          const auto& va = s[static_cast<size_t>((o * len + a) * inner + i)];
          const auto& vb = s[static_cast<size_t>((o * len + b) * inner + i)];
          if (va != vb) return va < vb ? -1 : 1;
        }
      }
      return 0;
    };
  } else {
    KILN_ASSIGN_OR_RETURN(Tensor f, as_float(x));
    bool ok = dispatch_numeric(f.dtype(), [&](auto tag) {
      using T = decltype(tag);
      cmp = [f, outer, inner, len](int64_t a, int64_t b) {
        const T* p = f.data<T>();
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t i = 0; i < inner; ++i) {
            const T va = p[(o * len + a) * inner + i], vb = p[(o * len + b) * inner + i];
            const bool na = va != va, nb = vb != vb;  // NaNs are equal to each other and sort last
            if (na || nb) {
              if (na && nb) continue;
              return na ? 1 : -1;
            }
            if (va != vb) return va < vb ? -1 : 1;
          }
        }
        return 0;
      };
    });
    if (!ok) return ctx.unsupported_dtype(in->dtype());
  }
  // Unique slices in first-occurrence order.
  std::vector<int64_t> firsts, inverse(static_cast<size_t>(len)), counts;
  for (int64_t j = 0; j < len; ++j) {
    int64_t found = -1;
    for (size_t u = 0; u < firsts.size(); ++u) {
      if (cmp(firsts[u], j) == 0) {
        found = static_cast<int64_t>(u);
        break;
      }
    }
    if (found < 0) {
      found = static_cast<int64_t>(firsts.size());
      firsts.push_back(j);
      counts.push_back(0);
    }
    inverse[static_cast<size_t>(j)] = found;
    ++counts[static_cast<size_t>(found)];
  }
  std::vector<int64_t> order(firsts.size());
  std::iota(order.begin(), order.end(), 0);
  if (sorted) {
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return cmp(firsts[static_cast<size_t>(a)], firsts[static_cast<size_t>(b)]) < 0;
    });
  }
  std::vector<int64_t> rank_of(order.size());
  for (size_t r = 0; r < order.size(); ++r) rank_of[static_cast<size_t>(order[r])] = static_cast<int64_t>(r);
  const auto nu = static_cast<int64_t>(order.size());
  std::vector<int64_t> dims = x.dims();
  dims[ua] = nu;
  KILN_ASSIGN_OR_RETURN(Tensor y, alloc_any(x.dtype(), dims));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t r = 0; r < nu; ++r) {
      copy_elems(y, (o * nu + r) * inner, x,
                 (o * len + firsts[static_cast<size_t>(order[static_cast<size_t>(r)])]) * inner, inner);
    }
  }
  std::vector<int64_t> idx_out, inv_out, cnt_out;
  for (int64_t r = 0; r < nu; ++r) {
    idx_out.push_back(firsts[static_cast<size_t>(order[static_cast<size_t>(r)])]);
    cnt_out.push_back(counts[static_cast<size_t>(order[static_cast<size_t>(r)])]);
  }
  for (int64_t j = 0; j < len; ++j) inv_out.push_back(rank_of[static_cast<size_t>(inverse[static_cast<size_t>(j)])]);
  ctx.set_output(0, std::move(y));
  ctx.set_output(1, Tensor::from_vector<int64_t>({nu}, idx_out));
  ctx.set_output(2, Tensor::from_vector<int64_t>({len}, inv_out));
  ctx.set_output(3, Tensor::from_vector<int64_t>({nu}, cnt_out));
  return Status::ok();
}

Status einsum_kernel(KernelContext& ctx) {
  std::string eq;
  for (char c : ctx.attr_string("equation", "")) {
    if (c != ' ') eq += c;
  }
  if (eq.empty()) return ctx.error("attribute 'equation' is required");
  const size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t p = 0;;) {
    const size_t c = lhs.find(',', p);
    terms.push_back(lhs.substr(p, c == std::string::npos ? std::string::npos : c - p));
    if (c == std::string::npos) break;
    p = c + 1;
  }
  if (terms.size() != ctx.num_inputs()) {
    return ctx.error("equation '" + eq + "' has " + std::to_string(terms.size()) + " operands but the node has " +
                     std::to_string(ctx.num_inputs()) + " inputs");
  }
  // Labels per operand; "..." becomes labels '0', '1', ... (right-aligned broadcast dims).
  std::vector<const Tensor*> ins;
  std::vector<std::vector<char>> labels;
  std::map<char, int64_t> size;
  int64_t ell_rank = 0;
  DType dtype = DType::kUndefined;
  for (size_t k = 0; k < terms.size(); ++k) {
    KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(k));
    if (k == 0) dtype = t->dtype();
    if (t->dtype() != dtype) return ctx.error("input " + std::to_string(k) + " differs in dtype from input 0");
    ins.push_back(t);
    const std::string& term = terms[k];
    const size_t e = term.find("...");
    const int64_t named = static_cast<int64_t>(term.size()) - (e == std::string::npos ? 0 : 3);
    const int64_t er = static_cast<int64_t>(t->rank()) - named;
    if (er < 0 || (e == std::string::npos && er != 0)) {
      return ctx.error("operand " + std::to_string(k) + " '" + term + "' does not match input shape " +
                       dims_to_string(t->dims()));
    }
    ell_rank = std::max(ell_rank, er);
    std::vector<char> ls;
    for (size_t i = 0; i < term.size(); ++i) {
      if (i == e) {
        for (int64_t j = 0; j < er; ++j) ls.push_back(static_cast<char>('0' + (ell_rank >= er ? 0 : 0) + j));
        i += 2;
      } else {
        ls.push_back(term[i]);
      }
    }
    labels.push_back(ls);
  }
  // Re-label ellipsis dims right-aligned to ell_rank.
  for (size_t k = 0; k < labels.size(); ++k) {
    const int64_t named = static_cast<int64_t>(terms[k].size()) - (terms[k].find("...") == std::string::npos ? 0 : 3);
    const int64_t er = static_cast<int64_t>(ins[k]->rank()) - named;
    for (auto& l : labels[k]) {
      if (l >= '0' && l <= '9') l = static_cast<char>('0' + (ell_rank - er) + (l - '0'));
    }
  }
  for (size_t k = 0; k < labels.size(); ++k) {
    for (size_t i = 0; i < labels[k].size(); ++i) {
      const char l = labels[k][i];
      const int64_t d = ins[k]->dims()[i];
      auto it = size.find(l);
      if (it == size.end() || it->second == 1) {
        size[l] = d;
      } else if (d != 1 && d != it->second) {
        return ctx.error(std::string("label '") + l + "' has sizes " + std::to_string(it->second) + " and " +
                         std::to_string(d));
      }
    }
  }
  std::vector<char> out_labels;
  if (arrow != std::string::npos) {
    const std::string rhs = eq.substr(arrow + 2);
    for (size_t i = 0; i < rhs.size(); ++i) {
      if (rhs.compare(i, 3, "...") == 0) {
        for (int64_t j = 0; j < ell_rank; ++j) out_labels.push_back(static_cast<char>('0' + j));
        i += 2;
      } else {
        if (!size.count(rhs[i])) return ctx.error(std::string("output label '") + rhs[i] + "' is not in any input");
        out_labels.push_back(rhs[i]);
      }
    }
  } else {
    for (int64_t j = 0; j < ell_rank; ++j) out_labels.push_back(static_cast<char>('0' + j));
    std::map<char, int> cnt;
    for (const auto& ls : labels) {
      for (char l : ls) ++cnt[l];
    }
    for (const auto& [l, c] : cnt) {
      if (c == 1 && !(l >= '0' && l <= '9')) out_labels.push_back(l);
    }
  }
  std::vector<char> all = out_labels;
  for (const auto& [l, s] : size) {
    if (std::find(all.begin(), all.end(), l) == all.end()) all.push_back(l);
  }
  std::vector<int64_t> all_dims, out_dims;
  for (char l : all) all_dims.push_back(size[l]);
  for (char l : out_labels) out_dims.push_back(size[l]);
  // Per-operand strides over `all`.
  std::vector<std::vector<int64_t>> strides(ins.size(), std::vector<int64_t>(all.size(), 0));
  for (size_t k = 0; k < ins.size(); ++k) {
    const auto s = strides_of(ins[k]->dims());
    for (size_t i = 0; i < labels[k].size(); ++i) {
      const size_t pos = static_cast<size_t>(std::find(all.begin(), all.end(), labels[k][i]) - all.begin());
      if (ins[k]->dims()[i] != 1) strides[k][pos] += s[i];
    }
  }
  std::vector<Tensor> fs;
  for (const Tensor* t : ins) {
    KILN_ASSIGN_OR_RETURN(Tensor f, as_float(*t));
    fs.push_back(f);
  }
  const auto os = strides_of(out_dims);
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(fs[0].dtype(), out_dims));
  Status st = Status::ok();
  bool ok = dispatch_numeric(fs[0].dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      st = ctx.unsupported_dtype(dtype);
    } else {
      using A = std::conditional_t<std::is_floating_point_v<T>, double, T>;
      std::vector<A> acc(static_cast<size_t>(prod(out_dims)), A{});
      for_each_index(all_dims, [&](const std::vector<int64_t>& ix) {
        A p = A(1);
        for (size_t k = 0; k < fs.size(); ++k) {
          int64_t off = 0;
          for (size_t d = 0; d < ix.size(); ++d) off += ix[d] * strides[k][d];
          p = static_cast<A>(p * static_cast<A>(fs[k].data<T>()[off]));
        }
        int64_t o = 0;
        for (size_t d = 0; d < out_dims.size(); ++d) o += ix[d] * os[d];
        acc[static_cast<size_t>(o)] = static_cast<A>(acc[static_cast<size_t>(o)] + p);
      });
      for (size_t i = 0; i < acc.size(); ++i) out.data<T>()[i] = static_cast<T>(acc[i]);
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype);
  KILN_RETURN_IF_ERROR(st);
  KILN_ASSIGN_OR_RETURN(Tensor back, from_float(out, dtype));
  ctx.set_output(0, std::move(back));
  return Status::ok();
}

}  // namespace kiln::cpu
