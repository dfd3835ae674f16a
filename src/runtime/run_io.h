// What a run takes and gives beyond plain feeds and fresh outputs: the parameters of active LoRA adapters, and
// outputs written into the caller's preallocated tensors (Session::run_into).
#pragma once

#include <string>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"
#include "kiln/core/value.h"
#include "kiln/ir/graph.h"
#include "kiln/runtime/session.h"

namespace kiln {

// `feeds` followed by the parameters of the options' active adapters. A parameter that names no input of `g`, or
// an input already fed, is an error naming it.
StatusOr<NamedValues> feeds_with_adapters(const ir::Graph& g, const NamedValues& feeds, const RunOptions& options);

// Whether the two tensors' bytes overlap.
bool overlaps(const Tensor& a, const Tensor& b);

// Puts the run's value of output `name` into the caller's tensor `dest` (unless the kernel already wrote it there):
// dtype and shape must agree, else an error naming both.
Status write_bound(const std::string& name, const Value& v, Tensor& dest);

}  // namespace kiln
