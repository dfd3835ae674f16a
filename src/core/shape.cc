#include "kiln/core/shape.h"

namespace kiln {

std::string Dim::to_string() const {
  switch (kind_) {
    case Kind::kKnown: return std::to_string(value_);
    case Kind::kSymbolic: return symbol_;
    case Kind::kUnknown: break;
  }
  return "?";
}

Shape Shape::from_dims(const std::vector<int64_t>& dims) {
  Shape s;
  for (int64_t d : dims) s.dims_.emplace_back(d);
  return s;
}

bool Shape::is_static() const {
  for (const auto& d : dims_) {
    if (!d.is_known()) return false;
  }
  return true;
}

std::optional<std::vector<int64_t>> Shape::static_dims() const {
  if (!is_static()) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(dims_.size());
  for (const auto& d : dims_) out.push_back(d.value());
  return out;
}

std::optional<int64_t> Shape::num_elements() const {
  auto dims = static_dims();
  if (!dims) return std::nullopt;
  return checked_num_elements(*dims);
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ",";
    s += dims_[i].to_string();
  }
  return s + "]";
}

std::string dims_to_string(const std::vector<int64_t>& dims) { return Shape::from_dims(dims).to_string(); }

std::optional<int64_t> checked_num_elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return std::nullopt;
    if (d != 0 && n > INT64_MAX / d) return std::nullopt;
    n *= d;
  }
  return n;
}

}  // namespace kiln
