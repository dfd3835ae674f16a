// What the session and plan fuzz targets feed a model: inputs shaped from its declared types (symbolic dims bound to 2,
// at most 4096 elements: what is fuzzed is parsing, planning and the kernels' edge cases, which small tensors reach at
// hundreds of runs a second), values small integers; and one bounded run (one thread, 64 MiB, 500 ms).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/runtime/session.h"

namespace kiln_fuzz {

constexpr int64_t kMaxElements = 4096;

inline kiln::StatusOr<kiln::Tensor> input_for(const kiln::IoInfo& in) {
  const kiln::ir::Type& type = in.type;
  if (type.kind != kiln::ir::Type::Kind::kTensor) return kiln::invalid_argument("not a tensor");
  std::vector<int64_t> dims;
  if (type.shape) {
    for (size_t i = 0; i < type.shape->rank(); ++i) {
      const auto& d = (*type.shape)[i];
      dims.push_back(d.is_known() ? d.value() : 2);
    }
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || d > kMaxElements || (n *= std::max<int64_t>(d, 1)) > kMaxElements) {
      return kiln::invalid_argument("too large");
    }
  }
  const kiln::DType dtype = type.elem_type == kiln::DType::kUndefined ? kiln::DType::kFloat32 : type.elem_type;
  if (dtype == kiln::DType::kString) {
    return kiln::Tensor::from_strings(dims, std::vector<std::string>(static_cast<size_t>(n), "a"));
  }
  KILN_ASSIGN_OR_RETURN(kiln::Tensor t, kiln::Tensor::allocate(dtype, dims));
  auto* bytes = static_cast<uint8_t*>(t.raw_data());
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(i % 3 == 0 ? 1 : 0);
  return t;
}

// Session options for a bounded fuzz run.
inline kiln::SessionOptions bounded_options() {
  kiln::SessionOptions opts;
  opts.intra_op_threads = 1;
  opts.memory_limit_mb = 64;
  opts.tune = false;
  return opts;
}

// One run of `session` on inputs from input_for (none when an input cannot be made), stopped after 500 ms.
inline void run_once(const kiln::Session& session) {
  kiln::NamedValues feeds;
  for (const auto& in : session.inputs()) {
    auto t = input_for(in);
    if (!t.is_ok()) return;
    feeds.emplace_back(in.name, kiln::Value(std::move(t).value()));
  }
  kiln::RunOptions run;
  run.timeout_ms = 500;
  (void)session.run_values(feeds, {}, &run);
}

}  // namespace kiln_fuzz
