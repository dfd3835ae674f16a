#include "kiln/core/tensor.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace kiln {

StatusOr<Tensor> Tensor::allocate(DType dtype, std::vector<int64_t> dims, Allocator* alloc) {
  auto n = checked_num_elements(dims);
  if (!n) return invalid_argument("cannot allocate a tensor of shape " + dims_to_string(dims));
  // Refused before anything is allocated: more than the machine's memory, or over the thread's guard (a run's
  // memory limit).
  const size_t per = dtype == DType::kString ? sizeof(std::string) : dtype_storage_bytes(dtype, 1);
  size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<size_t>(*n), std::max<size_t>(per, 1), &bytes)) bytes = SIZE_MAX;
  const std::string what = std::string(dtype_name(dtype)) + " " + dims_to_string(dims);
  if (bytes > physical_memory_bytes()) {
    return resource_exhausted("a tensor of " + what + " would take " + std::to_string(bytes) + " bytes (" +
                              human_bytes(static_cast<double>(bytes)) + "), more than this machine's " +
                              human_bytes(static_cast<double>(physical_memory_bytes())) + " of memory");
  }
  if (AllocationGuard* guard = AllocationGuard::current()) KILN_RETURN_IF_ERROR(guard->allow(bytes, what));
  Tensor t;
  t.dtype_ = dtype;
  t.set_dims(std::move(dims));
  if (dtype == DType::kString) {
    t.strings_ = std::make_shared<std::vector<std::string>>(static_cast<size_t>(*n));
    return t;
  }
  KILN_ASSIGN_OR_RETURN(t.buffer_, Buffer::allocate(dtype_storage_bytes(dtype, *n), alloc));
  t.data_ = t.buffer_->data();
  return t;
}

Tensor Tensor::borrow(DType dtype, std::vector<int64_t> dims, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.set_dims(std::move(dims));
  t.data_ = data;
  return t;
}

Tensor Tensor::from_buffer(DType dtype, std::vector<int64_t> dims, std::shared_ptr<Buffer> buffer, size_t offset) {
  Tensor t;
  t.dtype_ = dtype;
  t.set_dims(std::move(dims));
  t.data_ = buffer->data() + offset;
  t.buffer_ = std::move(buffer);
  return t;
}

Tensor Tensor::from_strings(std::vector<int64_t> dims, std::vector<std::string> values) {
  Tensor t;
  t.dtype_ = DType::kString;
  t.set_dims(std::move(dims));
  t.strings_ = std::make_shared<std::vector<std::string>>(std::move(values));
  return t;
}

void Tensor::set_dims(std::vector<int64_t> dims) {
  dims_ = std::move(dims);
  auto n = checked_num_elements(dims_);
  numel_ = n ? *n : 0;
}

Tensor Tensor::reshaped(std::vector<int64_t> dims) const {
  Tensor t = *this;
  t.set_dims(std::move(dims));
  return t;
}

StatusOr<Tensor> Tensor::clone() const {
  if (dtype_ == DType::kString) return from_strings(dims_, strings_ ? *strings_ : std::vector<std::string>{});
  KILN_ASSIGN_OR_RETURN(Tensor t, allocate(dtype_, dims_));
  if (nbytes() && data_) std::memcpy(t.data_, data_, nbytes());
  return t;
}

bool Tensor::equals(const Tensor& other) const {
  if (dtype_ != other.dtype_ || dims_ != other.dims_) return false;
  if (dtype_ == DType::kString) return to_vector<std::string>() == other.to_vector<std::string>();
  size_t n = nbytes();
  if (n == 0) return true;
  if (!data_ || !other.data_) return data_ == other.data_;
  return std::memcmp(data_, other.data_, n) == 0;
}

}  // namespace kiln
