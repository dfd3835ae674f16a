#include "runtime/run_io.h"

#include <algorithm>
#include <cstring>

namespace kiln {

StatusOr<NamedValues> feeds_with_adapters(const ir::Graph& g, const NamedValues& feeds, const RunOptions& options) {
  NamedValues out = feeds;
  for (const auto& adapter : options.active_adapters()) {
    for (const auto& param : adapter->parameters) {
      const std::string& name = param.first;  // (a plain reference: clang 14 cannot capture a structured binding)
      if (std::any_of(out.begin(), out.end(), [&](const auto& fed) { return fed.first == name; })) {
        return invalid_argument("LoRA adapter parameter '" + name +
                                "' is an input that the run already feeds (from the caller or another adapter)");
      }
      if (std::none_of(g.inputs.begin(), g.inputs.end(), [&](const ir::ValueInfo& v) { return v.name == name; })) {
        return invalid_argument("LoRA adapter parameter '" + name + "' is not an input of the model");
      }
      out.emplace_back(name, Value(param.second));
    }
  }
  return out;
}

bool overlaps(const Tensor& a, const Tensor& b) {
  const auto* pa = static_cast<const uint8_t*>(a.raw_data());
  const auto* pb = static_cast<const uint8_t*>(b.raw_data());
  return pa && pb && pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

Status write_bound(const std::string& name, const Value& v, Tensor& dest) {
  if (!v.is_tensor()) {
    return invalid_argument("output '" + name + "' is " + v.describe() +
                            ", not a tensor: it cannot be written into a preallocated tensor");
  }
  const Tensor& t = v.tensor();
  if (t.dtype() != dest.dtype() || t.dims() != dest.dims()) {
    return invalid_argument("output '" + name + "' is " + dtype_name(t.dtype()) + " " + dims_to_string(t.dims()) +
                            ", but its preallocated tensor is " + dtype_name(dest.dtype()) + " " +
                            dims_to_string(dest.dims()));
  }
  if (t.dtype() == DType::kString) {
    dest.mutable_strings() = t.strings();
  } else if (t.raw_data() != dest.raw_data() && t.nbytes()) {
    std::memmove(dest.raw_data(), t.raw_data(), t.nbytes());
  }
  return Status::ok();
}

}  // namespace kiln
