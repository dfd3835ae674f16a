// What the CPU can run, read once from CPUID (and XGETBV: the OS must save the vector state), and the cap a
// user puts on it (KILN_MAX_ISA, SessionOptions::max_isa). Fast kernels pick their variant from
// KernelContext::isa(): the best ISA both the CPU has and the cap allows. No other code tests CPU features.
#pragma once

#include <optional>
#include <string>

namespace kiln::cpu {

// The instruction-set levels kiln's fast kernels are written for, in order. kAvx2 means AVX2 + FMA;
// kAvx512 means AVX-512 F, BW, DQ and VL (Skylake-SP, Ice Lake, Sapphire Rapids, Zen 4 and later).
enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  std::string model;  // the brand string, "Intel(R) Xeon(R) Platinum 8480+"
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx512_fp16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;  // with the OS's permission to use AMX state
  Isa best = Isa::kScalar;                                    // the best Isa this CPU (and OS) supports
  // "avx2 fma avx512f avx512bw ... amx_int8": the flags above that are set, for benchmark headers and logs.
  std::string flags() const;
};

// This machine's features (computed once).
const CpuFeatures& cpu_features();

const char* isa_name(Isa isa);  // "scalar", "avx2", "avx512"
// "scalar", "avx2" or "avx512" (case-insensitive); nullopt for anything else.
std::optional<Isa> parse_isa(const std::string& name);

// The cap from the environment variable KILN_MAX_ISA; nullopt when it is unset or empty. `error` receives a
// message naming the variable and the accepted values when it is set to something else.
std::optional<Isa> isa_cap_from_env(std::string* error);

// min(cpu_features().best, cap).
Isa effective_isa(Isa cap);

// The arithmetic a session lets its kernels use (SessionOptions::precision). kFp32: float32 throughout. kBf16:
// convolutions and matrix products may multiply in bfloat16 with float32 accumulation (inputs, outputs and every
// other operator stay float32), on the kernels that have such a form, where the CPU has bfloat16 instructions
// (has_bf16()); the tuner still picks the fastest candidate, which may be a float32 kernel (TensorRT's precision
// flags allow a precision, they do not force it).
enum class Precision : int { kFp32 = 0, kBf16 = 1 };

const char* precision_name(Precision p);  // "fp32", "bf16"
// "fp32" or "bf16" (case-insensitive); nullopt for anything else.
std::optional<Precision> parse_precision(const std::string& name);

// Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16, with the OS's permission).
bool has_bf16();

// The precision a session asking for `asked` runs at under instruction set `isa`: kBf16 only where AVX-512 is allowed
// and the CPU has_bf16(), else kFp32.
Precision effective_precision(Precision asked, Isa isa);

// What a session with default options runs: the CPU's best, capped by KILN_MAX_ISA when it is set (an invalid
// value caps nothing here; Session::create reports it).
Isa default_isa();

}  // namespace kiln::cpu
