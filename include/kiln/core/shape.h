// Shape: a list of dimensions, each known (an integer), symbolic (a name such as "batch") or unknown.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

class Dim {
 public:
  Dim() = default;                                            // unknown
  Dim(int64_t value) : value_(value), kind_(Kind::kKnown) {}  // NOLINT(google-explicit-constructor)
  static Dim symbolic(std::string name) {
    Dim d;
    d.kind_ = Kind::kSymbolic;
    d.symbol_ = std::move(name);
    return d;
  }

  bool is_known() const { return kind_ == Kind::kKnown; }
  bool is_symbolic() const { return kind_ == Kind::kSymbolic; }
  bool is_unknown() const { return kind_ == Kind::kUnknown; }
  int64_t value() const { return value_; }
  const std::string& symbol() const { return symbol_; }
  // "3", "batch" or "?"
  std::string to_string() const;

  bool operator==(const Dim& o) const { return kind_ == o.kind_ && value_ == o.value_ && symbol_ == o.symbol_; }

 private:
  enum class Kind { kUnknown, kKnown, kSymbolic };
  int64_t value_ = 0;
  Kind kind_ = Kind::kUnknown;
  std::string symbol_;
};

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<Dim> dims) : dims_(dims) {}
  explicit Shape(std::vector<Dim> dims) : dims_(std::move(dims)) {}
  static Shape from_dims(const std::vector<int64_t>& dims);

  size_t rank() const { return dims_.size(); }
  const Dim& operator[](size_t i) const { return dims_[i]; }
  Dim& operator[](size_t i) { return dims_[i]; }
  const std::vector<Dim>& dims() const { return dims_; }
  void push_back(Dim d) { dims_.push_back(std::move(d)); }

  // True when every dimension is a known integer.
  bool is_static() const;
  // The integer dims when is_static(), otherwise nullopt.
  std::optional<std::vector<int64_t>> static_dims() const;
  // Product of the dims when static (1 for rank 0), otherwise nullopt.
  std::optional<int64_t> num_elements() const;
  // "[1,3,h,w]" ("[]" for a scalar).
  std::string to_string() const;

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }

 private:
  std::vector<Dim> dims_;
};

// "[1,3,224,224]" for plain integer dims.
std::string dims_to_string(const std::vector<int64_t>& dims);
// Product of dims, or nullopt on a negative dim or int64 overflow.
std::optional<int64_t> checked_num_elements(const std::vector<int64_t>& dims);

}  // namespace kiln
