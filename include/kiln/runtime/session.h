// kiln::Session: load a model once, run it many times. A session is immutable after creation and run() is
// thread-safe: every call has its own values; the plan, kernels and initializers are shared read-only.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"
#include "kiln/core/value.h"
#include "kiln/ir/graph.h"
#include "kiln/runtime/lora_adapter.h"

namespace kiln {

struct SessionOptions {
  int intra_op_threads = 0;     // 0: one per physical core
  int optimization_level = 99;  // 0 disabled, 1 basic, 2 extended, 99 all (ONNX Runtime's levels)
  // Record a span per node and per run; end_profiling() writes them as a Chrome trace (chrome://tracing,
  // Perfetto) to "<profile_file_prefix>_<date>_<time>.json".
  bool enable_profiling = false;
  std::string profile_file_prefix = "kiln_profile";
  // Run every operator's plain reference kernel, even where a fast (oneDNN) kernel exists: slow, for
  // checking the fast kernels.
  bool reference_kernels = false;
  // The best instruction set the fast kernels may use: "scalar", "avx2" or "avx512" ("" : the environment
  // variable KILN_MAX_ISA when set, else the best this CPU has). A cap above the CPU's level is the CPU's level.
  // oneDNN's cap is process-wide: it follows KILN_MAX_ISA, or the first session's max_isa, and a session capped
  // at "scalar" uses no oneDNN kernel.
  std::string max_isa;
  // The arithmetic the kernels may use: "fp32" (default, "" too) or "bf16": convolutions and matrix products may
  // multiply in bfloat16 with float32 accumulation (AVX512-BF16 or AMX-BF16); inputs, outputs and every other
  // operator stay float32, and the tuner still picks the fastest candidate, which may be a float32 kernel. On a
  // CPU without bfloat16 instructions (or under max_isa avx2) a bf16 session runs in fp32 and says so once on
  // stderr. A session from an engine plan takes the plan's precision.
  std::string precision;
  // Where two or more fast kernels can run a node, time each on the node's real inputs the first time it meets
  // their shapes and keep the fastest (TensorRT's tactic selection); remembered per op, attributes, shapes, ISA
  // and thread count, so repeated layers are timed once. false: the first guess (thresholds measured on a few
  // CPUs), as `--no-tune` asks.
  bool tune = true;
  // The most time all timing may take in this session (ms); past it, nodes take the first guess.
  double tune_budget_ms = 3000;
  // A timing cache file (kiln build --timing-cache): the choices it holds, keyed by op, attributes, shapes, ISA and
  // threads, are taken without timing. Read at creation when the file exists (a corrupt one is an error naming
  // it); Session::save_timing_cache writes it back with this session's choices added.
  std::string timing_cache;
  // Fast kernels never to select, by name ("nchwc_conv.dnnl", "matmul.sgemm"; `kiln optimize --print-kernels`
  // lists them): to work around a kernel, or to test another one. The reference kernel always remains.
  std::vector<std::string> disabled_kernels;
  // The most memory one run may hold, in MiB (0: no limit beyond the machine's memory): the tensors it has
  // allocated and not yet released. An allocation that would go over it fails before it is made, with a
  // ResourceExhausted error naming the node, the tensor and the figures. A session with a limit allocates each
  // tensor on its own instead of from the run's planned arena, so that every allocation is checked when it is
  // made. Kernels' small scratch buffers are not counted. Without a limit, no single tensor may exceed the
  // machine's physical memory.
  int64_t memory_limit_mb = 0;
  // Shared libraries of custom operators (kiln/custom_op.h), loaded when the session is created: their ops run
  // the nodes of their domain and type, before kiln's own kernels. A library that cannot be loaded, lacks the entry
  // point, was built for another ABI version or declares a malformed op is an error naming it.
  std::vector<std::string> custom_op_libraries;
};

// Options for one call of Session::run (ONNX Runtime's RunOptions). Several runs may share one.
class RunOptions {
 public:
  RunOptions() = default;
  RunOptions(const RunOptions& other)
      : timeout_ms(other.timeout_ms), terminate_(other.terminate()), adapters_(other.adapters_) {}
  RunOptions& operator=(const RunOptions& other) {
    timeout_ms = other.timeout_ms;
    set_terminate(other.terminate());
    adapters_ = other.adapters_;
    return *this;
  }
  // Stops the runs that use these options (from any thread): each ends before its next node, or its next
  // Loop/Scan iteration, with a Cancelled error naming the node it stopped at. A run started while the flag is
  // set stops before its first node. Clear it to reuse the options.
  void set_terminate(bool terminate = true) { terminate_.store(terminate, std::memory_order_relaxed); }
  bool terminate() const { return terminate_.load(std::memory_order_relaxed); }
  // The longest a run may take, in ms (0: no limit): past it, the run stops as if terminated (Cancelled, "timed
  // out after ..."). Checked between nodes: a single kernel is never interrupted.
  double timeout_ms = 0;
  // LoRA adapters (kiln/runtime/lora_adapter.h) whose parameters the runs feed to the model's inputs of the same
  // names, as ONNX Runtime's active adapters. A parameter that names no input of the model, or an input a run
  // also feeds itself or another active adapter sets, is an error naming it.
  void add_active_adapter(std::shared_ptr<const LoraAdapter> adapter) { adapters_.push_back(std::move(adapter)); }
  const std::vector<std::shared_ptr<const LoraAdapter>>& active_adapters() const { return adapters_; }

 private:
  std::atomic<bool> terminate_{false};
  std::vector<std::shared_ptr<const LoraAdapter>> adapters_;
};

// A graph input or output as the session sees it: name, type (dtype and shape with symbolic dims).
struct IoInfo {
  std::string name;
  ir::Type type;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The kernel a node ran last (Session::kernel_choices).
struct KernelChoice {
  const ir::Node* ir_node = nullptr;  // the node in Session::model()
  std::string node;                   // the node's name
  std::string op;                     // "Conv", or "ai.kiln::NchwcConv" outside the default domain
  std::string kernel;  // "ref" (the reference kernel) or a fast kernel's name ("matmul.sgemm"); "" before any run
  std::string detail;  // the variant the kernel reported ("sgemm.avx2", "dnnl_matmul(brg:avx512_core)"), or ""
  // When the kernel was chosen by timing: each candidate's name and best time in ms (negative: it failed).
  std::vector<std::pair<std::string, double>> timings;
  // The inputs of its latest run: for each input its dtype (ONNX's number), rank and dims, or -1 for a value that is
  // not a tensor and -2 for an omitted input. Empty before any run, and for nodes with a single candidate kernel.
  std::vector<int64_t> signature;
  // For a session from a plan: the kernel the build recorded for each shape profile ("" : none), and its variant.
  std::vector<std::string> planned, planned_details;
};

struct PlanInfo;

class Session {
 public:
  // An ONNX model or an engine plan (.kplan, kiln/runtime/plan.h), told apart by the file's first bytes. These
  // three link the ONNX importer (kiln_runtime); an application that ships plans alone links kiln_engine, which
  // has no protobuf or libonnx, and calls create_from_plan.
  static StatusOr<std::unique_ptr<Session>> create(const std::string& path, const SessionOptions& options = {});
  static StatusOr<std::unique_ptr<Session>> create_from_bytes(const void* data, size_t size,
                                                              const SessionOptions& options = {});
  static StatusOr<std::unique_ptr<Session>> create(ir::Model model, const SessionOptions& options = {});
  // A plan written by `kiln build` (build_plan): its graph is optimized already, its weights are used from a
  // read-only memory map of the file, and each node runs the kernel the build chose for the run's shape profile
  // (where it supports the run's shapes; otherwise the session chooses as for an ONNX model). Errors: not a plan,
  // another format version, a corrupt or truncated file, a CPU feature the plan needs that this machine (or the
  // session's max_isa / KILN_MAX_ISA cap) lacks. SessionOptions::optimization_level does not apply.
  static StatusOr<std::unique_ptr<Session>> create_from_plan(const std::string& path,
                                                             const SessionOptions& options = {});
  // The same from plan bytes in memory (copied into an aligned buffer).
  static StatusOr<std::unique_ptr<Session>> create_from_plan_bytes(const void* data, size_t size,
                                                                   const SessionOptions& options = {});
  ~Session();

  const std::vector<IoInfo>& inputs() const;
  const std::vector<IoInfo>& outputs() const;
  // The model the session runs: optimized at creation (for a plan: at build time).
  const ir::Model& model() const;
  // For a session loaded from a plan: its build record and shape profiles; null otherwise.
  const PlanInfo* plan_info() const;

  // Runs the model. `output_names` empty: every graph output, in graph order. Errors name the input and
  // what was expected (unknown or missing input, wrong dtype, rank or dimension) or the failing node.
  // `options` (may be null): terminate flag and timeout.
  StatusOr<std::vector<Tensor>> run(const NamedTensors& inputs, const std::vector<std::string>& output_names = {},
                                    const RunOptions* options = nullptr) const;
  // The same for models whose inputs or outputs are sequences or optionals (any Value kind).
  StatusOr<std::vector<Value>> run_values(const NamedValues& inputs, const std::vector<std::string>& output_names = {},
                                          const RunOptions* options = nullptr) const;

  // The same with outputs written where the caller says (ONNX Runtime's preallocated outputs; IOBinding): `outputs`
  // is empty, or has one entry per requested output. An entry that holds a tensor receives that output in place:
  // the tensor must have the output's dtype and shape (else an error naming both), and its buffer, which the
  // caller keeps alive, is where the kernel that makes the output writes it (or where it is copied, for an output
  // no kernel allocates, such as an input passed through). A steady-state run then allocates no tensor memory.
  // The other entries receive the outputs' values, as run_values() returns them.
  Status run_into(const NamedValues& inputs, const std::vector<std::string>& output_names, std::vector<Value>& outputs,
                  const RunOptions* options = nullptr) const;

  // Every node of the model (subgraph nodes after the node that holds them) with the kernel that ran it in
  // the last run that reached it. Kernels are chosen per node and per shape signature of its inputs: the first
  // fast kernel that supports the case, else the reference kernel (always it with
  // SessionOptions::reference_kernels).
  std::vector<KernelChoice> kernel_choices() const;
  // Time spent timing candidate kernels so far (SessionOptions::tune), in ms, and how many configurations
  // were timed.
  double tune_ms() const;
  // The precision the kernels may use: "bf16" where SessionOptions::precision (or the plan) asks for it and the CPU
  // and the ISA cap allow it, else "fp32".
  std::string precision() const;
  int64_t tuned_configs() const;
  // Choices taken from SessionOptions::timing_cache instead of timing; and the cache written to `path` (every
  // choice read or made), atomically.
  int64_t timing_cache_hits() const;
  Status save_timing_cache(const std::string& path) const;

  // With enable_profiling: writes the spans recorded so far as a Chrome-trace JSON file and returns its path
  // (recording stops). Without it: an error.
  StatusOr<std::string> end_profiling() const;
  // The same trace to a file of your choosing.
  Status write_profile(const std::string& path) const;

  struct Impl;
  // For kiln's own loaders (src/runtime): a session over a created Impl.
  static std::unique_ptr<Session> from_impl(std::unique_ptr<Impl> impl);

 private:
  friend struct SessionInternals;  // kiln's own code in src/runtime (runtime/session_impl.h)
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln
