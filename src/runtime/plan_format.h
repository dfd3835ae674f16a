// The .kplan file (schema/plan.fbs, docs/plan-format.md): a fixed header, a FlatBuffer with the graph and the build's
// record, and the weights section. Writing and reading it; nothing here links protobuf or libonnx.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/allocator.h"
#include "kiln/core/status.h"
#include "kiln/ir/graph.h"
#include "kiln/runtime/plan.h"

namespace kiln::plan {

constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderBytes = 64;
constexpr size_t kWeightAlign = 64;  // every tensor's bytes start at a multiple of this in the file
constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
// Header fields (little-endian) after the magic: u32 version, u32 header bytes, u64 graph offset, u64 graph bytes,
// u64 weights offset, u64 weights bytes, u64 graph checksum, u64 header checksum (of bytes 0-55).
constexpr size_t kVersionAt = 8, kHeaderSizeAt = 12, kGraphAt = 16, kGraphBytesAt = 24, kWeightsAt = 32,
                 kWeightBytesAt = 40, kGraphSumAt = 48, kHeaderSumAt = 56;

// A header field, read byte-wise (the buffer need not be aligned).
template <typename T>
T header_field(const uint8_t* p, size_t at) {
  T v;
  std::memcpy(&v, p + at, sizeof v);
  return v;
}

// The order in which a plan lists the kernels of a model's nodes: each graph's nodes in order, the subgraphs of a
// node (its attributes' graphs, in order) right after it.
void for_each_node(const ir::Graph& g, const std::function<void(const ir::Node&)>& fn);

// What a plan holds besides the graph's structure: the build's record and, per node in for_each_node order, the
// kernel recorded under each profile ("" : none) and the variant it reported.
struct NodeKernels {
  std::vector<std::string> kernels;
  std::vector<std::string> details;
  // Per profile: the node's inputs in the build's run at its opt shapes, as KernelChoice::signature (empty: none).
  std::vector<std::vector<int64_t>> input_shapes;
};

// Weights a fast kernel prepared (kernels/prepared.h), under the name of the initializer they come from.
struct Prepared {
  int64_t kind = 0;  // cpu::CacheEntry
  std::string weight;
  std::vector<int64_t> fields, meta;
  std::vector<std::pair<const float*, int64_t>> arrays;  // data, floats
};

// A memory plan (runtime/memory_plan.h) for one input-shape signature.
struct MemoryPlanEntry {
  std::vector<std::vector<int64_t>> signature;
  size_t total = 0;
  struct Block {
    uint64_t key = 0, size = 0, offset = 0, index = 0;
  };
  std::vector<Block> blocks;
};

// The plan file's bytes for `model` (already optimized). `kernels` is in for_each_node order (may be empty: no
// kernel recorded). `info`'s sizes are filled in.
StatusOr<std::string> write(const ir::Model& model, PlanInfo& info, const std::vector<NodeKernels>& kernels,
                            const std::vector<Prepared>& prepared = {},
                            const std::vector<MemoryPlanEntry>& memory = {});

struct Contents {
  ir::Model model;  // its tensors view `file` (zero copy)
  PlanInfo info;
  std::vector<NodeKernels> kernels;     // for_each_node order, one entry per node
  std::vector<Prepared> prepared;       // arrays view `file`
  std::vector<MemoryPlanEntry> memory;  // each block inside its arena (checked)
};

// Reads the plan in `file` (the whole file, 8-byte aligned at least: a mapping). `what` names it in errors ("plan
// 'm.kplan'"). With `metadata_only`, the model is left empty (kiln show's header, read_plan_info). Checks, in
// order: the magic, the format version, the header's checksum, the sections' bounds, the graph section's checksum,
// the FlatBuffers verifier, then every tensor's bounds, dtype and size. Weights are not read
// (verify_weights does that).
StatusOr<Contents> read(const std::shared_ptr<Buffer>& file, const std::string& what, bool metadata_only = false);

// Every tensor's bytes against its checksum; the error names the first that differs.
Status verify_weights(const std::shared_ptr<Buffer>& file, const std::string& what);

}  // namespace kiln::plan
