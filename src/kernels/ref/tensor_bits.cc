// Bit operations, Unique and Einsum.
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
#include "kernels/ref/tensor_util.h"

// Bit operations, Unique, Einsum
namespace kiln::cpu {

using namespace tensor;

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
  const int64_t outer = product(x.dims(), 0, ua), inner = product(x.dims(), ua + 1);
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
      copy_elements(y, (o * nu + r) * inner, x,
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
      std::vector<A> acc(static_cast<size_t>(product(out_dims)), A{});
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
