// Shapes: Constant, Shape, Reshape.
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
  const auto n = end - start;
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kInt64, {n}));
  std::copy(x->dims().begin() + start, x->dims().begin() + end, out->data<int64_t>());
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
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      return ctx.error("cannot reshape " + dims_to_string(x->dims()) + " to " + dims_to_string(shape) +
                       ": its dimensions multiply past 2^63");
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
