// Control-flow operators: If, Loop and Scan. Their bodies run through the executor's SubgraphRunner, which
// resolves names of enclosing graphs. If outputs and Loop-carried values may be sequences or optionals; Scan
// states and scan outputs are tensors.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {
namespace {

Status check_copyable(const KernelContext& ctx, const Tensor& t, const std::string& what) {
  if (t.dtype() != DType::kString && dtype_bits(t.dtype()) % 8 != 0) {
    return ctx.error(what + " has dtype " + dtype_name(t.dtype()) +
                     ", which Loop/Scan cannot slice or stack (a byte-sized or string dtype was expected)");
  }
  return Status::ok();
}

// The sub-tensor at `index` along `axis` (that axis removed).
StatusOr<Tensor> slice_axis(const Tensor& t, size_t axis, int64_t index) {
  const auto& dims = t.dims();
  std::vector<int64_t> out_dims;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i != axis) out_dims.push_back(dims[i]);
  }
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(t.dtype(), out_dims));
  const int64_t outer = product(dims, 0, axis);
  const int64_t len = dims[axis];
  const int64_t inner = product(dims, axis + 1, dims.size());
  for (int64_t o = 0; o < outer; ++o) copy_elements(out, o * inner, t, (o * len + index) * inner, inner);
  return out;
}

// Stacks same-shaped tensors along a new axis `axis` (0 <= axis <= rank of the parts).
StatusOr<Tensor> stack_axis(const KernelContext& ctx, const std::vector<Tensor>& parts, size_t axis,
                            const std::string& what) {
  const Tensor& first = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].dims() != first.dims() || parts[i].dtype() != first.dtype()) {
      return ctx.error(what + ": iteration " + std::to_string(i) + " produced " + dtype_name(parts[i].dtype()) +
                       dims_to_string(parts[i].dims()) + " but iteration 0 produced " + dtype_name(first.dtype()) +
                       dims_to_string(first.dims()) + " (every iteration must produce the same shape)");
    }
  }
  KILN_RETURN_IF_ERROR(check_copyable(ctx, first, what));
  std::vector<int64_t> dims = first.dims();
  const int64_t n = static_cast<int64_t>(parts.size());
  dims.insert(dims.begin() + static_cast<std::ptrdiff_t>(axis), n);
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(first.dtype(), dims));
  const int64_t outer = product(first.dims(), 0, axis);
  const int64_t inner = product(first.dims(), axis, first.rank());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t o = 0; o < outer; ++o)
      copy_elements(out, (o * n + i) * inner, parts[static_cast<size_t>(i)], o * inner, inner);
  }
  return out;
}

// An empty scan output for zero iterations: dims from the body's declared output (unknown dims as 0) with a
// 0-length axis inserted.
StatusOr<Tensor> empty_scan_output(const ir::ValueInfo& info, size_t axis) {
  std::vector<int64_t> dims;
  if (info.type.shape) {
    for (size_t i = 0; i < info.type.shape->rank(); ++i) {
      const auto& d = (*info.type.shape)[i];
      dims.push_back(d.is_known() ? d.value() : 0);
    }
  }
  if (axis > dims.size()) axis = dims.size();
  dims.insert(dims.begin() + static_cast<std::ptrdiff_t>(axis), 0);
  DType dt = info.type.elem_type == DType::kUndefined ? DType::kFloat32 : info.type.elem_type;
  return Tensor::allocate(dt, dims);
}

StatusOr<bool> read_bool(const KernelContext& ctx, const Tensor& t, const std::string& what) {
  if (t.num_elements() != 1) {
    return ctx.error(what + " must hold exactly one element but has shape " + dims_to_string(t.dims()));
  }
  if (t.dtype() == DType::kBool) return t.data<uint8_t>()[0] != 0;
  auto v = to_doubles(t);
  return !v.empty() && v[0] != 0;
}

StatusOr<const ir::Graph*> graph_attr(const KernelContext& ctx, const std::string& name) {
  const ir::Attribute* a = ctx.attr(name);
  if (!a || a->type != ir::AttrType::kGraph || !a->g) {
    return ctx.error("attribute '" + name + "' (a graph) is required but missing");
  }
  if (!ctx.subgraphs()) return ctx.error("no subgraph runner is available to run '" + name + "'");
  return a->g.get();
}

// A body output that must be a tensor (a scan output, a Scan state, a condition).
StatusOr<Tensor> body_tensor(const KernelContext& ctx, const Value& v, const std::string& what) {
  if (!v.is_tensor()) return ctx.error(what + " is " + v.describe() + " but a tensor was expected");
  return v.tensor();
}

Tensor scalar_int64(int64_t v) { return Tensor::from_vector<int64_t>({}, {v}); }
Tensor scalar_bool(bool v) { return Tensor::from_vector<bool>({}, {v}); }

// The core of Scan: runs `body` once per step over `len` steps. scan_inputs are sliced along in_axes[i]
// (reversed when in_dirs[i] != 0); scan outputs are stacked along out_axes[k] (reversed when out_dirs[k] != 0).
struct ScanSpec {
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

Status run_scan(KernelContext& ctx, const ir::Graph& body, std::vector<Tensor> states,
                const std::vector<const Tensor*>& scan_inputs, const ScanSpec& spec, int64_t len,
                std::vector<Tensor>& final_states, std::vector<Tensor>& scan_outputs) {
  const size_t n_states = states.size();
  const size_t n_scan_in = scan_inputs.size();
  if (body.inputs.size() != n_states + n_scan_in) {
    return ctx.error("the body has " + std::to_string(body.inputs.size()) + " inputs but " + std::to_string(n_states) +
                     " state variables + " + std::to_string(n_scan_in) + " scan inputs were expected");
  }
  if (body.outputs.size() < n_states) {
    return ctx.error("the body has " + std::to_string(body.outputs.size()) + " outputs, fewer than the " +
                     std::to_string(n_states) + " state variables");
  }
  const size_t n_scan_out = body.outputs.size() - n_states;
  std::vector<std::vector<Tensor>> per_step(n_scan_out);
  for (int64_t t = 0; t < len; ++t) {
    std::vector<Value> feeds(states.begin(), states.end());
    for (size_t i = 0; i < n_scan_in; ++i) {
      const int64_t idx = spec.in_dirs[i] ? len - 1 - t : t;
      KILN_ASSIGN_OR_RETURN(Tensor s, slice_axis(*scan_inputs[i], static_cast<size_t>(spec.in_axes[i]), idx));
      feeds.push_back(std::move(s));
    }
    KILN_ASSIGN_OR_RETURN(auto outs, (*ctx.subgraphs())(body, feeds));
    if (outs.size() != body.outputs.size()) return ctx.error("the body returned the wrong number of outputs");
    for (size_t i = 0; i < n_states; ++i) {
      KILN_ASSIGN_OR_RETURN(states[i], body_tensor(ctx, outs[i], "state output " + std::to_string(i)));
    }
    for (size_t k = 0; k < n_scan_out; ++k) {
      KILN_ASSIGN_OR_RETURN(Tensor t, body_tensor(ctx, outs[n_states + k], "scan output " + std::to_string(k)));
      per_step[k].push_back(std::move(t));
    }
  }
  final_states = std::move(states);
  scan_outputs.clear();
  for (size_t k = 0; k < n_scan_out; ++k) {
    const ir::ValueInfo& info = body.outputs[n_states + k];
    if (per_step[k].empty()) {
      int64_t axis = spec.out_axes[k];
      if (axis < 0) axis += (info.type.shape ? static_cast<int64_t>(info.type.shape->rank()) : 0) + 1;
      KILN_ASSIGN_OR_RETURN(Tensor e, empty_scan_output(info, static_cast<size_t>(axis < 0 ? 0 : axis)));
      scan_outputs.push_back(std::move(e));
      continue;
    }
    if (spec.out_dirs[k]) std::reverse(per_step[k].begin(), per_step[k].end());
    const int64_t rank = static_cast<int64_t>(per_step[k].front().rank()) + 1;
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, spec.out_axes[k], rank));
    KILN_ASSIGN_OR_RETURN(Tensor out, stack_axis(ctx, per_step[k], static_cast<size_t>(axis),
                                                 "scan output " + std::to_string(k) + " '" + info.name + "'"));
    scan_outputs.push_back(std::move(out));
  }
  return Status::ok();
}

// Reads a per-input/per-output attribute list, defaulting to zeros; errors when its length is wrong.
StatusOr<std::vector<int64_t>> list_attr(const KernelContext& ctx, const std::string& name, size_t n) {
  std::vector<int64_t> v = ctx.attr_ints(name);
  if (v.empty()) return std::vector<int64_t>(n, 0);
  if (v.size() != n) {
    return ctx.error("attribute '" + name + "' has " + std::to_string(v.size()) + " entries but " + std::to_string(n) +
                     " were expected");
  }
  return v;
}

}  // namespace

Status if_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* cond, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(bool c, read_bool(ctx, *cond, "the condition (input 0)"));
  const std::string branch = c ? "then_branch" : "else_branch";
  KILN_ASSIGN_OR_RETURN(const ir::Graph* g, graph_attr(ctx, branch));
  KILN_ASSIGN_OR_RETURN(auto outs, (*ctx.subgraphs())(*g, {}));
  if (outs.size() != ctx.num_outputs()) {
    return ctx.error(branch + " produced " + std::to_string(outs.size()) + " outputs but the node has " +
                     std::to_string(ctx.num_outputs()));
  }
  for (size_t i = 0; i < outs.size(); ++i) ctx.set_value_output(i, std::move(outs[i]));
  return Status::ok();
}

Status loop_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const ir::Graph* body, graph_attr(ctx, "body"));
  const Tensor* m_in = ctx.input(0);
  const Tensor* cond_in = ctx.input(1);
  const size_t n_carried = ctx.num_inputs() >= 2 ? ctx.num_inputs() - 2 : 0;
  if (body->inputs.size() != n_carried + 2) {
    return ctx.error("the body has " + std::to_string(body->inputs.size()) + " inputs but " +
                     std::to_string(n_carried + 2) + " (iteration number, condition and " + std::to_string(n_carried) +
                     " loop-carried values) were expected");
  }
  if (body->outputs.size() < n_carried + 1) {
    return ctx.error("the body has " + std::to_string(body->outputs.size()) + " outputs but at least " +
                     std::to_string(n_carried + 1) + " (condition and loop-carried values) were expected");
  }
  const size_t n_scan = body->outputs.size() - 1 - n_carried;
  if (ctx.num_outputs() > n_carried + n_scan) {
    return ctx.error("the node has " + std::to_string(ctx.num_outputs()) + " outputs but the body yields only " +
                     std::to_string(n_carried) + " loop-carried values and " + std::to_string(n_scan) +
                     " scan outputs");
  }
  int64_t max_trip = 0;
  if (m_in) {
    if (m_in->num_elements() != 1) {
      return ctx.error("the trip count M (input 0) must hold one element but has shape " +
                       dims_to_string(m_in->dims()));
    }
    if (!dtype_is_integer(m_in->dtype()) || dtype_bits(m_in->dtype()) % 8 != 0) {
      return ctx.error(std::string("the trip count M (input 0) has dtype ") + dtype_name(m_in->dtype()) +
                       " but int64 was expected");
    }
    max_trip = to_int64s(*m_in)[0];
  }
  bool cond = true;
  if (cond_in) {
    KILN_ASSIGN_OR_RETURN(cond, read_bool(ctx, *cond_in, "the condition (input 1)"));
  }
  std::vector<Value> carried;
  for (size_t i = 0; i < n_carried; ++i) {
    const Value* v = ctx.value(2 + i);
    if (!v) return ctx.error("loop-carried input " + std::to_string(2 + i) + " is missing");
    carried.push_back(*v);
  }
  std::vector<std::vector<Tensor>> scans(n_scan);
  int64_t iter = 0;
  while ((!m_in || iter < max_trip) && cond) {
    std::vector<Value> feeds;
    feeds.push_back(scalar_int64(iter));
    feeds.push_back(scalar_bool(cond));
    for (auto& c : carried) feeds.push_back(c);
    KILN_ASSIGN_OR_RETURN(auto outs, (*ctx.subgraphs())(*body, feeds));
    if (outs.size() != body->outputs.size()) return ctx.error("the body returned the wrong number of outputs");
    if (cond_in) {
      KILN_ASSIGN_OR_RETURN(Tensor c, body_tensor(ctx, outs[0], "the body's condition output"));
      KILN_ASSIGN_OR_RETURN(cond, read_bool(ctx, c, "the body's condition output"));
    }
    for (size_t i = 0; i < n_carried; ++i) carried[i] = outs[1 + i];
    for (size_t k = 0; k < n_scan; ++k) {
      KILN_ASSIGN_OR_RETURN(Tensor t, body_tensor(ctx, outs[1 + n_carried + k], "scan output " + std::to_string(k)));
      scans[k].push_back(std::move(t));
    }
    ++iter;
  }
  for (size_t i = 0; i < n_carried && i < ctx.num_outputs(); ++i) ctx.set_value_output(i, carried[i]);
  for (size_t k = 0; k < n_scan && n_carried + k < ctx.num_outputs(); ++k) {
    if (scans[k].empty()) {
      KILN_ASSIGN_OR_RETURN(Tensor e, empty_scan_output(body->outputs[1 + n_carried + k], 0));
      ctx.set_output(n_carried + k, std::move(e));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Tensor out, stack_axis(ctx, scans[k], 0, "scan output " + std::to_string(k)));
    ctx.set_output(n_carried + k, std::move(out));
  }
  return Status::ok();
}

// Scan opset 8: input 0 is the optional sequence_lens; every state and scan input has a leading batch axis.
Status scan8_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const ir::Graph* body, graph_attr(ctx, "body"));
  const int64_t m = ctx.attr_int("num_scan_inputs", -1);
  if (m < 0 || static_cast<size_t>(m) + 1 > ctx.num_inputs()) {
    return ctx.error("attribute 'num_scan_inputs' (" + std::to_string(m) + ") must be between 0 and " +
                     std::to_string(ctx.num_inputs() ? ctx.num_inputs() - 1 : 0));
  }
  const size_t n_states = ctx.num_inputs() - 1 - static_cast<size_t>(m);
  std::vector<const Tensor*> states, scans;
  for (size_t i = 0; i < n_states; ++i) {
    KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(1 + i));
    KILN_RETURN_IF_ERROR(check_copyable(ctx, *t, "state input " + std::to_string(1 + i)));
    states.push_back(t);
  }
  for (size_t i = 0; i < static_cast<size_t>(m); ++i) {
    KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(1 + n_states + i));
    KILN_RETURN_IF_ERROR(check_copyable(ctx, *t, "scan input " + std::to_string(1 + n_states + i)));
    if (t->rank() < 2) {
      return ctx.error("scan input " + std::to_string(1 + n_states + i) + " has shape " + dims_to_string(t->dims()) +
                       " but [batch, sequence, ...] was expected");
    }
    scans.push_back(t);
  }
  int64_t batch = -1, max_len = -1;
  for (const Tensor* t : states) {
    if (t->rank() < 1) return ctx.error("state inputs need a leading batch axis");
    if (batch >= 0 && t->dims()[0] != batch) return ctx.error("inputs disagree on the batch size");
    batch = t->dims()[0];
  }
  for (const Tensor* t : scans) {
    if (batch >= 0 && t->dims()[0] != batch) return ctx.error("inputs disagree on the batch size");
    batch = t->dims()[0];
    if (max_len >= 0 && t->dims()[1] != max_len) return ctx.error("scan inputs disagree on the sequence length");
    max_len = t->dims()[1];
  }
  if (batch < 0) return ctx.error("needs at least one state or scan input");
  if (max_len < 0) max_len = 0;
  std::vector<int64_t> lens(static_cast<size_t>(batch), max_len);
  if (const Tensor* sl = ctx.input(0)) {
    auto v = to_int64s(*sl);
    if (static_cast<int64_t>(v.size()) != batch) {
      return ctx.error("sequence_lens has " + std::to_string(v.size()) + " entries but the batch size is " +
                       std::to_string(batch));
    }
    for (size_t b = 0; b < v.size(); ++b) {
      if (v[b] < 0 || v[b] > max_len) {
        return ctx.error("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(v[b]) + " is outside [0, " +
                         std::to_string(max_len) + "]");
      }
      lens[b] = v[b];
    }
  }
  ScanSpec spec;
  KILN_ASSIGN_OR_RETURN(spec.in_dirs, list_attr(ctx, "directions", static_cast<size_t>(m)));
  spec.in_axes.assign(static_cast<size_t>(m), 0);
  const size_t n_scan_out = body->outputs.size() >= n_states ? body->outputs.size() - n_states : 0;
  spec.out_axes.assign(n_scan_out, 0);
  spec.out_dirs.assign(n_scan_out, 0);

  std::vector<std::vector<Tensor>> final_per_batch(n_states), scan_per_batch(n_scan_out);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> st;
    for (const Tensor* t : states) {
      KILN_ASSIGN_OR_RETURN(Tensor s, slice_axis(*t, 0, b));
      st.push_back(std::move(s));
    }
    std::vector<Tensor> sc_owned;
    for (const Tensor* t : scans) {
      KILN_ASSIGN_OR_RETURN(Tensor s, slice_axis(*t, 0, b));
      if (lens[static_cast<size_t>(b)] != max_len) {
        // Keep only the first lens[b] steps.
        std::vector<int64_t> d = s.dims();
        const int64_t inner = product(d, 1, d.size());
        d[0] = lens[static_cast<size_t>(b)];
        KILN_ASSIGN_OR_RETURN(Tensor cut, Tensor::allocate(s.dtype(), d));
        copy_elements(cut, 0, s, 0, d[0] * inner);
        s = std::move(cut);
      }
      sc_owned.push_back(std::move(s));
    }
    std::vector<const Tensor*> sc;
    for (auto& t : sc_owned) sc.push_back(&t);
    std::vector<Tensor> fin, outs;
    KILN_RETURN_IF_ERROR(run_scan(ctx, *body, std::move(st), sc, spec, lens[static_cast<size_t>(b)], fin, outs));
    for (size_t i = 0; i < n_states; ++i) final_per_batch[i].push_back(std::move(fin[i]));
    for (size_t k = 0; k < n_scan_out; ++k) {
      Tensor o = std::move(outs[k]);
      if (o.rank() >= 1 && o.dims()[0] < max_len) {  // pad short sequences with zeros
        std::vector<int64_t> d = o.dims();
        const int64_t inner = product(d, 1, d.size());
        const int64_t have = d[0];
        d[0] = max_len;
        KILN_ASSIGN_OR_RETURN(Tensor padded, Tensor::allocate(o.dtype(), d));
        copy_elements(padded, 0, o, 0, have * inner);
        o = std::move(padded);
      }
      scan_per_batch[k].push_back(std::move(o));
    }
  }
  for (size_t i = 0; i < n_states && i < ctx.num_outputs(); ++i) {
    if (batch == 0) {
      ctx.set_output(i, *states[i]);
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Tensor out, stack_axis(ctx, final_per_batch[i], 0, "state output " + std::to_string(i)));
    ctx.set_output(i, std::move(out));
  }
  for (size_t k = 0; k < n_scan_out && n_states + k < ctx.num_outputs(); ++k) {
    if (batch == 0) {
      KILN_ASSIGN_OR_RETURN(Tensor e, empty_scan_output(body->outputs[n_states + k], 0));
      ctx.set_output(n_states + k, std::move(e));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Tensor out, stack_axis(ctx, scan_per_batch[k], 0, "scan output " + std::to_string(k)));
    ctx.set_output(n_states + k, std::move(out));
  }
  return Status::ok();
}

Status scan_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const ir::Graph* body, graph_attr(ctx, "body"));
  const int64_t m = ctx.attr_int("num_scan_inputs", -1);
  if (m < 0 || static_cast<size_t>(m) > ctx.num_inputs()) {
    return ctx.error("attribute 'num_scan_inputs' (" + std::to_string(m) + ") must be between 0 and " +
                     std::to_string(ctx.num_inputs()));
  }
  const size_t n_states = ctx.num_inputs() - static_cast<size_t>(m);
  std::vector<Tensor> states;
  for (size_t i = 0; i < n_states; ++i) {
    KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(i));
    states.push_back(*t);
  }
  ScanSpec spec;
  KILN_ASSIGN_OR_RETURN(spec.in_axes, list_attr(ctx, "scan_input_axes", static_cast<size_t>(m)));
  KILN_ASSIGN_OR_RETURN(spec.in_dirs, list_attr(ctx, "scan_input_directions", static_cast<size_t>(m)));
  const size_t n_scan_out = body->outputs.size() >= n_states ? body->outputs.size() - n_states : 0;
  KILN_ASSIGN_OR_RETURN(spec.out_axes, list_attr(ctx, "scan_output_axes", n_scan_out));
  KILN_ASSIGN_OR_RETURN(spec.out_dirs, list_attr(ctx, "scan_output_directions", n_scan_out));
  std::vector<const Tensor*> scans;
  int64_t len = -1;
  for (size_t i = 0; i < static_cast<size_t>(m); ++i) {
    KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(n_states + i));
    KILN_RETURN_IF_ERROR(check_copyable(ctx, *t, "scan input " + std::to_string(n_states + i)));
    KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, spec.in_axes[i], static_cast<int64_t>(t->rank())));
    spec.in_axes[i] = axis;
    const int64_t l = t->dims()[static_cast<size_t>(axis)];
    if (len >= 0 && l != len) {
      return ctx.error("scan input " + std::to_string(n_states + i) + " has length " + std::to_string(l) +
                       " along axis " + std::to_string(axis) + " but an earlier scan input has length " +
                       std::to_string(len));
    }
    len = l;
    scans.push_back(t);
  }
  if (len < 0) len = 0;
  std::vector<Tensor> fin, outs;
  KILN_RETURN_IF_ERROR(run_scan(ctx, *body, std::move(states), scans, spec, len, fin, outs));
  for (size_t i = 0; i < fin.size() && i < ctx.num_outputs(); ++i) ctx.set_output(i, std::move(fin[i]));
  for (size_t k = 0; k < outs.size() && n_states + k < ctx.num_outputs(); ++k) {
    ctx.set_output(n_states + k, std::move(outs[k]));
  }
  return Status::ok();
}

}  // namespace kiln::cpu
