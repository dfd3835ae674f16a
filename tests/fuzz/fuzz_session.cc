// Fuzz target: model bytes through session creation (optimizer, planning) and one run, on inputs shaped from the
// model: symbolic dims bound to 2, known dims as declared (a model with an input over 4096 elements is not run: what
// is fuzzed here is parsing, shape inference, planning and the kernels' edge cases, which small tensors reach at
// hundreds of runs a second), values small integers. A run is bounded: one thread, 64 MiB of memory, 500 ms.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/onnx/model_io.h"
#include "kiln/runtime/session.h"

namespace {

constexpr int64_t kMaxElements = 4096;

kiln::StatusOr<kiln::Tensor> input_for(const kiln::IoInfo& in) {
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::SessionOptions opts;
  opts.intra_op_threads = 1;
  opts.memory_limit_mb = 64;
  opts.tune = false;
  auto session = kiln::Session::create_from_bytes(data, size, opts);
  if (!session.is_ok()) return 0;
  kiln::NamedValues feeds;
  for (const auto& in : (*session)->inputs()) {
    auto t = input_for(in);
    if (!t.is_ok()) return 0;
    feeds.emplace_back(in.name, kiln::Value(std::move(t).value()));
  }
  kiln::RunOptions run;
  run.timeout_ms = 500;
  (void)(*session)->run_values(feeds, {}, &run);
  return 0;
}
