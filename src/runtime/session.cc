// The session: a plan per graph (node order, kernels, value lifetimes) built once, then a plain
// topological executor per run. Subgraphs (If/Loop/Scan) run through the same executor.
#include "kiln/runtime/session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "kernels/capabilities.h"
#include "kernels/kernel.h"
#include "kiln/core/allocator.h"
#include "kiln/optimizer/optimizer.h"
#include "optimizer/graph_util.h"
#include "runtime/run_io.h"
#include "runtime/session_impl.h"

namespace kiln {
namespace {

// Signatures kept per node; the oldest goes first (a model fed ever-changing shapes chooses again).
constexpr size_t kMaxSignatures = 64;

// What selects a kernel: each input's kind, dtype and dims.
std::vector<int64_t> shape_signature(const cpu::KernelContext& ctx) {
  std::vector<int64_t> key;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Value* v = ctx.value(i);
    if (!v || !v->is_tensor()) {
      key.push_back(v ? -1 : -2);
      continue;
    }
    const Tensor& t = v->tensor();
    key.push_back(static_cast<int64_t>(t.dtype()));
    key.push_back(static_cast<int64_t>(t.rank()));
    key.insert(key.end(), t.dims().begin(), t.dims().end());
  }
  return key;
}

// Whether ctx's inputs have `signature` (shape_signature's layout), compared in place: every run of a node with
// more than one candidate asks this, and building the signature would allocate.
bool matches_signature(const cpu::KernelContext& ctx, const std::vector<int64_t>& signature) {
  size_t at = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Value* v = ctx.value(i);
    if (!v || !v->is_tensor()) {
      if (at >= signature.size() || signature[at++] != (v ? -1 : -2)) return false;
      continue;
    }
    const Tensor& t = v->tensor();
    const auto& dims = t.dims();
    if (at + 2 + dims.size() > signature.size() || signature[at] != static_cast<int64_t>(t.dtype()) ||
        signature[at + 1] != static_cast<int64_t>(t.rank())) {
      return false;
    }
    at += 2;
    for (int64_t d : dims) {
      if (signature[at++] != d) return false;
    }
  }
  return at == signature.size();
}

// A run's memory limit for the node a thread is running: every tensor it allocates (Tensor::allocate) is checked
// against what the run held before the node plus what the node took so far.
class RunGuard final : public AllocationGuard {
 public:
  RunGuard(size_t limit, size_t held) : limit_(limit), held_(held) {}
  Status allow(size_t bytes, const std::string& what) override {
    const size_t total = held_ + allocated_ + bytes;
    if (total > limit_) {
      return resource_exhausted("allocating " + what + " (" + human_bytes(static_cast<double>(bytes)) +
                                ") would bring what the run holds to " + human_bytes(static_cast<double>(total)) +
                                ", over its memory limit of " + human_bytes(static_cast<double>(limit_)) +
                                " (memory_limit_mb)");
    }
    allocated_ += bytes;
    return Status::ok();
  }

 private:
  size_t limit_, held_, allocated_ = 0;
};

}  // namespace

void Session::Impl::configure(cpu::KernelContext& ctx, const NodePlan& np) const {
  ctx.set_thread_pool(pool.get());
  ctx.set_isa(isa);
  ctx.set_precision(precision);
  ctx.set_cache(np.cache.get());
  ctx.set_shared_cache(shared_cache.get());
  ctx.set_constant_inputs(np.constant_inputs);
}

const cpu::KernelDef* Session::Impl::select(const NodePlan& np, const cpu::KernelContext& ctx, int profile) const {
  if (np.candidates.size() == 1 || options.reference_kernels) return np.candidates.back();
  KernelSelection& sel = *np.selection;
  std::lock_guard<std::mutex> lock(sel.mu);
  for (size_t i = 0; i < sel.by_signature.size(); ++i) {
    if (matches_signature(ctx, sel.by_signature[i].first)) {
      sel.current = i;
      return sel.by_signature[i].second;
    }
  }
  std::vector<int64_t> key = shape_signature(ctx);
  // A plan's kernel for the run's profile, where it supports these inputs (the reference kernel always does).
  const cpu::KernelDef* pinned = profile >= 0 && static_cast<size_t>(profile) < np.planned.size()
                                     ? np.planned[static_cast<size_t>(profile)]
                                     : nullptr;
  auto remember = [&sel, &key](const cpu::KernelDef* kernel) {
    if (sel.by_signature.size() >= kMaxSignatures) sel.by_signature.erase(sel.by_signature.begin());
    sel.by_signature.emplace_back(std::move(key), kernel);
    sel.current = sel.by_signature.size() - 1;
    return kernel;
  };
  if (pinned && (pinned->backend != cpu::Backend::kFast || pinned->supports(ctx))) return remember(pinned);
  const cpu::KernelDef* kernel = cpu::select_kernel(np.candidates, ctx, false);
  std::vector<const cpu::KernelDef*> applicable;
  if (options.tune) {
    for (const auto* k : np.candidates) {
      if (k->backend == cpu::Backend::kFast && k->supports(ctx)) applicable.push_back(k);
    }
  }
  if (applicable.size() >= 2) {
    std::vector<const Value*> inputs;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) inputs.push_back(ctx.value(i));
    const Tuner::ScratchContext scratch = [&]() {
      auto c = std::make_unique<cpu::KernelContext>(*np.node, np.opset, inputs, ctx.num_outputs(), ctx.subgraphs());
      configure(*c, np);
      return c;
    };
    kernel = tuner->choose(applicable, kernel, ctx, Tuner::config_key(*np.node, key, np.constant_inputs), scratch,
                           {np.cache.get(), shared_cache.get()}, sel.last_timings);
  }
  return remember(kernel);
}

void Session::Impl::collect_choices(const ir::Graph& g, std::vector<KernelChoice>& out) const {
  const GraphPlan& plan = plans.at(&g);
  for (const NodePlan& np : plan.nodes) {
    const ir::Node& n = *np.node;
    KernelChoice c;
    c.ir_node = &n;
    c.node = n.name;
    c.op = (n.domain.empty() ? "" : n.domain + "::") + n.op_type;
    {
      std::lock_guard<std::mutex> lock(np.selection->mu);
      if (np.selection->last) {
        c.kernel = np.selection->last->name;
        c.detail = np.selection->last_detail;
        for (const auto& t : np.selection->last_timings) c.timings.emplace_back(t.kernel, t.ms);
      }
      if (np.selection->current < np.selection->by_signature.size()) {
        c.signature = np.selection->by_signature[np.selection->current].first;
      }
    }
    for (size_t p = 0; p < np.planned.size(); ++p) {
      c.planned.emplace_back(np.planned[p] ? np.planned[p]->name : "");
      c.planned_details.push_back(np.planned_details[p]);
    }
    out.push_back(std::move(c));
    std::vector<const ir::Graph*> subs;
    ir::Graph::collect_subgraphs(n, subs);
    for (const auto* sub : subs) collect_choices(*sub, out);
  }
}

Status Session::Impl::plan_graph(const ir::Graph& g, const std::string& scope,
                                 std::unordered_map<std::string, DType> known) {
  GraphPlan plan;
  plan.graph = &g;
  auto learn = [&known](const std::string& name, const ir::Type& t) {
    if (t.kind == ir::Type::Kind::kTensor && t.elem_type != DType::kUndefined) known[name] = t.elem_type;
  };
  for (const auto& v : g.inputs) learn(v.name, v.type);
  for (const auto& v : g.value_info) learn(v.name, v.type);
  for (const auto& init : g.initializers) known[init.name] = init.tensor.dtype();
  for (const auto& n : g.nodes) {
    const ir::Attribute* value = n.attr("value");
    if (n.op_type == "Constant" && n.domain.empty() && value && value->type == ir::AttrType::kTensor &&
        !n.outputs.empty()) {
      known[n.outputs[0]] = value->t.tensor.dtype();
    }
  }
  for (const auto& init : g.initializers) plan.initializers.emplace(init.name, Value(init.tensor));
  std::unordered_set<std::string> graph_inputs;
  for (const auto& v : g.inputs) graph_inputs.insert(v.name);
  KILN_ASSIGN_OR_RETURN(auto order, ir::topological_order(g));
  // Last reader of each value produced or fed in this graph; graph outputs and values read by subgraphs
  // live to the end.
  std::unordered_set<std::string> keep;
  for (const auto& o : g.outputs) keep.insert(o.name);
  std::unordered_map<std::string, size_t> last_use;
  for (size_t k = 0; k < order.size(); ++k) {
    const ir::Node& n = g.nodes[order[k]];
    for (const auto& i : n.inputs) {
      if (!i.empty()) last_use[i] = k;
    }
    std::vector<const ir::Graph*> subs;
    ir::Graph::collect_subgraphs(n, subs);
    for (const auto* s : subs) {
      std::unordered_set<std::string> reads;
      opt::collect_reads(*s, reads);
      for (const auto& r : reads) last_use[r] = k;
      KILN_RETURN_IF_ERROR(plan_graph(*s, scope + n.describe(order[k]) + " subgraph: ", known));
    }
  }
  for (size_t k = 0; k < order.size(); ++k) {
    const ir::Node& n = g.nodes[order[k]];
    const int64_t opset = model.opset(n.domain).value_or(0);
    std::vector<const cpu::KernelDef*> candidates;
    if (const CustomOps::Found custom = custom_ops.find(n.domain, n.op_type, opset); custom.op) {
      // A custom op serves the node alone (before kiln's own kernels, as ONNX Runtime's custom ops do).
      const auto ins = static_cast<int64_t>(n.inputs.size());
      const auto outs = static_cast<int64_t>(n.outputs.size());
      if (ins < custom.op->min_inputs || ins > custom.op->max_inputs || outs != custom.op->num_outputs) {
        return invalid_model(scope + n.describe(order[k]) + ": has " + std::to_string(ins) + " inputs and " +
                             std::to_string(outs) + " outputs, but the custom op from '" + custom.library->path() +
                             "' takes " + std::to_string(custom.op->min_inputs) + " to " +
                             std::to_string(custom.op->max_inputs) + " inputs and gives " +
                             std::to_string(custom.op->num_outputs) + " outputs");
      }
      auto& kernel = custom_kernels[custom.op];
      if (!kernel) kernel = make_custom_kernel(custom);
      candidates.push_back(&kernel->def);
    } else {
      candidates = cpu::find_candidates(n.domain, n.op_type, opset);
    }
    if (candidates.empty()) {
      const bool custom_domain = !n.domain.empty() && n.domain != "ai.onnx" && n.domain.rfind("ai.onnx.", 0) != 0 &&
                                 n.domain != "ai.kiln" && n.domain != "com.microsoft";
      return unimplemented(scope + n.describe(order[k]) + ": kiln has no CPU kernel for " +
                           (n.domain.empty() ? "" : n.domain + "::") + n.op_type + " at opset " +
                           std::to_string(opset) +
                           (custom_domain ? " (an op of a custom domain runs with its custom-op library: "
                                            "SessionOptions::custom_op_libraries, --custom-ops LIB)"
                                          : ""));
    }
    const cpu::KernelDef* kernel = candidates.back();
    if (kernel->dtypes != cpu::kAnyDType && !n.inputs.empty()) {
      auto it = known.find(n.inputs[0]);
      if (it != known.end() && !(kernel->dtypes & cpu::dtype_bit(it->second))) {
        return unimplemented(scope + n.describe(order[k]) + " at opset " + std::to_string(opset) + ": input 0 '" +
                             n.inputs[0] + "' has dtype " + dtype_name(it->second) + ", which kiln's CPU kernel for " +
                             n.op_type + " does not support (supported: " + cpu::dtype_mask_names(kernel->dtypes) +
                             ")");
      }
    }
    // Fast kernels the options disable never become candidates (the reference kernel, last, always stays).
    std::erase_if(candidates, [this](const cpu::KernelDef* k) {
      return k->backend == cpu::Backend::kFast &&
             std::find(options.disabled_kernels.begin(), options.disabled_kernels.end(), k->name) !=
                 options.disabled_kernels.end();
    });
    NodePlan np;
    np.node = &n;
    np.candidates = std::move(candidates);
    np.opset = opset;
    for (size_t i = 0; i < n.inputs.size() && i < 64; ++i) {
      if (!n.inputs[i].empty() && plan.initializers.count(n.inputs[i]) && !graph_inputs.count(n.inputs[i])) {
        np.constant_inputs |= uint64_t{1} << i;
      }
    }
    plan.nodes.push_back(std::move(np));
  }
  // Slots: the graph inputs, then every node output, in the order they are made.
  auto slot_for = [&plan](const std::string& name) {
    auto [it, fresh] = plan.slots.try_emplace(name, static_cast<int>(plan.slots.size()));
    return it->second;
  };
  for (const auto& v : g.inputs) plan.input_slots.push_back(slot_for(v.name));
  for (NodePlan& np : plan.nodes) {
    for (const auto& o : np.node->outputs) np.outputs.push_back(o.empty() ? -1 : slot_for(o));
  }
  for (NodePlan& np : plan.nodes) {
    for (const auto& i : np.node->inputs) {
      ValueRef ref;
      ref.name = &i;
      if (i.empty()) {
        ref.kind = ValueRef::Kind::kNone;
      } else if (auto it = plan.slots.find(i); it != plan.slots.end()) {
        ref.kind = ValueRef::Kind::kSlot;
        ref.slot = it->second;
      } else if (auto c = plan.initializers.find(i); c != plan.initializers.end()) {
        ref.kind = ValueRef::Kind::kConstant;
        ref.constant = &c->second;
      } else {
        ref.kind = ValueRef::Kind::kOuter;
      }
      np.inputs.push_back(ref);
    }
  }
  for (const auto& [name, k] : last_use) {
    auto it = plan.slots.find(name);
    if (!keep.count(name) && it != plan.slots.end()) plan.nodes[k].release.push_back(it->second);
  }
  plans[&g] = std::move(plan);
  return Status::ok();
}

StatusOr<std::vector<Value>> Session::Impl::run_graph(const ir::Graph& g, const Scope* outer,
                                                      const std::vector<Value>& inputs,
                                                      const std::vector<std::string>& wanted, RunMemory* memory,
                                                      const RunControl* control) const {
  const GraphPlan& plan = plans.at(&g);
  Scope scope;
  scope.plan = &plan;
  scope.parent = outer;
  scope.values.resize(plan.slots.size());
  scope.filled.assign(plan.slots.size(), 0);
  for (size_t i = 0; i < inputs.size() && i < g.inputs.size(); ++i) scope.set(plan.input_slots[i], inputs[i]);

  cpu::SubgraphRunner runner = [this, &scope, control](const ir::Graph& sub, const std::vector<Value>& sub_inputs) {
    std::vector<std::string> names;
    for (const auto& o : sub.outputs) names.push_back(o.name);
    return run_graph(sub, &scope, sub_inputs, names, nullptr, control);
  };
  for (size_t step = 0; step < plan.nodes.size(); ++step) {
    const NodePlan& np = plan.nodes[step];
    const ir::Node& n = *np.node;
    if (control) KILN_RETURN_IF_ERROR(control->check(n));
    if (memory) memory->set_step(step);
    std::vector<const Value*> ins;
    ins.reserve(np.inputs.size());
    for (const ValueRef& ref : np.inputs) {
      const Value* t = nullptr;
      switch (ref.kind) {
        case ValueRef::Kind::kNone: ins.push_back(nullptr); continue;
        case ValueRef::Kind::kSlot: t = scope.slot(ref.slot); break;
        case ValueRef::Kind::kConstant: t = ref.constant; break;
        case ValueRef::Kind::kOuter: t = outer ? outer->find(*ref.name) : nullptr; break;
      }
      if (!t) return internal_error(n.describe(0) + ": value '" + *ref.name + "' is not available");
      ins.push_back(t);
    }
    cpu::KernelContext ctx(n, np.opset, std::move(ins), n.outputs.size(), &runner);
    configure(ctx, np);
    if (memory) ctx.set_run_memory(memory, step);
    std::optional<RunGuard> guard;
    std::optional<AllocationGuard::Scope> guarded;
    if (control) {
      ctx.set_tensor_limit(control->tensor_limit, control->tensor_limit_what);
      if (control->run_limit) {
        guard.emplace(control->run_limit, control->held(scope));
        guarded.emplace(&*guard);
      }
    }
    const bool profiling = profiler.enabled();
    const auto start = profiling ? Profiler::Clock::now() : Profiler::Clock::time_point{};
    const cpu::KernelDef* kernel = select(np, ctx, control ? control->profile : -1);
    ctx.set_kernel_data(kernel->data);
    Status st;
    try {
      st = kernel->fn(ctx);
    } catch (const std::bad_alloc&) {
      st = resource_exhausted(ctx.error("out of memory").message());
    } catch (const std::exception& e) {
      st = internal_error(ctx.error(std::string("failed: ") + e.what()).message());
    }
    if (!st.is_ok()) {
      // Every error names the node: a kernel may pass on a status from a helper that does not know it.
      if (st.message().rfind("node ", 0) != 0) st = Status(st.code(), ctx.error(st.message()).message());
      return st;
    }
    {
      std::lock_guard<std::mutex> lock(np.selection->mu);
      np.selection->last = kernel;
      np.selection->last_detail = ctx.kernel_detail();
    }
    if (profiling) {
      std::string args = "\"op\":\"" + Profiler::json_escape(n.op_type) + "\",\"kernel\":\"" +
                         Profiler::json_escape(kernel->name) + "\"";
      if (!ctx.kernel_detail().empty()) {
        args += ",\"kernel_detail\":\"" + Profiler::json_escape(ctx.kernel_detail()) + "\"";
      }
      if (!ctx.outputs().empty() && ctx.outputs()[0].defined()) {
        args += ",\"output_shape\":\"" + dims_to_string(ctx.outputs()[0].dims()) + "\"";
      }
      profiler.add(n.name.empty() ? n.op_type : n.name, "node", start, Profiler::Clock::now(), std::move(args));
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (n.outputs[i].empty()) continue;
      Value v = ctx.take_output(i);
      if (!v.defined()) {
        return ctx.error("produced no value for output " + std::to_string(i) + " '" + n.outputs[i] + "'");
      }
      scope.set(np.outputs[i], std::move(v));
    }
    for (int slot : np.release) scope.release(slot);
  }
  std::vector<Value> out;
  out.reserve(wanted.size());
  for (const auto& name : wanted) {
    const Value* t = scope.find(name);
    if (!t) return internal_error("graph '" + g.name + "' did not produce output '" + name + "'");
    out.push_back(*t);
  }
  return out;
}

// The value kinds a graph input of `type` accepts: a tensor for tensor types, a sequence for sequence types,
// an optional (with or without a value) for optional types.
Status check_kind(const std::string& name, const ir::Type& type, const Value& v) {
  using K = ir::Type::Kind;
  const ir::Type* inner = &type;
  if (type.kind == K::kOptional) {
    if (v.is_none()) return Status::ok();
    if (type.value_type) inner = type.value_type.get();
  } else if (v.is_none()) {
    return invalid_argument("input '" + name + "' is an empty optional but the model expects " + type.to_string());
  }
  const bool ok = (inner->kind == K::kTensor && v.is_tensor()) || (inner->kind == K::kSequence && v.is_sequence()) ||
                  inner->kind == K::kNone;
  if (!ok) {
    return invalid_argument("input '" + name + "' is " + v.describe() + " but the model expects " + type.to_string());
  }
  if (inner->kind == K::kSequence && inner->value_type && inner->value_type->elem_type != DType::kUndefined) {
    for (size_t i = 0; i < v.items().size(); ++i) {
      if (v.items()[i].dtype() != inner->value_type->elem_type) {
        return invalid_argument("input '" + name + "': sequence element " + std::to_string(i) + " has dtype " +
                                dtype_name(v.items()[i].dtype()) + " but the model expects " + type.to_string());
      }
    }
  }
  return Status::ok();
}

Status Session::Impl::check_feed(const IoInfo& info, const Value& v) const {
  KILN_RETURN_IF_ERROR(check_kind(info.name, info.type, v));
  if (!v.is_tensor()) return Status::ok();
  const Tensor& t = v.tensor();
  const ir::Type& type =
      info.type.kind == ir::Type::Kind::kOptional && info.type.value_type ? *info.type.value_type : info.type;
  if (type.kind != ir::Type::Kind::kTensor) return Status::ok();
  if (type.elem_type != DType::kUndefined && t.dtype() != type.elem_type) {
    return invalid_argument("input '" + info.name + "' has dtype " + dtype_name(t.dtype()) + " but the model expects " +
                            dtype_name(type.elem_type));
  }
  if (!type.shape) return Status::ok();
  const Shape& s = *type.shape;
  if (s.rank() != t.rank()) {
    return invalid_argument("input '" + info.name + "' has shape " + dims_to_string(t.dims()) + " (rank " +
                            std::to_string(t.rank()) + ") but the model expects rank " + std::to_string(s.rank()) +
                            ": " + s.to_string());
  }
  for (size_t i = 0; i < s.rank(); ++i) {
    if (s[i].is_known() && s[i].value() != t.dims()[i]) {
      return invalid_argument("input '" + info.name + "' has shape " + dims_to_string(t.dims()) + " but dimension " +
                              std::to_string(i) + " must be " + std::to_string(s[i].value()) + " (model shape " +
                              s.to_string() + ")");
    }
  }
  return Status::ok();
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Status Session::Impl::init(bool optimize) {
  std::string env_error;
  std::optional<cpu::Isa> cap = cpu::isa_cap_from_env(&env_error);
  if (!env_error.empty()) return invalid_argument(env_error);
  if (!options.max_isa.empty()) {
    cap = cpu::parse_isa(options.max_isa);
    if (!cap) return invalid_argument("max_isa is '" + options.max_isa + "'; expected scalar, avx2 or avx512");
  }
  isa = cpu::effective_isa(cap.value_or(cpu::Isa::kAvx512));  // cpu::default_isa() without max_isa
  cpu::cap_library_isa(isa);
  if (!options.precision.empty()) {
    const std::optional<cpu::Precision> p = cpu::parse_precision(options.precision);
    if (!p) return invalid_argument("precision is '" + options.precision + "'; expected fp32 or bf16");
    precision = *p;
  }
  if (precision != cpu::effective_precision(precision, isa)) {
    static std::once_flag said;
    std::call_once(said, [this] {
      std::fprintf(stderr, "kiln: precision bf16 runs in fp32 here: %s\n",
                   cpu::has_bf16() ? "the session may not use AVX-512 (KILN_MAX_ISA or max_isa)"
                                   : "this CPU has no bfloat16 instructions (AVX512-BF16 or AMX-BF16)");
    });
  }
  if (!options.custom_op_libraries.empty()) {
    KILN_ASSIGN_OR_RETURN(custom_ops, CustomOps::load(options.custom_op_libraries));
  }
  if (optimize) {
    opt::Options passes;
    passes.bf16 = cpu::effective_precision(precision, isa) == cpu::Precision::kBf16;
    auto report = opt::optimize(model, options.optimization_level, passes);
    if (!report.is_ok()) return report.status();
  }
  const ir::Graph& g = model.graph;
  for (const auto& v : g.inputs) {
    if (!g.find_initializer(v.name)) inputs.push_back({v.name, v.type});
  }
  for (const auto& v : g.outputs) outputs.push_back({v.name, v.type});
  KILN_RETURN_IF_ERROR(plan_graph(g, "", {}));
  const auto& top = plans.at(&g).nodes;
  for (size_t step = 0; step < top.size(); ++step) {
    for (size_t i = 0; i < top[step].node->outputs.size(); ++i) {
      const std::string& name = top[step].node->outputs[i];
      if (!name.empty() &&
          std::any_of(g.outputs.begin(), g.outputs.end(), [&](const ir::ValueInfo& v) { return v.name == name; })) {
        producers[name] = {step, i};
      }
    }
  }
  if (options.intra_op_threads < 0) {
    return invalid_argument("intra_op_threads is " + std::to_string(options.intra_op_threads) +
                            "; expected 0 (one per physical core) or a positive count");
  }
  pool = std::make_unique<ThreadPool>(options.intra_op_threads);
  profiler.set_enabled(options.enable_profiling);
  tuner = std::make_unique<Tuner>(options.tune_budget_ms);
  if (!options.timing_cache.empty()) KILN_RETURN_IF_ERROR(tuner->load_cache(options.timing_cache));
  return Status::ok();
}

const std::vector<IoInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<IoInfo>& Session::outputs() const { return impl_->outputs; }
const ir::Model& Session::model() const { return impl_->model; }
const PlanInfo* Session::plan_info() const { return impl_->plan.get(); }

double Session::tune_ms() const { return impl_->tuner->spent_ms(); }

std::string Session::precision() const {
  return cpu::precision_name(cpu::effective_precision(impl_->precision, impl_->isa));
}
int64_t Session::tuned_configs() const { return impl_->tuner->timed(); }
int64_t Session::timing_cache_hits() const { return impl_->tuner->cache_hits(); }
Status Session::save_timing_cache(const std::string& path) const { return impl_->tuner->save_cache(path); }

std::vector<KernelChoice> Session::kernel_choices() const {
  std::vector<KernelChoice> out;
  impl_->collect_choices(impl_->model.graph, out);
  return out;
}

StatusOr<std::vector<Value>> Session::run_values(const NamedValues& feeds, const std::vector<std::string>& names,
                                                 const RunOptions* options) const {
  std::vector<Value> outputs;
  KILN_RETURN_IF_ERROR(run_into(feeds, names, outputs, options));
  return outputs;
}

Status Session::run_into(const NamedValues& caller_feeds, const std::vector<std::string>& names,
                         std::vector<Value>& outputs, const RunOptions* options) const {
  const ir::Graph& g = impl_->model.graph;
  // Active LoRA adapters feed their parameters, after the caller's own feeds.
  NamedValues with_adapters;
  const bool adapters = options && !options->active_adapters().empty();
  if (adapters) {
    KILN_ASSIGN_OR_RETURN(with_adapters, feeds_with_adapters(g, caller_feeds, *options));
  }
  const NamedValues& feeds = adapters ? with_adapters : caller_feeds;
  std::vector<Value> inputs(g.inputs.size());
  std::vector<bool> given(g.inputs.size(), false);
  for (const auto& [name, value] : feeds) {
    size_t k = 0;
    while (k < g.inputs.size() && g.inputs[k].name != name) ++k;
    if (k == g.inputs.size()) {
      std::string expected;
      for (const auto& i : impl_->inputs) expected += (expected.empty() ? "" : ", ") + ("'" + i.name + "'");
      return invalid_argument("'" + name + "' is not an input of the model (inputs: " + expected + ")");
    }
    KILN_RETURN_IF_ERROR(impl_->check_feed({g.inputs[k].name, g.inputs[k].type}, value));
    inputs[k] = value;
    given[k] = true;
  }
  // Inputs that have an initializer keep it unless fed; every other input is required.
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    if (given[k]) continue;
    const auto* init = g.find_initializer(g.inputs[k].name);
    if (!init) {
      return invalid_argument("input '" + g.inputs[k].name + "' (" + g.inputs[k].type.to_string() + ") is missing");
    }
    inputs[k] = init->tensor;
  }
  std::vector<std::string> wanted = names;
  if (wanted.empty()) {
    for (const auto& o : g.outputs) wanted.push_back(o.name);
  }
  for (const auto& w : wanted) {
    if (std::none_of(g.outputs.begin(), g.outputs.end(), [&](const ir::ValueInfo& v) { return v.name == w; })) {
      return invalid_argument("'" + w + "' is not an output of the model");
    }
  }
  const auto start = Profiler::Clock::now();
  // The memory plan is keyed by the input shapes (a sequence or optional input keys by its kind alone).
  MemoryPlanner::Signature signature;
  for (const auto& v : inputs) signature.push_back(v.is_tensor() ? v.tensor().dims() : std::vector<int64_t>{-1});
  RunControl control;
  control.options = options;
  KILN_ASSIGN_OR_RETURN(control.profile, impl_->match_profile(inputs));
  if (options && options->timeout_ms > 0) {
    control.deadline = start + std::chrono::microseconds(static_cast<int64_t>(options->timeout_ms * 1000.0));
  }
  const size_t machine = physical_memory_bytes();
  control.tensor_limit = machine;
  if (impl_->options.memory_limit_mb > 0) {
    control.run_limit = static_cast<size_t>(impl_->options.memory_limit_mb) << 20;
    if (control.run_limit < machine) {
      control.tensor_limit = control.run_limit;
      control.tensor_limit_what =
          "the run's memory limit of " + std::to_string(impl_->options.memory_limit_mb) + " MiB (memory_limit_mb)";
    }
    for (const auto& v : inputs) {
      if (v.is_tensor() && v.tensor().buffer()) control.feeds.insert(v.tensor().buffer());
    }
  }
  // With a memory limit every tensor is allocated on its own, so that each allocation is checked when it is made.
  RunMemory memory(&impl_->memory, std::move(signature));
  // Preallocated outputs: the node that makes one writes into the caller's tensor when it asks for exactly its
  // dtype and shape (unless the tensor overlaps a feed the run still reads); otherwise it is copied in at the end.
  if (!outputs.empty() && outputs.size() != wanted.size()) {
    return invalid_argument(std::to_string(outputs.size()) + " preallocated outputs for " +
                            std::to_string(wanted.size()) + " requested outputs");
  }
  outputs.resize(wanted.size());
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (!outputs[i].is_tensor()) continue;
    const Tensor& dest = outputs[i].tensor();
    auto it = impl_->producers.find(wanted[i]);
    const bool aliased = std::any_of(inputs.begin(), inputs.end(),
                                     [&](const Value& v) { return v.is_tensor() && overlaps(v.tensor(), dest); });
    if (it != impl_->producers.end() && !aliased && dest.dtype() != DType::kString) {
      memory.bind(it->second.first, it->second.second, dest);
    }
  }
  auto result = impl_->run_graph(g, nullptr, inputs, wanted, control.run_limit ? nullptr : &memory, &control);
  if (!result.is_ok()) return result.status();
  // Bound outputs first, so that one left in the arena (a view) is copied once, into the caller's tensor.
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (!outputs[i].is_tensor()) continue;
    KILN_RETURN_IF_ERROR(write_bound(wanted[i], (*result)[i], outputs[i].mutable_tensor()));
    (*result)[i] = outputs[i];
  }
  KILN_RETURN_IF_ERROR(memory.finish(*result));
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (!outputs[i].is_tensor()) outputs[i] = std::move((*result)[i]);
  }
  if (impl_->profiler.enabled()) impl_->profiler.add("model_run", "session", start, Profiler::Clock::now(), "");
  return Status::ok();
}

Status Session::write_profile(const std::string& path) const {
  if (!impl_->options.enable_profiling) {
    return invalid_argument("profiling is off: create the session with SessionOptions::enable_profiling");
  }
  return impl_->profiler.write(path);
}

StatusOr<std::string> Session::end_profiling() const {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S", &tm);
  const std::string path = impl_->options.profile_file_prefix + "_" + stamp + ".json";
  KILN_RETURN_IF_ERROR(write_profile(path));
  impl_->profiler.set_enabled(false);
  return path;
}

StatusOr<std::vector<Tensor>> Session::run(const NamedTensors& feeds, const std::vector<std::string>& names,
                                           const RunOptions* options) const {
  NamedValues values;
  values.reserve(feeds.size());
  for (const auto& [name, t] : feeds) values.emplace_back(name, Value(t));
  KILN_ASSIGN_OR_RETURN(auto outs, run_values(values, names, options));
  std::vector<Tensor> tensors;
  tensors.reserve(outs.size());
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!outs[i].is_tensor()) {
      const std::string name = names.empty() ? impl_->outputs[i].name : names[i];
      return invalid_argument("output '" + name + "' is " + outs[i].describe() +
                              ", not a tensor: use run_values() for sequence and optional outputs");
    }
    tensors.push_back(outs[i].tensor());
  }
  return tensors;
}

}  // namespace kiln
