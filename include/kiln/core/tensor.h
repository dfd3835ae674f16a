// Tensor: a dtype, integer dims and the bytes (row-major, little-endian, packed for 4-bit types),
// either owned (shared, cheap to copy) or borrowed. String tensors hold std::string elements.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/core/allocator.h"
#include "kiln/core/dtype.h"
#include "kiln/core/shape.h"
#include "kiln/core/status.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;

  // A zero-filled tensor. Fails on negative dims, overflow or out of memory.
  static StatusOr<Tensor> allocate(DType dtype, std::vector<int64_t> dims, Allocator* alloc = nullptr);
  // A view of caller-owned memory; the caller keeps it alive while the tensor is used.
  static Tensor borrow(DType dtype, std::vector<int64_t> dims, void* data);
  // A view into `buffer` at `offset` (the buffer stays alive as long as the tensor).
  static Tensor from_buffer(DType dtype, std::vector<int64_t> dims, std::shared_ptr<Buffer> buffer, size_t offset = 0);
  static Tensor from_strings(std::vector<int64_t> dims, std::vector<std::string> values);

  // Copies `values` into a new tensor of dtype DTypeOf<T> (numpy_helper.from_array).
  template <typename T>
  static Tensor from_vector(std::vector<int64_t> dims, const std::vector<T>& values);
  // Copies the elements out (numpy_helper.to_array); T must match the dtype's storage.
  template <typename T>
  std::vector<T> to_vector() const;

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  Shape shape() const { return Shape::from_dims(dims_); }
  size_t rank() const { return dims_.size(); }
  int64_t num_elements() const { return numel_; }
  // Bytes of element data (0 for string tensors).
  size_t nbytes() const { return dtype_storage_bytes(dtype_, num_elements()); }

  void* raw_data() { return data_; }
  const void* raw_data() const { return data_; }
  template <typename T>
  T* data() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(data_);
  }

  // The buffer that owns the bytes (shared by views such as reshaped()); nullptr for borrowed memory and strings.
  const Buffer* buffer() const { return buffer_.get(); }

  const std::vector<std::string>& strings() const { return *strings_; }
  std::vector<std::string>& mutable_strings() { return *strings_; }

  // The same elements (shared, not copied) under other dims with the same element count.
  Tensor reshaped(std::vector<int64_t> dims) const;
  // A deep copy that owns its bytes.
  StatusOr<Tensor> clone() const;
  // Same dtype, dims and element bytes (or strings).
  bool equals(const Tensor& other) const;

 private:
  void set_dims(std::vector<int64_t> dims);

  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> dims_;
  int64_t numel_ = 1;  // product of dims_ (0 on overflow), kept with dims_
  void* data_ = nullptr;
  std::shared_ptr<Buffer> buffer_;
  std::shared_ptr<std::vector<std::string>> strings_;
};

template <typename T>
Tensor Tensor::from_vector(std::vector<int64_t> dims, const std::vector<T>& values) {
  if constexpr (std::is_same_v<T, std::string>) {
    return from_strings(std::move(dims), values);
  } else {
    auto t = allocate(DTypeOf<T>::value, std::move(dims));
    if (!t.is_ok()) return Tensor();
    size_t n = std::min(static_cast<size_t>(t->num_elements()), values.size());
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < n; ++i) t->template data<uint8_t>()[i] = values[i] ? 1 : 0;
    } else {
      if (n) std::memcpy(t->raw_data(), values.data(), n * sizeof(T));
    }
    return std::move(t).value();
  }
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  if constexpr (std::is_same_v<T, std::string>) {
    return strings_ ? *strings_ : std::vector<std::string>{};
  } else {
    auto n = static_cast<size_t>(num_elements());
    std::vector<T> out(n);
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < n; ++i) out[i] = data<uint8_t>()[i] != 0;
    } else {
      if (n && data_) std::memcpy(out.data(), data_, n * sizeof(T));
    }
    return out;
  }
}

}  // namespace kiln
