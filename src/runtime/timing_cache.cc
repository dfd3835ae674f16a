// The tuner's timing cache file through the FlatBuffers code flatc generates from schema/timing_cache.fbs.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string_view>

#include "kernels/isa.h"
#include "kiln/core/file.h"
#include "runtime/tuner.h"
#include "timing_cache_generated.h"

namespace kiln {
namespace {

namespace fb = kiln::timing_cache_format;
constexpr int kVersion = 1;

}  // namespace

Status Tuner::load_cache(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return Status::ok();  // no cache yet: the build times and then writes it
  const std::string what = "timing cache '" + path + "'";
  const auto size = static_cast<size_t>(std::max<std::streamoff>(in.tellg(), 0));
  // Read straight into an 8-byte aligned buffer: FlatBuffers reads scalars in place.
  std::vector<uint64_t> aligned((size + 7) / 8);
  in.seekg(0);
  if (size && !in.read(reinterpret_cast<char*>(aligned.data()), static_cast<std::streamsize>(size))) {
    return io_error("cannot read " + what);
  }
  const auto* data = reinterpret_cast<const uint8_t*>(aligned.data());
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.size() < 8 || !fb::TimingCacheBufferHasIdentifier(data)) {
    return invalid_argument(what + ": not a kiln timing cache (expected the file identifier \"KTCH\" at byte 4)");
  }
  flatbuffers::Verifier verifier(data, bytes.size());
  if (!fb::VerifyTimingCacheBuffer(verifier)) return invalid_argument(what + ": corrupt (FlatBuffers verifier)");
  const fb::TimingCache* cache = fb::GetTimingCache(data);
  if (cache->version() != kVersion) {
    return invalid_argument(what + ": version " + std::to_string(cache->version()) + "; this kiln reads version " +
                            std::to_string(kVersion));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!cache->entries()) return Status::ok();
  for (const fb::Entry* e : *cache->entries()) {
    if (!e->key() || !e->winner()) return invalid_argument(what + ": an entry has no key or no winner");
    Result r;
    r.winner = e->winner()->str();
    const size_t n = e->kernels() ? e->kernels()->size() : 0;
    if ((e->ms() ? e->ms()->size() : 0) != n) return invalid_argument(what + ": an entry's kernels and times differ");
    for (size_t i = 0; i < n; ++i) {
      double ms = 0;
      std::memcpy(&ms, e->ms()->Data() + i * sizeof(double), sizeof ms);
      r.timings.push_back({e->kernels()->Get(static_cast<flatbuffers::uoffset_t>(i))->str(), ms});
    }
    if (!results_.count(e->key()->str())) cached_[e->key()->str()] = std::move(r);
  }
  return Status::ok();
}

Status Tuner::save_cache(const std::string& path) const {
  flatbuffers::FlatBufferBuilder b(4096);
  std::vector<flatbuffers::Offset<fb::Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // What this session chose and what it read but did not need: the file only grows.
    for (const auto* m : {&results_, &cached_}) {
      for (const auto& [key, r] : *m) {
        std::vector<flatbuffers::Offset<flatbuffers::String>> names;
        std::vector<double> ms;
        for (const auto& t : r.timings) {
          names.push_back(b.CreateString(t.kernel));
          ms.push_back(t.ms);
        }
        const auto k = b.CreateString(key);
        const auto w = b.CreateString(r.winner);
        const auto kn = b.CreateVector(names);
        const auto mv = b.CreateVector(ms);
        entries.push_back(fb::CreateEntry(b, k, w, kn, mv));
      }
    }
  }
  const auto version = b.CreateString(KILN_VERSION_STRING);
  const auto cpu = b.CreateString(cpu::cpu_features().model);
  const auto list = b.CreateVector(entries);
  b.Finish(fb::CreateTimingCache(b, kVersion, version, cpu, list), fb::TimingCacheIdentifier());
  return write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize()),
                           "timing cache");
}

}  // namespace kiln
