#include "kernels/isa.h"

#include <cpuid.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace kiln::cpu {
namespace {

bool bit(uint32_t reg, int b) { return (reg >> b) & 1u; }

uint64_t xgetbv0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux gives a process AMX tile state only after it asks (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE 18).
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  uint32_t a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const uint32_t max_leaf = a;
  uint32_t c1 = 0, d1 = 0;
  __get_cpuid(1, &a, &b, &c1, &d1);
  const bool osxsave = bit(c1, 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm_state = (xcr0 & 0x6) == 0x6;                 // SSE and AVX state
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;        // XTILECFG, XTILEDATA
  f.fma = ymm_state && bit(c1, 12);
  f.f16c = ymm_state && bit(c1, 29);
  if (max_leaf >= 7) {
    uint32_t b7 = 0, c7 = 0, d7 = 0, a71 = 0;
    __cpuid_count(7, 0, a, b7, c7, d7);
    uint32_t bb = 0, cc = 0, dd = 0;
    __cpuid_count(7, 1, a71, bb, cc, dd);
    f.avx2 = ymm_state && bit(b7, 5);
    f.avx512f = zmm_state && bit(b7, 16);
    f.avx512dq = zmm_state && bit(b7, 17);
    f.avx512bw = zmm_state && bit(b7, 30);
    f.avx512vl = zmm_state && bit(b7, 31);
    f.avx512_vnni = zmm_state && bit(c7, 11);
    f.avx512_fp16 = zmm_state && bit(d7, 23);
    f.avx512_bf16 = zmm_state && bit(a71, 5);
    f.avx_vnni = ymm_state && bit(a71, 4);
    const bool amx = tile_state && bit(d7, 24) && request_amx_permission();
    f.amx_bf16 = amx && bit(d7, 22);
    f.amx_tile = amx;
    f.amx_int8 = amx && bit(d7, 25);
  }
  uint32_t ext = 0;
  __get_cpuid(0x80000000, &ext, &b, &c, &d);
  if (ext >= 0x80000004) {
    char brand[49] = {};
    for (uint32_t leaf = 0; leaf < 3; ++leaf) {
      uint32_t r[4] = {};
      __get_cpuid(0x80000002 + leaf, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + leaf * 16, r, 16);
    }
    f.model = brand;
    const size_t first = f.model.find_first_not_of(' ');
    f.model = first == std::string::npos ? "" : f.model.substr(first);
    while (!f.model.empty() && f.model.back() == ' ') f.model.pop_back();
  }
  if (f.avx2 && f.fma) f.best = Isa::kAvx2;
  if (f.best == Isa::kAvx2 && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl) f.best = Isa::kAvx512;
  return f;
}

}  // namespace

std::string CpuFeatures::flags() const {
  std::string out;
  auto add = [&out](bool on, const char* name) {
    if (on) out += (out.empty() ? "" : " ") + std::string(name);
  };
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512dq, "avx512dq");
  add(avx512vl, "avx512vl");
  add(avx512_vnni, "avx512_vnni");
  add(avx512_bf16, "avx512_bf16");
  add(avx512_fp16, "avx512_fp16");
  add(avx_vnni, "avx_vnni");
  add(amx_tile, "amx_tile");
  add(amx_int8, "amx_int8");
  add(amx_bf16, "amx_bf16");
  return out;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    default: return "scalar";
  }
}

std::optional<Isa> parse_isa(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (s == "scalar") return Isa::kScalar;
  if (s == "avx2") return Isa::kAvx2;
  if (s == "avx512") return Isa::kAvx512;
  return std::nullopt;
}

std::optional<Isa> isa_cap_from_env(std::string* error) {
  const char* v = std::getenv("KILN_MAX_ISA");
  if (!v || !*v) return std::nullopt;
  auto isa = parse_isa(v);
  if (!isa && error) {
    *error = std::string("KILN_MAX_ISA is '") + v + "'; expected scalar, avx2 or avx512";
  }
  return isa;
}

Isa effective_isa(Isa cap) { return std::min(cpu_features().best, cap); }

Isa default_isa() {
  std::string error;
  return effective_isa(isa_cap_from_env(&error).value_or(Isa::kAvx512));
}

const char* precision_name(Precision p) { return p == Precision::kBf16 ? "bf16" : "fp32"; }

std::optional<Precision> parse_precision(const std::string& name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (lower == "fp32") return Precision::kFp32;
  if (lower == "bf16") return Precision::kBf16;
  return std::nullopt;
}

bool has_bf16() {
  const CpuFeatures& f = cpu_features();
  return f.best == Isa::kAvx512 && (f.avx512_bf16 || f.amx_bf16);
}

Precision effective_precision(Precision asked, Isa isa) {
  return asked == Precision::kBf16 && isa == Isa::kAvx512 && has_bf16() ? Precision::kBf16 : Precision::kFp32;
}

}  // namespace kiln::cpu
