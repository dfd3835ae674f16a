// What kiln's CPU runtime can run: a view of the kernel registry for tools (`kiln check`, coverage tables).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/core/custom_ops.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/verify.h"

namespace kiln {

// True when the CPU runtime has a kernel for (domain, op) at `opset` ("" and "ai.onnx" are the default domain).
bool has_cpu_kernel(const std::string& domain, const std::string& op, int64_t opset);

// Adds a warning to `report` for every node (subgraphs included) that the CPU runtime cannot run, naming the node,
// the op and its opset. Nodes that a custom op of `custom` serves (when given) can run.
void report_unrunnable_nodes(const ir::Model& model, ir::Report& report, const CustomOps* custom = nullptr);

}  // namespace kiln
