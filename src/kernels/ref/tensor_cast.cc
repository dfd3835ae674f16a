// Cast and CastLike (every dtype pair, strings included, with numpy's and onnx's conversions).
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
#include "kernels/ref/numeric.h"
#include "kernels/ref/tensor_ops.h"
#include "kernels/ref/tensor_util.h"

// Cast / CastLike
namespace kiln::cpu {

using namespace tensor;

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

}  // namespace

StatusOr<Tensor> tensor::cast_tensor(const KernelContext& ctx, const Tensor& in, DType to) {
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
        for (int64_t i = 0; i < n; ++i) dst[i] = saturating_cast<D>(src[i]);
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

}  // namespace kiln::cpu
