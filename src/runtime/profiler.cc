#include "runtime/profiler.h"

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <sstream>
#include <thread>

#include "kiln/core/file.h"

namespace kiln {

void Profiler::add(std::string name, const char* category, Clock::time_point start, Clock::time_point end,
                   std::string args) {
  Event e{std::move(name),
          category,
          std::chrono::duration_cast<std::chrono::microseconds>(start - origin_).count(),
          std::chrono::duration_cast<std::chrono::microseconds>(end - start).count(),
          std::hash<std::thread::id>{}(std::this_thread::get_id()) % 100000,
          std::move(args)};
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(std::move(e));
}

size_t Profiler::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

std::string Profiler::json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Profiler::to_json() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream os;
  os << "[\n";
  const long pid = static_cast<long>(::getpid());
  for (size_t i = 0; i < events_.size(); ++i) {
    const Event& e = events_[i];
    os << "{\"name\":\"" << json_escape(e.name) << "\",\"cat\":\"" << e.category << "\",\"ph\":\"X\",\"ts\":" << e.ts_us
       << ",\"dur\":" << e.dur_us << ",\"pid\":" << pid << ",\"tid\":" << e.tid << ",\"args\":{" << e.args << "}}"
       << (i + 1 < events_.size() ? ",\n" : "\n");
  }
  os << "]\n";
  return os.str();
}

Status Profiler::write(const std::string& path) const { return write_file_atomic(path, to_json(), "profile"); }

}  // namespace kiln
