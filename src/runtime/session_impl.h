// Session::Impl and the plan it runs: shared by the session's files (session.cc: running; session_create.cc:
// creation; session_plan.cc: loading a .kplan). Nothing here includes protobuf or libonnx.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kernels/kernel.h"
#include "kiln/core/allocator.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"
#include "runtime/custom_op_kernel.h"
#include "runtime/memory_plan.h"
#include "runtime/plan_format.h"
#include "runtime/profiler.h"
#include "runtime/thread_pool.h"
#include "runtime/tuner.h"

namespace kiln {
namespace detail {

// The kernel a node runs, chosen per shape signature of its inputs (dtypes and dims: shapes may be dynamic), and
// what ran last (Session::kernel_choices). Runs may be concurrent: everything here is behind the lock.
struct KernelSelection {
  std::mutex mu;
  std::vector<std::pair<std::vector<int64_t>, const cpu::KernelDef*>> by_signature;  // the newest last
  size_t current = 0;  // the entry of by_signature the latest run matched
  const cpu::KernelDef* last = nullptr;
  std::string last_detail;
  std::vector<TacticTiming> last_timings;  // of the newest signature that was timed
};

// Where a node's input comes from, resolved when its graph is planned: a slot of the running graph (a graph input or a
// node output), an initializer, a value of an enclosing graph (a subgraph's outer reference, looked up by name), or
// nothing (an omitted optional input).
struct ValueRef {
  enum class Kind { kNone, kSlot, kConstant, kOuter };
  Kind kind = Kind::kNone;
  int slot = -1;
  const Value* constant = nullptr;
  const std::string* name = nullptr;  // the value's name (in the model's node)
};

struct NodePlan {
  const ir::Node* node = nullptr;
  std::vector<ValueRef> inputs;
  std::vector<int> outputs;  // each output's slot; -1 for an omitted one
  // The kernels that may run it: its fast kernels in order of preference, then its reference kernel.
  std::vector<const cpu::KernelDef*> candidates;
  int64_t opset = 0;
  std::vector<int> release;      // slots whose last reader is this node (freed after it runs)
  uint64_t constant_inputs = 0;  // bit i: input i is an initializer no feed can replace
  std::unique_ptr<cpu::KernelCache> cache = std::make_unique<cpu::KernelCache>();
  std::unique_ptr<KernelSelection> selection = std::make_unique<KernelSelection>();
  // A plan's kernel for this node per shape profile (null: none recorded; the session chooses as for ONNX).
  std::vector<const cpu::KernelDef*> planned;
  std::vector<std::string> planned_details;  // the variant each reported at build time
};

// A graph's values are numbered when it is planned (docs/architecture.md: names are interned): each graph input and
// node output has a slot, and a run keeps its values in an array of them instead of a map from names.
struct GraphPlan {
  const ir::Graph* graph = nullptr;
  std::vector<NodePlan> nodes;
  std::unordered_map<std::string, Value> initializers;
  std::unordered_map<std::string, int> slots;  // name -> slot
  std::vector<int> input_slots;                // each graph input's slot
};

// The values of one run of a graph: its slots, then (by name) its initializers and its enclosing graphs' values.
struct Scope {
  const GraphPlan* plan = nullptr;
  std::vector<Value> values;    // by slot
  std::vector<uint8_t> filled;  // by slot: the value is set (a graph input may be an undefined Value)
  const Scope* parent = nullptr;

  void set(int slot, Value v) {
    values[static_cast<size_t>(slot)] = std::move(v);
    filled[static_cast<size_t>(slot)] = 1;
  }
  void release(int slot) {
    values[static_cast<size_t>(slot)] = Value();
    filled[static_cast<size_t>(slot)] = 0;
  }
  const Value* slot(int i) const { return filled[static_cast<size_t>(i)] ? &values[static_cast<size_t>(i)] : nullptr; }
  // By name, as an outer reference or a wanted output: this graph's value, initializer, then the enclosing graphs'.
  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->plan->slots.find(name);
      if (it != s->plan->slots.end()) {
        if (const Value* v = s->slot(it->second)) return v;
      }
      auto c = s->plan->initializers.find(name);
      if (c != s->plan->initializers.end()) return &c->second;
    }
    return nullptr;
  }
};

// One run's stop conditions and memory limit, shared by its subgraph runs.
struct RunControl {
  const RunOptions* options = nullptr;
  int profile = -1;  // the plan's shape profile the run's inputs fall in (-1: none)
  std::optional<Profiler::Clock::time_point> deadline;
  size_t run_limit = 0;     // bytes (0: none)
  size_t tensor_limit = 0;  // bytes
  std::string tensor_limit_what;
  std::unordered_set<const Buffer*> feeds;  // the caller's buffers: not the run's to count

  // Cancelled before node `n` when the terminate flag is set or the deadline has passed.
  Status check(const ir::Node& n) const {
    auto where = [&n] {
      return " before node " + (n.name.empty() ? "(" + n.op_type + ")" : "'" + n.name + "' (" + n.op_type + ")");
    };
    if (options && options->terminate()) return cancelled("run terminated (RunOptions terminate flag)" + where());
    if (deadline && Profiler::Clock::now() >= *deadline) {
      char ms[32];
      std::snprintf(ms, sizeof ms, "%g", options->timeout_ms);
      return cancelled(std::string("run timed out after ") + ms + " ms (RunOptions timeout_ms)" + where());
    }
    return Status::ok();
  }

  // Bytes held by the distinct buffers of the run's own live values in `scope` and the scopes around it.
  size_t held(const Scope& scope) const {
    std::unordered_set<const Buffer*> seen;
    size_t bytes = 0;
    auto count = [&](const Tensor& t) {
      const Buffer* b = t.buffer();
      if (b && !feeds.count(b) && seen.insert(b).second) bytes += b->size();
    };
    for (const Scope* s = &scope; s; s = s->parent) {
      for (const Value& v : s->values) {
        if (v.is_tensor()) count(v.tensor());
        if (v.is_sequence()) {
          for (const Tensor& t : v.items()) count(t);
        }
      }
    }
    return bytes;
  }
};

}  // namespace detail

using detail::GraphPlan;
using detail::KernelSelection;
using detail::NodePlan;
using detail::RunControl;
using detail::Scope;
using detail::ValueRef;

struct Session::Impl {
  ir::Model model;
  SessionOptions options;
  cpu::Isa isa = cpu::Isa::kScalar;                  // what the fast kernels may use (the CPU's best, capped)
  cpu::Precision precision = cpu::Precision::kFp32;  // SessionOptions::precision as asked
  std::vector<IoInfo> inputs;
  std::vector<IoInfo> outputs;
  std::map<const ir::Graph*, GraphPlan> plans;
  std::unique_ptr<ThreadPool> pool;
  mutable Profiler profiler;
  mutable MemoryPlanner memory;
  std::unique_ptr<cpu::KernelCache> shared_cache = std::make_unique<cpu::KernelCache>(0);
  std::unique_ptr<Tuner> tuner;
  // The custom ops of SessionOptions::custom_op_libraries, and a kernel for each op a node uses.
  CustomOps custom_ops;
  std::map<const kiln_custom_op*, std::unique_ptr<CustomKernel>> custom_kernels;
  // Graph outputs made by a top-level node: (step, output index), where a preallocated output can be written.
  std::unordered_map<std::string, std::pair<size_t, size_t>> producers;
  // Set for a session loaded from a plan: its build record and shape profiles.
  std::unique_ptr<PlanInfo> plan;

  // The rest of creation once `model` and `options` are set: checks the options, optimizes (unless the model comes
  // from a plan, which is optimized already), plans every graph, starts the thread pool.
  Status init(bool optimize);
  // For a plan: pins each node's recorded kernel per profile (plan::NodeKernels in plan::for_each_node order).
  Status pin_kernels(const std::vector<plan::NodeKernels>& kernels);
  // For a plan: puts the weights its kernels prepared at build time into the shared cache, keyed by the address of
  // the (mapped) initializer each was prepared from; `owner` keeps the arrays' memory alive.
  Status load_prepared(const std::vector<plan::Prepared>& prepared, const std::shared_ptr<void>& owner);
  // The weights the fast kernels prepared so far, in a plan's form (those kiln can export).
  std::vector<plan::Prepared> export_prepared() const;
  // The memory plans learned so far, and a plan's put in place (the first run of their shapes then uses its arena).
  std::vector<plan::MemoryPlanEntry> export_memory() const;
  void load_memory(const std::vector<plan::MemoryPlanEntry>& plans) const;
  // For a plan, after load_memory: makes what a first run would otherwise make, spread over the session's threads:
  // the one-time state of the pinned kernels that prepare (KernelDef::prepares) for the input shapes the build
  // recorded, and the arena of the largest memory plan with its pages faulted in. Best effort: a node whose recorded
  // shapes do not fit is left to its first run, which reports any error.
  void prepare_first_run(const std::vector<plan::NodeKernels>& kernels) const;
  // The profile the inputs of a run fall in (-1 when the session has none); an error naming the input, dimension,
  // value and range when they fall in none.
  StatusOr<int> match_profile(const std::vector<Value>& inputs) const;

  // `known`: element dtypes known before running (declared inputs, initializers, value_info, Constant
  // outputs), inherited by subgraphs.
  Status plan_graph(const ir::Graph& g, const std::string& scope, std::unordered_map<std::string, DType> known);
  // `memory`: the run's planned memory, for the top-level graph only (subgraphs allocate from the heap).
  // `control`: the run's stop conditions and limits (null: none).
  StatusOr<std::vector<Value>> run_graph(const ir::Graph& g, const Scope* outer, const std::vector<Value>& inputs,
                                         const std::vector<std::string>& wanted, RunMemory* memory = nullptr,
                                         const RunControl* control = nullptr) const;
  Status check_feed(const IoInfo& info, const Value& v) const;
  // Sets what every kernel call of node `np` takes from the session: threads, ISA, precision, caches, constant inputs.
  void configure(cpu::KernelContext& ctx, const NodePlan& np) const;
  // The kernel for node `np` with the inputs in `ctx` (cached per shape signature).
  // `profile`: the run's shape profile (a plan's pinned kernels), -1 for none.
  const cpu::KernelDef* select(const NodePlan& np, const cpu::KernelContext& ctx, int profile) const;
  void collect_choices(const ir::Graph& g, std::vector<KernelChoice>& out) const;
};

// What src/runtime's own code (plan_build.cc) reads of a session beyond its public interface.
struct SessionInternals {
  static Session::Impl& impl(const Session& s) { return *s.impl_; }
};

}  // namespace kiln
