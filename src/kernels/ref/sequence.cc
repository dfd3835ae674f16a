// Sequence and optional operators, and Identity (which passes any value through). A sequence holds tensors
// that share their buffers with the tensors put in, so building and indexing sequences copies no elements.
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {
namespace {

StatusOr<const Value*> required_value(const KernelContext& ctx, size_t i, const std::string& what) {
  const Value* v = ctx.value(i);
  if (!v) return ctx.error(what + " (input " + std::to_string(i) + ") is required but missing");
  return v;
}

StatusOr<const Value*> sequence_input(const KernelContext& ctx, size_t i) {
  KILN_ASSIGN_OR_RETURN(const Value* v, required_value(ctx, i, "the sequence"));
  if (!v->is_sequence()) {
    return ctx.error("input " + std::to_string(i) + " is " + v->describe() + " but a sequence was expected");
  }
  return v;
}

// A scalar position input, checked against [lo, hi] (inclusive) and made non-negative.
StatusOr<int64_t> position(const KernelContext& ctx, const Tensor& t, int64_t size, bool allow_end) {
  if (t.num_elements() != 1 || (t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32)) {
    return ctx.error(std::string("the position must be an int32 or int64 scalar but is ") + dtype_name(t.dtype()) +
                     dims_to_string(t.dims()));
  }
  const int64_t p = to_int64s(t)[0];
  const int64_t hi = allow_end ? size : size - 1;
  if (p < -size || p > hi) {
    return ctx.error("position " + std::to_string(p) + " is out of range for a sequence of " + std::to_string(size) +
                     " tensors (valid: " + std::to_string(-size) + " to " + std::to_string(hi) + ")");
  }
  return p < 0 ? p + size : p;
}

Status check_byte_dtype(const KernelContext& ctx, DType t) {
  if (t != DType::kString && dtype_bits(t) % 8 != 0) return ctx.unsupported_dtype(t);
  return Status::ok();
}

// Allocates a tensor (strings included).
StatusOr<Tensor> allocate_like(DType dtype, const std::vector<int64_t>& dims) {
  if (dtype == DType::kString) {
    const auto n = checked_num_elements(dims);
    if (!n) return invalid_argument("shape " + dims_to_string(dims) + " has too many elements");
    return Tensor::from_strings(dims, std::vector<std::string>(static_cast<size_t>(*n)));
  }
  return Tensor::allocate(dtype, dims);
}

}  // namespace

Status identity_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Value* v, required_value(ctx, 0, "the input"));
  ctx.set_value_output(0, *v);  // values are immutable once produced: sharing is safe
  return Status::ok();
}

Status sequence_empty_kernel(KernelContext& ctx) {
  const auto dtype = static_cast<DType>(ctx.attr_int("dtype", static_cast<int64_t>(DType::kFloat32)));
  if (dtype_name(dtype) == std::string("undefined")) {
    return ctx.error("attribute 'dtype' (" + std::to_string(static_cast<int>(dtype)) + ") is not a tensor dtype");
  }
  ctx.set_value_output(0, Value::sequence({}, dtype));
  return Status::ok();
}

Status sequence_construct_kernel(KernelContext& ctx) {
  std::vector<Tensor> items;
  DType dtype = DType::kUndefined;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(i));
    if (i > 0 && t->dtype() != dtype) {
      return ctx.error("input " + std::to_string(i) + " has dtype " + dtype_name(t->dtype()) + " but input 0 has " +
                       dtype_name(dtype) + " (a sequence holds one dtype)");
    }
    dtype = t->dtype();
    items.push_back(*t);
  }
  if (items.empty()) return ctx.error("needs at least one input");
  ctx.set_value_output(0, Value::sequence(std::move(items), dtype));
  return Status::ok();
}

Status sequence_at_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  KILN_ASSIGN_OR_RETURN(const Tensor* pos, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(int64_t p, position(ctx, *pos, static_cast<int64_t>(seq->items().size()), false));
  ctx.set_output(0, seq->items()[static_cast<size_t>(p)]);
  return Status::ok();
}

Status sequence_insert_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(1));
  if (t->dtype() != seq->elem_type()) {
    return ctx.error(std::string("the tensor has dtype ") + dtype_name(t->dtype()) + " but the sequence holds " +
                     dtype_name(seq->elem_type()));
  }
  std::vector<Tensor> items = seq->items();
  int64_t p = static_cast<int64_t>(items.size());
  if (const Tensor* pos = ctx.input(2)) {
    KILN_ASSIGN_OR_RETURN(p, position(ctx, *pos, static_cast<int64_t>(items.size()), true));
  }
  items.insert(items.begin() + p, *t);
  ctx.set_value_output(0, Value::sequence(std::move(items), seq->elem_type()));
  return Status::ok();
}

Status sequence_erase_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  std::vector<Tensor> items = seq->items();
  if (items.empty()) return ctx.error("cannot erase from an empty sequence");
  int64_t p = static_cast<int64_t>(items.size()) - 1;
  if (const Tensor* pos = ctx.input(1)) {
    KILN_ASSIGN_OR_RETURN(p, position(ctx, *pos, static_cast<int64_t>(items.size()), false));
  }
  items.erase(items.begin() + p);
  ctx.set_value_output(0, Value::sequence(std::move(items), seq->elem_type()));
  return Status::ok();
}

Status sequence_length_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  ctx.set_output(0, Tensor::from_vector<int64_t>({}, {static_cast<int64_t>(seq->items().size())}));
  return Status::ok();
}

Status split_to_sequence_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(check_byte_dtype(ctx, x->dtype()));
  if (x->rank() == 0) return ctx.error("the input must have rank >= 1 but is a scalar");
  const int64_t rank = static_cast<int64_t>(x->rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", 0), rank));
  const auto ax = static_cast<size_t>(axis);
  const int64_t len = x->dims()[ax];
  std::vector<int64_t> lengths;
  bool squeeze = false;
  if (const Tensor* split = ctx.input(1)) {
    std::vector<int64_t> s = to_int64s(*split);
    if (split->rank() == 0) {
      if (s.empty() || s[0] <= 0) return ctx.error("the scalar 'split' must be positive");
      for (int64_t at = 0; at < len; at += s[0]) lengths.push_back(std::min(s[0], len - at));
    } else {
      int64_t sum = 0;
      for (int64_t v : s) {
        if (v < 0) return ctx.error("'split' has a negative length " + std::to_string(v));
        sum += v;
      }
      if (sum != len) {
        return ctx.error("'split' lengths sum to " + std::to_string(sum) + " but the input's axis " +
                         std::to_string(axis) + " has length " + std::to_string(len));
      }
      lengths = s;
    }
  } else {
    lengths.assign(static_cast<size_t>(len), 1);
    squeeze = ctx.attr_int("keepdims", 1) == 0;
  }
  const int64_t outer = product(x->dims(), 0, ax);
  const int64_t inner = product(x->dims(), ax + 1, x->rank());
  std::vector<Tensor> items;
  int64_t start = 0;
  for (int64_t l : lengths) {
    std::vector<int64_t> dims = x->dims();
    dims[ax] = l;
    KILN_ASSIGN_OR_RETURN(Tensor part, allocate_like(x->dtype(), dims));
    for (int64_t o = 0; o < outer; ++o) copy_elements(part, o * l * inner, *x, (o * len + start) * inner, l * inner);
    if (squeeze) {
      dims.erase(dims.begin() + axis);
      part = part.reshaped(dims);
    }
    items.push_back(std::move(part));
    start += l;
  }
  ctx.set_value_output(0, Value::sequence(std::move(items), x->dtype()));
  return Status::ok();
}

Status concat_from_sequence_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Value* seq, sequence_input(ctx, 0));
  const auto& items = seq->items();
  if (items.empty()) return ctx.error("cannot concatenate an empty sequence");
  const bool new_axis = ctx.attr_int("new_axis", 0) != 0;
  const Tensor& first = items[0];
  KILN_RETURN_IF_ERROR(check_byte_dtype(ctx, first.dtype()));
  const int64_t rank = static_cast<int64_t>(first.rank());
  const auto* axis_attr = ctx.attr("axis");
  if (!axis_attr) return ctx.error("attribute 'axis' is required but missing");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, axis_attr->i, new_axis ? rank + 1 : rank));
  const auto ax = static_cast<size_t>(axis);
  // With new_axis each tensor is read as having a 1 inserted at `axis`.
  std::vector<std::vector<int64_t>> shapes;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].dtype() != first.dtype()) return ctx.error("the sequence's tensors have different dtypes");
    // Ranks first: the axis was checked against tensor 0's.
    if (static_cast<int64_t>(items[i].rank()) != rank) {
      return ctx.error("tensor " + std::to_string(i) + " has rank " + std::to_string(items[i].rank()) +
                       " but tensor 0 has rank " + std::to_string(rank));
    }
    std::vector<int64_t> d = items[i].dims();
    if (new_axis) d.insert(d.begin() + axis, 1);
    if (!shapes.empty()) {
      for (size_t k = 0; k < d.size(); ++k) {
        if (k != ax && d[k] != shapes[0][k]) {
          return ctx.error("tensor " + std::to_string(i) + " has shape " + dims_to_string(items[i].dims()) +
                           " which does not match tensor 0's " + dims_to_string(first.dims()) + " outside axis " +
                           std::to_string(axis));
        }
      }
    }
    shapes.push_back(std::move(d));
  }
  std::vector<int64_t> out_dims = shapes[0];
  out_dims[ax] = 0;
  for (const auto& d : shapes) out_dims[ax] += d[ax];
  KILN_ASSIGN_OR_RETURN(Tensor out, allocate_like(first.dtype(), out_dims));
  const int64_t outer = product(out_dims, 0, ax);
  const int64_t inner = product(out_dims, ax + 1, out_dims.size());
  int64_t offset = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const int64_t l = shapes[i][ax];
    for (int64_t o = 0; o < outer; ++o) {
      copy_elements(out, (o * out_dims[ax] + offset) * inner, items[i], o * l * inner, l * inner);
    }
    offset += l;
  }
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status optional_kernel(KernelContext& ctx) {
  if (const Value* v = ctx.value(0)) {
    ctx.set_value_output(0, v->as_optional());
    return Status::ok();
  }
  const auto* type = ctx.attr("type");
  if (!type || type->type != ir::AttrType::kTypeProto) {
    return ctx.error("without an input, attribute 'type' is required to make an empty optional");
  }
  ctx.set_value_output(0, Value::none(type->tp.to_string()));
  return Status::ok();
}

Status optional_has_element_kernel(KernelContext& ctx) {
  const Value* v = ctx.value(0);
  if (!v && ctx.opset() < 18) return ctx.error("input 0 is required but missing");
  const bool has = v && !v->is_none();
  ctx.set_output(0, Tensor::from_vector<bool>({}, {has}));
  return Status::ok();
}

Status optional_get_element_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Value* v, required_value(ctx, 0, "the optional"));
  if (v->is_none()) return ctx.error("the optional input is empty (" + v->describe() + ")");
  Value out = v->is_tensor() ? Value(v->tensor()) : Value::sequence(v->items(), v->elem_type());
  ctx.set_value_output(0, std::move(out));
  return Status::ok();
}

// SequenceMap: runs the body once per position; sequence inputs give their i-th tensor, tensor inputs are
// passed whole. Every body output is collected into a sequence.
Status sequence_map_kernel(KernelContext& ctx) {
  const ir::Attribute* a = ctx.attr("body");
  if (!a || a->type != ir::AttrType::kGraph || !a->g) {
    return ctx.error("attribute 'body' (a graph) is required but missing");
  }
  if (!ctx.subgraphs()) return ctx.error("no subgraph runner is available to run 'body'");
  const ir::Graph& body = *a->g;
  KILN_ASSIGN_OR_RETURN(const Value* first, sequence_input(ctx, 0));
  const size_t n = first->items().size();
  if (body.inputs.size() != ctx.num_inputs()) {
    return ctx.error("the body has " + std::to_string(body.inputs.size()) + " inputs but the node has " +
                     std::to_string(ctx.num_inputs()));
  }
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    KILN_ASSIGN_OR_RETURN(const Value* v, required_value(ctx, i, "input " + std::to_string(i)));
    if (v->is_sequence() && v->items().size() != n) {
      return ctx.error("input " + std::to_string(i) + " is a sequence of " + std::to_string(v->items().size()) +
                       " tensors but input 0 has " + std::to_string(n));
    }
    if (v->is_none()) return ctx.error("input " + std::to_string(i) + " is an empty optional");
  }
  std::vector<std::vector<Tensor>> collected(body.outputs.size());
  for (size_t k = 0; k < n; ++k) {
    std::vector<Value> feeds;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Value* v = ctx.value(i);
      feeds.push_back(v->is_sequence() ? Value(v->items()[k]) : Value(v->tensor()));
    }
    KILN_ASSIGN_OR_RETURN(auto outs, (*ctx.subgraphs())(body, feeds));
    for (size_t j = 0; j < outs.size() && j < collected.size(); ++j) {
      if (!outs[j].is_tensor()) {
        return ctx.error("body output " + std::to_string(j) + " is " + outs[j].describe() +
                         " but a tensor was expected");
      }
      collected[j].push_back(outs[j].tensor());
    }
  }
  for (size_t j = 0; j < collected.size() && j < ctx.num_outputs(); ++j) {
    DType dt = body.outputs[j].type.kind == ir::Type::Kind::kSequence && body.outputs[j].type.value_type
                   ? body.outputs[j].type.value_type->elem_type
                   : body.outputs[j].type.elem_type;
    if (!collected[j].empty()) dt = collected[j][0].dtype();
    ctx.set_value_output(j, Value::sequence(std::move(collected[j]), dt));
  }
  return Status::ok();
}

}  // namespace kiln::cpu
