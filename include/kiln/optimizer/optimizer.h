// The graph optimizer: rewrites an ir::Model into an equivalent one that runs faster. Passes are grouped in
// ONNX Runtime's levels; each level includes the ones below it. Fused operators live in the ai.kiln domain
// (docs/optimizer.md lists them); every rewrite keeps the model's outputs (within float rounding).
#pragma once

#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/ir/graph.h"

namespace kiln::opt {

enum Level : int { kDisabled = 0, kBasic = 1, kExtended = 2, kAll = 99 };

// The domain of kiln's fused operators and its version.
inline constexpr const char* kKilnDomain = "ai.kiln";
inline constexpr int64_t kKilnDomainVersion = 1;

struct PassStat {
  std::string pass;
  int rewrites = 0;
};

struct Report {
  std::vector<PassStat> passes;  // every pass that ran, in order
  size_t nodes_before = 0, nodes_after = 0;
};

// "disabled", "basic", "extended", "all" or the numbers 0, 1, 2, 99.
StatusOr<int> parse_level(const std::string& text);
const char* level_name(int level);

// What the session asks of the passes beyond the level.
struct Options {
  // Convolutions may keep their activations in bfloat16 (a bf16 session on a CPU with bfloat16 instructions):
  // layout_nhwc_bf16 runs.
  bool bf16 = false;
};

// The options a session of `precision` ("fp32", "bf16"; anything else: fp32) gives the optimizer on this CPU: bf16
// only where the CPU has bfloat16 instructions and KILN_MAX_ISA allows AVX-512 (`kiln optimize --precision`).
Options options_for_precision(const std::string& precision);

// Rewrites the model's main graph in place with every pass of `level` and below.
StatusOr<Report> optimize(ir::Model& model, int level, const Options& options = {});

// One pass by name (for tests and `kiln optimize --pass`); the error lists the pass names.
StatusOr<int> run_pass(ir::Model& model, const std::string& name, const Options& options = {});
std::vector<std::string> pass_names();

}  // namespace kiln::opt
