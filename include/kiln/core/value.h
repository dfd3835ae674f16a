// A runtime value: a tensor, a sequence of tensors, or an optional that holds one of those or nothing.
// Tensors share their buffers on copy, so copying a Value (or a sequence) copies no element data.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kiln/core/tensor.h"

namespace kiln {

class Value {
 public:
  enum class Kind { kTensor, kSequence, kNone };  // kNone: an optional without a value

  Value() = default;                                                // undefined: kNone, not optional
  Value(Tensor t) : kind_(Kind::kTensor), tensor_(std::move(t)) {}  // NOLINT: tensors convert implicitly

  static Value tensor(Tensor t) { return Value(std::move(t)); }
  // elem_type: the element dtype, kept so an empty sequence still knows it.
  static Value sequence(std::vector<Tensor> items, DType elem_type);
  // An optional with no value; `element` describes what it would hold ("tensor(float)", "seq(tensor(int64))").
  static Value none(std::string element);
  // The same value, marked as held by an optional.
  Value as_optional() const;

  Kind kind() const { return kind_; }
  bool is_tensor() const { return kind_ == Kind::kTensor; }
  bool is_sequence() const { return kind_ == Kind::kSequence; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_optional() const { return optional_ || kind_ == Kind::kNone; }
  bool defined() const { return kind_ != Kind::kNone || optional_; }

  const Tensor& tensor() const { return tensor_; }
  Tensor& mutable_tensor() { return tensor_; }
  const std::vector<Tensor>& items() const { return items_; }
  DType elem_type() const { return is_tensor() ? tensor_.dtype() : elem_type_; }
  const std::string& none_element() const { return none_element_; }

  // "tensor(float)[2,3]", "seq(tensor(int64)) of 3", "optional(none: tensor(float))".
  std::string describe() const;

 private:
  Kind kind_ = Kind::kNone;
  bool optional_ = false;
  Tensor tensor_;
  std::vector<Tensor> items_;
  DType elem_type_ = DType::kUndefined;
  std::string none_element_;
};

using NamedValues = std::vector<std::pair<std::string, Value>>;

}  // namespace kiln
