// Copies and gathers: Concat, Split, Slice, Gather*, Squeeze, Unsqueeze, Flatten, Expand, Tile, Transpose,
// ConstantOfShape, Size.
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

namespace kiln::cpu {

using namespace tensor;

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
  const int64_t outer = product(out_dims, 0, static_cast<size_t>(axis));
  const int64_t inner = product(out_dims, static_cast<size_t>(axis) + 1);
  const int64_t out_row = out_dims[static_cast<size_t>(axis)] * inner;
  int64_t col = 0;
  for (const Tensor* t : ins) {
    const int64_t block = t->dims()[static_cast<size_t>(axis)] * inner;
    for (int64_t o = 0; o < outer; ++o) copy_elements(out, o * out_row + col, *t, o * block, block);
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
  const int64_t outer = product(x->dims(), 0, static_cast<size_t>(axis));
  const int64_t inner = product(x->dims(), static_cast<size_t>(axis) + 1);
  int64_t col = 0;
  for (size_t k = 0; k < split.size(); ++k) {
    std::vector<int64_t> dims = x->dims();
    dims[static_cast<size_t>(axis)] = split[k];
    KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(x->dtype(), dims));
    const int64_t block = split[k] * inner;
    for (int64_t o = 0; o < outer; ++o) copy_elements(out, o * block, *x, o * len * inner + col, block);
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
  src.reserve(static_cast<size_t>(product(dims)));
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
  const int64_t outer = product(x->dims(), 0, ua), inner = product(x->dims(), ua + 1);
  const auto n = static_cast<int64_t>(idx.size());
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_output(ctx, 0, x->dtype(), dims));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      copy_elements(out, (o * n + k) * inner, *x, (o * len + idx[static_cast<size_t>(k)]) * inner, inner);
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
  const int64_t slice = product(x->dims(), static_cast<size_t>(b + m));
  const int64_t batch = product(x->dims(), 0, static_cast<size_t>(b));
  const int64_t per_batch_in = product(x->dims(), static_cast<size_t>(b));
  const int64_t tuples = product(it->dims(), 0, static_cast<size_t>(q - 1));
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
    copy_elements(out, t * slice, *x, off, slice);
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
  const int64_t a = product(x->dims(), 0, static_cast<size_t>(axis));
  const int64_t b = product(x->dims(), static_cast<size_t>(axis));
  ctx.set_output(0, x->reshaped({a, b}));
  return Status::ok();
}

Status expand_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_copyable(ctx, *x));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> shape, int_input(ctx, 1, "shape"));
  auto dims = broadcast_shapes(x->dims(), shape);
  if (!dims.is_ok()) return ctx.error(dims.status().message());
  KILN_RETURN_IF_ERROR(ctx.check_output_size(0, x->dtype(), *dims));
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
    if (__builtin_mul_overflow(dims[d], reps[d], &dims[d])) {
      return resource_exhausted(ctx.error("repeats[" + std::to_string(d) + "] = " + std::to_string(reps[d]) +
                                          " makes dimension " + std::to_string(d) + " overflow int64")
                                    .message());
    }
  }
  KILN_RETURN_IF_ERROR(ctx.check_output_size(0, x->dtype(), dims));
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
  KILN_RETURN_IF_ERROR(ctx.check_output_size(0, value.dtype(), dims));
  KILN_ASSIGN_OR_RETURN(Tensor out, alloc_any(value.dtype(), dims));
  for (int64_t i = 0; i < out.num_elements(); ++i) copy_elements(out, i, value, 0, 1);
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status size_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  ctx.set_output(0, Tensor::from_vector<int64_t>({}, {x->num_elements()}));
  return Status::ok();
}

}  // namespace kiln::cpu
