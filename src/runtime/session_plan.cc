// Sessions from engine plans (.kplan): read the file (runtime/plan_read.cc), check that this CPU can run it, and pin
// the kernels the build chose. Part of kiln_engine: no protobuf, no libonnx, no optimizer run.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#include "kernels/isa.h"
#include "kernels/prepared.h"
#include "kiln/core/file.h"
#include "kiln/core/shape.h"
#include "runtime/session_impl.h"

namespace kiln {
namespace {

// Whether `name` is one of the features CpuFeatures::flags() lists as present.
bool has_feature(const cpu::CpuFeatures& f, const std::string& name) {
  const std::string flags = " " + f.flags() + " ";
  return !name.empty() && flags.find(" " + name + " ") != std::string::npos;
}

// Every initializer of `g` and its subgraphs by the address of its data (first name wins).
void initializers_by_address(const ir::Graph& g, std::unordered_map<const void*, std::string>& by_address,
                             std::unordered_map<std::string, const void*>& by_name) {
  for (const auto& init : g.initializers) {
    if (init.tensor.nbytes() == 0 || init.tensor.dtype() == DType::kString) continue;
    by_address.emplace(init.tensor.raw_data(), init.name);
    by_name.emplace(init.name, init.tensor.raw_data());
  }
  for (const auto& n : g.nodes) {
    std::vector<const ir::Graph*> subs;
    ir::Graph::collect_subgraphs(n, subs);
    for (const auto* sub : subs) initializers_by_address(*sub, by_address, by_name);
  }
}

// Calls fn(i, graph, np) for every node of the model that has a plan, in plan::for_each_node order (i: its place in
// that order, the index of its plan::NodeKernels; `graph`: the graph it belongs to). Returns how many nodes the order
// has.
template <class Plans, class Fn>
size_t for_each_node_plan(Plans& plans, const ir::Graph& top, Fn fn) {
  using NodePlanPtr = decltype(&plans.begin()->second.nodes.front());  // const or not, as `plans` is
  std::unordered_map<const ir::Node*, std::pair<const ir::Graph*, NodePlanPtr>> by_node;
  for (auto& [graph, gp] : plans) {
    for (auto& np : gp.nodes) by_node[np.node] = {graph, &np};
  }
  size_t index = 0;
  plan::for_each_node(top, [&](const ir::Node& n) {
    const size_t i = index++;
    auto it = by_node.find(&n);
    if (it != by_node.end()) fn(i, *it->second.first, *it->second.second);
  });
  return index;
}

// The plan's CPU features against this machine's, then its instruction set against the session's cap.
Status check_cpu(const PlanInfo& info, cpu::Isa session_isa, const std::string& what) {
  const cpu::CpuFeatures& f = cpu::cpu_features();
  for (const auto& feature : info.cpu_features) {
    if (!has_feature(f, feature)) {
      return unimplemented(what + ": the plan needs the CPU feature " + feature + ", which this CPU (" + f.model +
                           ") lacks (it has: " + f.flags() + "). It was built for " + info.isa + " on " +
                           info.cpu_name + ": rebuild it on this machine, or build it with kiln build --portable");
    }
  }
  const std::optional<cpu::Isa> plan_isa = cpu::parse_isa(info.isa);
  if (!plan_isa) return invalid_model(what + ": the plan's instruction set is '" + info.isa + "'");
  if (static_cast<int>(session_isa) < static_cast<int>(*plan_isa)) {
    return unimplemented(what + ": the plan's kernels were chosen for " + info.isa + ", but this session may use " +
                         cpu::isa_name(session_isa) +
                         " at most (KILN_MAX_ISA or SessionOptions::max_isa): rebuild the plan under the same cap, "
                         "or with kiln build --portable");
  }
  return Status::ok();
}

StatusOr<std::unique_ptr<Session>> load(const std::shared_ptr<Buffer>& file, const std::string& what,
                                        const SessionOptions& options) {
  KILN_ASSIGN_OR_RETURN(plan::Contents contents, plan::read(file, what));
  auto impl = std::make_unique<Session::Impl>();
  impl->model = std::move(contents.model);
  impl->options = options;
  impl->options.precision = contents.info.precision;  // the plan's kernels were chosen for it
  impl->plan = std::make_unique<PlanInfo>(std::move(contents.info));
  KILN_RETURN_IF_ERROR(impl->init(/*optimize=*/false).with_context(what));
  KILN_RETURN_IF_ERROR(check_cpu(*impl->plan, impl->isa, what));
  KILN_RETURN_IF_ERROR(impl->pin_kernels(contents.kernels).with_context(what));
  KILN_RETURN_IF_ERROR(impl->load_prepared(contents.prepared, file).with_context(what));
  impl->load_memory(contents.memory);
  impl->prepare_first_run(contents.kernels);
  return Session::from_impl(std::move(impl));
}

}  // namespace

StatusOr<std::unique_ptr<Session>> Session::create_from_plan(const std::string& path, const SessionOptions& options) {
  KILN_ASSIGN_OR_RETURN(auto file, map_file(path, "plan"));
  return load(file, "plan '" + path + "'", options);
}

StatusOr<std::unique_ptr<Session>> Session::create_from_plan_bytes(const void* data, size_t size,
                                                                   const SessionOptions& options) {
  KILN_ASSIGN_OR_RETURN(auto file, Buffer::allocate(size));
  if (size) std::memcpy(file->data(), data, size);
  return load(file, "plan bytes", options);
}

std::unique_ptr<Session> Session::from_impl(std::unique_ptr<Impl> impl) {
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

Status Session::Impl::pin_kernels(const std::vector<plan::NodeKernels>& kernels) {
  Status status;
  const size_t nodes = for_each_node_plan(plans, model.graph, [&](size_t i, const ir::Graph&, NodePlan& np) {
    if (!status.is_ok() || i >= kernels.size() || kernels[i].kernels.empty()) return;
    const ir::Node& n = *np.node;
    for (size_t p = 0; p < kernels[i].kernels.size(); ++p) {
      const std::string& name = kernels[i].kernels[p];
      const cpu::KernelDef* chosen = nullptr;
      if (!name.empty() && std::find(options.disabled_kernels.begin(), options.disabled_kernels.end(), name) ==
                               options.disabled_kernels.end()) {
        for (const cpu::KernelDef* k : np.candidates) {
          if (k->name == name) chosen = k;
        }
        if (!chosen) {
          std::string have;
          for (const cpu::KernelDef* k : np.candidates) have += (have.empty() ? "" : ", ") + std::string(k->name);
          status = invalid_model(n.describe(i) + ": the plan's kernel '" + name +
                                 "' is not one of this kiln's kernels "
                                 "for " +
                                 n.op_type + " (" + have + ")");
          return;
        }
      }
      np.planned.push_back(chosen);
      np.planned_details.push_back(chosen && p < kernels[i].details.size() ? kernels[i].details[p] : "");
    }
  });
  if (!status.is_ok()) return status;
  if (nodes != kernels.size()) {
    return invalid_model("the plan records kernels for " + std::to_string(kernels.size()) + " nodes; its graph has " +
                         std::to_string(nodes));
  }
  return Status::ok();
}

std::vector<plan::Prepared> Session::Impl::export_prepared() const {
  std::unordered_map<const void*, std::string> by_address;
  std::unordered_map<std::string, const void*> by_name;
  initializers_by_address(model.graph, by_address, by_name);
  std::vector<plan::Prepared> out;
  for (const auto& [key, value] : shared_cache->snapshot()) {
    if (key.fields.empty()) continue;
    auto name = by_address.find(reinterpret_cast<const void*>(static_cast<intptr_t>(key.fields[0])));
    if (name == by_address.end()) continue;  // prepared from a value that is not an initializer
    const std::optional<cpu::ExportedWeights> e = cpu::export_prepared(key, value);
    if (!e) continue;
    plan::Prepared p{static_cast<int64_t>(e->entry), name->second, e->fields, e->meta, {}};
    for (const auto& a : e->arrays) p.arrays.emplace_back(a.data, a.count);
    out.push_back(std::move(p));
  }
  return out;
}

Status Session::Impl::load_prepared(const std::vector<plan::Prepared>& prepared, const std::shared_ptr<void>& owner) {
  std::unordered_map<const void*, std::string> by_address;
  std::unordered_map<std::string, const void*> by_name;
  initializers_by_address(model.graph, by_address, by_name);
  for (const plan::Prepared& p : prepared) {
    auto weight = by_name.find(p.weight);
    if (weight == by_name.end()) {
      return invalid_model("the plan has weights prepared from '" + p.weight + "', which is not an initializer");
    }
    std::vector<cpu::PreparedArray> arrays;
    for (const auto& [data, count] : p.arrays) arrays.push_back({data, count});
    auto value = cpu::import_prepared(static_cast<cpu::CacheEntry>(p.kind), p.fields, p.meta, arrays, owner);
    if (!value.is_ok()) return invalid_model("weights prepared from '" + p.weight + "': " + value.status().message());
    cpu::CacheKey key{static_cast<cpu::CacheEntry>(p.kind),
                      {static_cast<int64_t>(reinterpret_cast<intptr_t>(weight->second))}};
    key.fields.insert(key.fields.end(), p.fields.begin(), p.fields.end());
    shared_cache->put(std::move(key), std::move(value).value());
  }
  return Status::ok();
}

std::vector<plan::MemoryPlanEntry> Session::Impl::export_memory() const {
  std::vector<plan::MemoryPlanEntry> out;
  for (const auto& [signature, pattern] : memory.patterns()) {
    plan::MemoryPlanEntry e;
    e.signature = signature;
    e.total = pattern->total;
    for (const auto& [key, block] : pattern->blocks) e.blocks.push_back({key, block.size, block.offset, block.index});
    std::sort(e.blocks.begin(), e.blocks.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
    out.push_back(std::move(e));
  }
  return out;
}

void Session::Impl::load_memory(const std::vector<plan::MemoryPlanEntry>& plans) const {
  for (const auto& e : plans) {
    auto pattern = std::make_shared<MemoryPattern>();
    pattern->total = e.total;
    for (const auto& b : e.blocks) pattern->blocks[b.key] = {b.size, b.offset, b.index};
    memory.store(e.signature, std::move(pattern));
  }
}

namespace {

// The inputs a node's recorded shapes (plan::NodeKernels::input_shapes, KernelChoice::signature's layout) describe:
// its constants where they match, tensors without data for the rest. False when the record does not fit the node.
bool inputs_from_shapes(const NodePlan& np, const std::vector<int64_t>& shapes, std::vector<Value>& holders,
                        std::vector<const Value*>& inputs) {
  constexpr int64_t kMaxElements = int64_t{1} << 32;  // a tensor the recorded shapes may describe
  holders.reserve(np.inputs.size());                  // `inputs` points into it
  size_t at = 0;
  for (const ValueRef& ref : np.inputs) {
    if (at >= shapes.size()) return false;
    const int64_t code = shapes[at++];
    if (code == -2 && ref.kind == ValueRef::Kind::kNone) {
      inputs.push_back(nullptr);
      continue;
    }
    if (code < 0 || code > INT32_MAX || !dtype_is_valid(static_cast<int32_t>(code)) || at >= shapes.size()) {
      return false;
    }
    if (ref.kind != ValueRef::Kind::kSlot && ref.kind != ValueRef::Kind::kConstant) return false;
    const int64_t rank = shapes[at++];
    if (rank < 0 || rank > 16 || static_cast<size_t>(rank) > shapes.size() - at) return false;
    std::vector<int64_t> dims(shapes.begin() + static_cast<long>(at), shapes.begin() + static_cast<long>(at + rank));
    at += static_cast<size_t>(rank);
    const std::optional<int64_t> elements = checked_num_elements(dims);
    if (!elements || *elements > kMaxElements) return false;
    for (int64_t d : dims) {
      if (d > kMaxElements) return false;  // even beside a zero
    }
    const auto dtype = static_cast<DType>(code);
    if (ref.kind == ValueRef::Kind::kConstant) {
      const Value* c = ref.constant;
      if (!c || !c->is_tensor() || c->tensor().dtype() != dtype || c->tensor().dims() != dims) return false;
      inputs.push_back(c);
    } else {
      holders.emplace_back(Tensor::borrow(dtype, std::move(dims), nullptr));
      inputs.push_back(&holders.back());
    }
  }
  return at == shapes.size();
}

}  // namespace

void Session::Impl::prepare_first_run(const std::vector<plan::NodeKernels>& kernels) const {
  struct Task {
    const NodePlan* np;
    const cpu::KernelDef* kernel;
    const std::vector<int64_t>* shapes;
  };
  std::vector<Task> tasks;
  for_each_node_plan(plans, model.graph, [&](size_t i, const ir::Graph& graph, const NodePlan& np) {
    if (&graph != &model.graph || i >= kernels.size() || options.reference_kernels) return;
    for (size_t p = 0; p < np.planned.size() && p < kernels[i].input_shapes.size(); ++p) {
      const cpu::KernelDef* k = np.planned[p];
      if (k && k->prepares && !kernels[i].input_shapes[p].empty())
        tasks.push_back({&np, k, &kernels[i].input_shapes[p]});
    }
  });
  auto prepare = [this](const Task& t) {
    std::vector<Value> holders;
    std::vector<const Value*> inputs;
    if (!inputs_from_shapes(*t.np, *t.shapes, holders, inputs)) return;
    const ir::Node& n = *t.np->node;
    cpu::KernelContext ctx(n, t.np->opset, std::move(inputs), n.outputs.size());
    configure(ctx, *t.np);
    ctx.set_kernel_data(t.kernel->data);
    ctx.set_preparing(true);
    try {
      if (t.kernel->supports(ctx)) (void)t.kernel->fn(ctx);
    } catch (const std::exception&) {
      // Left to the first run, which reports it.
    }
  };
  // The arena of the largest memory plan, its pages faulted in (zero-filled by the kernel, 2 MiB at a time on huge
  // pages) in chunks beside the kernels' tasks, then left in the planner's pool for the first run to take. Not under
  // a memory limit, whose runs allocate each tensor on its own.
  size_t total = 0;
  for (const auto& [signature, pattern] : memory.patterns()) total = std::max(total, pattern->total);
  size_t arena_size = 0;
  uint8_t* arena = total > 0 && options.memory_limit_mb <= 0 ? memory.acquire(total, arena_size) : nullptr;
  constexpr size_t kChunk = size_t{2} << 20, kPage = 4096;
  const size_t chunks = arena ? (arena_size + kChunk - 1) / kChunk : 0;
  const auto n = static_cast<int64_t>(tasks.size() + chunks);
  auto run = [&](int64_t i) {
    const auto k = static_cast<size_t>(i);
    if (k < tasks.size()) return prepare(tasks[k]);
    // A byte of every page the chunk touches (the arena need not start on a page).
    const auto begin = reinterpret_cast<uintptr_t>(arena) + (k - tasks.size()) * kChunk;
    const uintptr_t end = begin + std::min(kChunk, arena_size - (k - tasks.size()) * kChunk);
    *reinterpret_cast<volatile uint8_t*>(begin) = 0;
    for (uintptr_t page = (begin / kPage + 1) * kPage; page < end; page += kPage) {
      *reinterpret_cast<volatile uint8_t*>(page) = 0;
    }
  };
  if (pool && n > 1) {
    // Each thread takes the next task as it comes free (the tasks differ in cost: oneDNN's first primitive sets up
    // its JIT and takes about 1 ms).
    std::atomic<int64_t> next{0};
    pool->parallel_for(pool->num_threads(), 1, [&](int64_t, int64_t) {
      for (int64_t i = next++; i < n; i = next++) run(i);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) run(i);
  }
  if (arena) memory.release(arena, arena_size);
}

StatusOr<int> Session::Impl::match_profile(const std::vector<Value>& inputs) const {
  if (!plan || plan->profiles.empty()) return -1;
  const ir::Graph& g = model.graph;
  std::string why_not;
  for (size_t p = 0; p < plan->profiles.size(); ++p) {
    const ShapeProfile& profile = plan->profiles[p];
    std::string problem;
    for (const auto& in : profile.inputs) {
      size_t k = 0;
      while (k < g.inputs.size() && g.inputs[k].name != in.name) ++k;
      if (k == g.inputs.size() || k >= inputs.size() || !inputs[k].is_tensor()) continue;
      const auto& dims = inputs[k].tensor().dims();
      const std::string range = " (min " + dims_to_string(in.min) + ", max " + dims_to_string(in.max) + ")";
      if (dims.size() != in.min.size()) {
        problem = "input '" + in.name + "' has shape " + dims_to_string(dims) + ", of rank " +
                  std::to_string(dims.size()) + "; profile '" + profile.name + "' has rank " +
                  std::to_string(in.min.size()) + range;
        break;
      }
      for (size_t d = 0; d < dims.size() && problem.empty(); ++d) {
        if (dims[d] < in.min[d] || dims[d] > in.max[d]) {
          problem = "input '" + in.name + "' dimension " + std::to_string(d) + " is " + std::to_string(dims[d]) +
                    ", outside profile '" + profile.name + "''s range " + std::to_string(in.min[d]) + " to " +
                    std::to_string(in.max[d]) + range;
        }
      }
      if (!problem.empty()) break;
    }
    if (problem.empty()) return static_cast<int>(p);
    why_not += (why_not.empty() ? "" : "; ") + problem;
  }
  return invalid_argument(
      (plan->profiles.size() == 1
           ? why_not
           : "the inputs fit none of the plan's " + std::to_string(plan->profiles.size()) + " profiles: " + why_not) +
      ". A plan runs the shapes its profiles cover: rebuild it with a wider --profile");
}

}  // namespace kiln
