// Engine plans (.kplan), the seed's TensorRT engine step: `kiln build` (build_plan) optimizes an ONNX model for this
// CPU, times the candidate kernels of every node at each shape profile's opt shapes, and writes the optimized graph,
// the chosen kernels, the profiles and the weights (aligned, used from a memory map) to one file. A session loads it
// (Session::create_from_plan, or Session::create on a .kplan) without the ONNX parser or the optimizer.
// The format: src/runtime/schema/plan.fbs and docs/plan-format.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kiln/core/status.h"

namespace kiln {

// TensorRT's optimization profile: the shapes a plan accepts for its inputs with dynamic dims. A run whose input
// shapes fall inside no profile is refused, naming the input, the dimension, the value and the range.
struct ShapeProfile {
  struct Input {
    std::string name;
    std::vector<int64_t> min, opt, max;
  };
  std::string name;
  std::vector<Input> inputs;
  // Whether `dims` of input `name` is inside this profile (an input the profile does not name is always inside).
  const Input* find(const std::string& input) const;
};

// Parses "NAME:min=1x3x64x64,opt=1x3x256x256,max=4x3x1024x1024" (`kiln build --profile`). Several --profile
// options with the same NAME (before the colon) add inputs to one profile; the NAME may be omitted
// ("min=...,opt=...,max=...") when the model has one dynamic input. Errors say which part is wrong.
// Parsed into `profiles` (which may already hold earlier ones).
Status parse_profile_option(const std::string& text, std::vector<ShapeProfile>& profiles);

struct PlanBuildOptions {
  std::vector<ShapeProfile> profiles;         // empty: one profile of the model's static input shapes (an error if any
                                              // input has a dynamic dim)
  std::string precision = "fp32";             // fp32 or bf16 (SessionOptions::precision)
  int threads = 0;                            // intra-op threads the tactics are timed with (0: one per physical core)
  bool portable = false;                      // choose kernels for AVX2 (runs on any x86-64 with AVX2 and FMA)
  bool tune = true;                           // time the candidate kernels (false: the first guesses, as --no-tune)
  std::vector<std::string> disabled_kernels;  // fast kernels never to choose (SessionOptions::disabled_kernels)
  // --timing-cache FILE: choices already in it are taken without timing; the file is then written back with the
  // build's choices added (created when missing).
  std::string timing_cache;
  int optimization_level = 99;
  // Called as the build proceeds: stage ("optimize", "tune", "write") and the fraction of all the work done.
  std::function<void(const std::string& stage, double fraction)> progress;
};

// What a plan holds besides its graph: for `kiln show` and checks.
struct PlanInfo {
  uint32_t format_version = 0;
  std::string kiln_version;
  std::string source_name;
  uint64_t source_hash = 0;
  std::string isa;
  std::vector<std::string> cpu_features;
  std::string cpu_name;
  int threads = 0;
  std::string precision;
  bool portable = false;
  int optimization_level = 0;
  bool tuned = false;
  double build_ms = 0;
  double tune_ms = 0;
  int64_t tuned_configs = 0;
  std::string created;
  std::vector<ShapeProfile> profiles;
  uint64_t file_bytes = 0, graph_bytes = 0, weight_bytes = 0;
  int64_t weight_tensors = 0;
};

// What a build did (kiln build's summary).
struct PlanBuildReport {
  int64_t nodes = 0;         // nodes of the optimized graph, subgraphs included
  int64_t fast_kernels = 0;  // nodes whose recorded kernel is a fast one (first profile)
  std::vector<std::pair<std::string, int64_t>> kernel_counts;  // kernel name -> nodes (first profile)
  int64_t plan_bytes = 0;
  int64_t weight_bytes = 0;    // the weights section: the model's tensors and the kernels' prepared weights
  int64_t prepared_bytes = 0;  // of which prepared (packed, transformed) for the chosen kernels
  double build_ms = 0;
  double tune_ms = 0;
  int64_t tuned_configs = 0;
  int64_t timing_cache_hits = 0;      // choices taken from the timing cache
  std::vector<std::string> warnings;  // a profile whose timing run failed, and why
  PlanInfo info;                      // the record written into the plan
};

// Builds `onnx_path` into a plan written to `plan_path` (atomically: nothing is left on failure).
StatusOr<PlanBuildReport> build_plan(const std::string& onnx_path, const std::string& plan_path,
                                     const PlanBuildOptions& options);

// The format version this kiln reads and writes.
uint32_t plan_format_version();

// Whether the file starts with a plan's magic (cheap: reads 8 bytes). False for a missing file.
bool is_plan_file(const std::string& path);

// Reads a plan's header and build record, its profiles and sizes (not its graph or weights: weight_tensors stays 0).
// Errors: not a plan, another format version, a corrupt or truncated file.
StatusOr<PlanInfo> read_plan_info(const std::string& path);

// Reads every weight and compares it with its checksum (`kiln check m.kplan`). The error names the first corrupt
// tensor; ok when all match.
Status verify_plan_weights(const std::string& path);

// 64-bit checksum of `size` bytes (the plan's source hash and weight checksums).
uint64_t checksum64(const void* data, size_t size);

}  // namespace kiln
