// Span recording for SessionOptions::enable_profiling, written as Chrome trace events ("ph": "X").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/core/status.h"

namespace kiln {

class Profiler {
 public:
  using Clock = std::chrono::steady_clock;

  Profiler() : origin_(Clock::now()) {}

  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  void set_enabled(bool on) { enabled_.store(on); }

  // Records one span; thread-safe. category: "node" or "session"; args: extra JSON members (already
  // encoded) such as "\"op\":\"Conv\"".
  void add(std::string name, const char* category, Clock::time_point start, Clock::time_point end, std::string args);
  size_t size() const;

  // The trace as JSON: [{"name", "cat", "ph":"X", "ts", "dur", "pid", "tid", "args"}, ...].
  std::string to_json() const;
  // Writes to_json() to `path` atomically (a temporary file renamed into place).
  Status write(const std::string& path) const;

  static std::string json_escape(const std::string& s);

 private:
  struct Event {
    std::string name;
    const char* category;
    int64_t ts_us, dur_us;
    uint64_t tid;
    std::string args;
  };
  std::atomic<bool> enabled_{false};
  Clock::time_point origin_;
  mutable std::mutex mu_;
  std::vector<Event> events_;
};

}  // namespace kiln
