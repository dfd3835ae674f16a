// Indexed writes and generators: Scatter*, Range, NonZero, TopK, Pad, DepthToSpace/SpaceToDepth, OneHot,
// Trilu, Compress, ReverseSequence, EyeLike, Shrink.
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

// Scatter family
namespace kiln::cpu {

using namespace tensor;

namespace {

// Writes (or combines) the update element us[si] into out[di]; out and upd share dtype (half already float).
Status scatter_apply(const KernelContext& ctx, Tensor& out, int64_t di, const Tensor& upd, int64_t si,
                     const std::string& reduction) {
  if (reduction == "none" || reduction.empty()) {
    copy_elements(out, di, upd, si, 1);
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
  copy_elements(out, 0, data, 0, data.num_elements());
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
  copy_elements(out, 0, data, 0, data.num_elements());
  const auto xs = strides_of(data.dims());
  const int64_t slice = product(data.dims(), static_cast<size_t>(m));
  const int64_t tuples = product(it->dims(), 0, static_cast<size_t>(q - 1));
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
  const int64_t outer = product(x.dims(), 0, ua), inner = product(x.dims(), ua + 1);
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
  KILN_RETURN_IF_ERROR(ctx.check_output_size(0, x->dtype(), dims));
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
      if (src[i] < 0) copy_elements(out, static_cast<int64_t>(i), value, 0, 1);
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
  const int64_t outer = product(ind->dims(), 0, static_cast<size_t>(axis));
  const int64_t inner = product(ind->dims(), static_cast<size_t>(axis));
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
  const int64_t outer = product(src_t.dims(), 0, ua), inner = product(src_t.dims(), ua + 1);
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x->dtype(), dims));
  int64_t di = 0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k : keep) {
      copy_elements(out, di, src_t, (o * len + k) * inner, inner);
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
