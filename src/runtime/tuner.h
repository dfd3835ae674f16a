// Tactic selection (TensorRT's term): where two or more fast kernels can run a node, the session times each on
// the node's real inputs the first time it meets their shapes and keeps the fastest. A choice is remembered per
// (op, attributes, input shapes and dtypes, constant inputs, ISA, threads), so that the repeated layers of a
// network are timed once. Time spent is bounded by a budget; past it nodes take the first guess (the measured
// thresholds of each kernel's prefer()).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernel.h"

namespace kiln {

struct TacticTiming {
  std::string kernel;  // the candidate's name
  double ms = 0;       // its best time on the node's inputs; negative: it failed and was dropped
};

class Tuner {
 public:
  explicit Tuner(double budget_ms) : budget_ms_(budget_ms) {}

  // A context on the node's inputs for a timing run: outputs on the heap (not in the run's memory plan), the
  // node's caches, the session's threads and ISA.
  using ScratchContext = std::function<std::unique_ptr<cpu::KernelContext>()>;
  // Caches the node's kernel caches, so that what a losing candidate prepared (packed weights, primitives) is
  // dropped again.
  struct Caches {
    cpu::KernelCache* node = nullptr;
    cpu::KernelCache* shared = nullptr;
  };

  // The fastest of `candidates` (each supports the case; at least two) for the node whose inputs are in ctx,
  // `first_guess` when the budget is spent or no candidate ran. `timings` receives each candidate's time.
  const cpu::KernelDef* choose(const std::vector<const cpu::KernelDef*>& candidates, const cpu::KernelDef* first_guess,
                               const cpu::KernelContext& ctx, const std::string& config, const ScratchContext& scratch,
                               Caches caches, std::vector<TacticTiming>& timings);

  // Milliseconds spent timing candidates so far, and how many distinct configurations were timed.
  double spent_ms() const;
  int64_t timed() const;

  // The configuration key of a node: domain, op, attributes, the shape signature, the constant inputs.
  static std::string config_key(const ir::Node& node, const std::vector<int64_t>& signature, uint64_t constants);

  // The timing cache (runtime/timing_cache.cc, schema/timing_cache.fbs): reads the choices in `path` (a missing
  // file is an empty cache; a corrupt one, or one of another version, is an error naming it), which later choose()
  // calls take without timing; writes every choice made or read so far, atomically.
  Status load_cache(const std::string& path);
  Status save_cache(const std::string& path) const;
  // Choices read from a cache file that choose() has used.
  int64_t cache_hits() const;

 private:
  struct Result {
    std::string winner;
    std::vector<TacticTiming> timings;
  };
  mutable std::mutex mu_;
  double budget_ms_;
  double spent_ms_ = 0;
  int64_t timed_ = 0;
  int64_t cache_hits_ = 0;
  std::map<std::string, Result> results_;
  std::map<std::string, Result> cached_;  // read by load_cache, not yet used
};

}  // namespace kiln
