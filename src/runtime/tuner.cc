#include "runtime/tuner.h"

#include <algorithm>
#include <chrono>
#include <limits>

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;

// Timed rounds after the untimed one (which prepares weights and primitives): each round runs every candidate
// once, in turn, so that a machine whose speed drifts affects them alike; each candidate keeps its best time.
// Rounds stop once a node's timed rounds have taken kNodeMs, after at least one. The untimed round does not count:
// its time is mostly preparation wherever weights are large (BERT's 768 x 3072 products on a 2-vCPU Ice Lake Xeon:
// 32 ms for the own SGEMM's packing and run, 60 ms for oneDNN's reorder, JIT and run, which then runs them in 3 ms
// against the SGEMM's 4), and when it counted, such nodes got one timed round: on a VM whose speed jumps for a few
// ms, one sample left ResNet-50's 1.8 ms layer4 convolution timed at 6 ms on one candidate. Only where even the
// quickest candidate's untimed run took kLongMs are the candidates long enough that their preparation is a small part
// of their time, and the untimed round decides (SRCNN's 90-290 ms convolutions: seconds of timing otherwise).
constexpr int kRounds = 3;
constexpr double kNodeMs = 25;
constexpr double kLongMs = 100;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void append_attribute(std::string& key, const ir::Attribute& a) {
  key += a.name + "=";
  switch (a.type) {
    case ir::AttrType::kInt: key += std::to_string(a.i); break;
    case ir::AttrType::kFloat: key += std::to_string(a.f); break;
    case ir::AttrType::kString: key += a.s; break;
    case ir::AttrType::kInts:
      for (int64_t v : a.ints) key += std::to_string(v) + ",";
      break;
    case ir::AttrType::kFloats:
      for (float v : a.floats) key += std::to_string(v) + ",";
      break;
    default: key += "?"; break;  // tensors, graphs: nodes that differ only there share a key (no fast kernel has one)
  }
  key += ";";
}

}  // namespace

std::string Tuner::config_key(const ir::Node& node, const std::vector<int64_t>& signature, uint64_t constants) {
  std::string key = node.domain + "::" + node.op_type + "|";
  for (const auto& a : node.attributes) append_attribute(key, a);
  key += "|";
  for (int64_t v : signature) key += std::to_string(v) + ",";
  key += "|" + std::to_string(constants);
  return key;
}

const cpu::KernelDef* Tuner::choose(const std::vector<const cpu::KernelDef*>& candidates,
                                    const cpu::KernelDef* first_guess, const cpu::KernelContext& ctx,
                                    const std::string& config, const ScratchContext& scratch, Caches caches,
                                    std::vector<TacticTiming>& timings) {
  // bf16 sessions have candidates fp32 sessions lack: their choices are keyed apart (fp32 keys as before, so
  // existing timing caches stay valid).
  const std::string key = config + "|" + cpu::isa_name(ctx.isa()) + "|" + std::to_string(ctx.num_threads()) +
                          (bf16_allowed(ctx) ? "|bf16" : "");
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = results_.find(key);
    if (it == results_.end()) {
      // A choice from the timing cache counts as made once it is used (and is written back by save_cache).
      auto c = cached_.find(key);
      if (c != cached_.end()) {
        it = results_.emplace(key, std::move(c->second)).first;
        cached_.erase(c);
        ++cache_hits_;
      }
    }
    if (it != results_.end()) {
      timings = it->second.timings;
      for (const auto* k : candidates) {
        if (it->second.winner == k->name) return k;
      }
      return first_guess;
    }
    if (spent_ms_ >= budget_ms_) return first_guess;
  }
  const auto start = Clock::now();
  const size_t n = candidates.size();
  std::vector<double> best(n, std::numeric_limits<double>::infinity());
  std::vector<bool> failed(n, false);
  std::vector<std::pair<uint64_t, uint64_t>> node_marks(n), shared_marks(n);
  // The untimed round: each candidate prepares what it keeps (its marks bracket what it added to the caches).
  for (size_t i = 0; i < n; ++i) {
    node_marks[i].first = caches.node ? caches.node->mark() : 0;
    shared_marks[i].first = caches.shared ? caches.shared->mark() : 0;
    auto c = scratch();
    const auto t0 = Clock::now();
    failed[i] = !candidates[i]->fn(*c).is_ok();
    best[i] = ms_since(t0);
    node_marks[i].second = caches.node ? caches.node->mark() : 0;
    shared_marks[i].second = caches.shared ? caches.shared->mark() : 0;
  }
  double quickest = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i) {
    if (!failed[i]) quickest = std::min(quickest, best[i]);
  }
  const bool untimed_decides = quickest > kLongMs;
  const auto timed_start = Clock::now();
  for (int round = 0; round < kRounds && !untimed_decides; ++round) {
    if (round > 0 && ms_since(timed_start) > kNodeMs) break;
    for (size_t i = 0; i < n; ++i) {
      if (failed[i]) continue;
      auto c = scratch();
      const auto t0 = Clock::now();
      if (!candidates[i]->fn(*c).is_ok()) {
        failed[i] = true;
        continue;
      }
      best[i] = std::min(best[i], ms_since(t0));
    }
  }
  size_t win = n;
  for (size_t i = 0; i < n; ++i) {
    if (!failed[i] && (win == n || best[i] < best[win])) win = i;
  }
  const cpu::KernelDef* winner = win == n ? first_guess : candidates[win];
  // What the losers prepared goes again (the winner's entries stay: it runs next).
  for (size_t i = 0; i < n; ++i) {
    if (candidates[i] == winner) continue;
    if (caches.node) caches.node->erase_between(node_marks[i].first, node_marks[i].second);
    if (caches.shared) caches.shared->erase_between(shared_marks[i].first, shared_marks[i].second);
  }
  timings.clear();
  for (size_t i = 0; i < n; ++i) timings.push_back({candidates[i]->name, failed[i] ? -1.0 : best[i]});
  std::lock_guard<std::mutex> lock(mu_);
  spent_ms_ += ms_since(start);
  ++timed_;
  results_[key] = {winner->name, timings};
  return winner;
}

double Tuner::spent_ms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return spent_ms_;
}

int64_t Tuner::cache_hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_hits_;
}

int64_t Tuner::timed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timed_;
}

}  // namespace kiln
