#include "kiln/core/value.h"

#include "kiln/core/shape.h"

namespace kiln {

Value Value::sequence(std::vector<Tensor> items, DType elem_type) {
  Value v;
  v.kind_ = Kind::kSequence;
  v.items_ = std::move(items);
  v.elem_type_ = elem_type;
  return v;
}

Value Value::none(std::string element) {
  Value v;
  v.kind_ = Kind::kNone;
  v.optional_ = true;
  v.none_element_ = std::move(element);
  return v;
}

Value Value::as_optional() const {
  Value v = *this;
  v.optional_ = true;
  return v;
}

std::string Value::describe() const {
  std::string s;
  switch (kind_) {
    case Kind::kTensor:
      s = std::string("tensor(") + dtype_name(tensor_.dtype()) + ")" + dims_to_string(tensor_.dims());
      break;
    case Kind::kSequence:
      s = std::string("seq(tensor(") + dtype_name(elem_type_) + ")) of " + std::to_string(items_.size());
      break;
    case Kind::kNone:
      return optional_ ? "optional(none" + (none_element_.empty() ? "" : ": " + none_element_) + ")" : "no value";
  }
  return optional_ ? "optional(" + s + ")" : s;
}

}  // namespace kiln
