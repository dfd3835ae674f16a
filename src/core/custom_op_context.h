// kiln_op_context, the opaque context of custom_op.h: one implementation for kernels (src/runtime/custom_op_kernel.cc,
// over a KernelContext) and one for shape functions (src/onnx/custom_schemas.cc, over libonnx's InferenceContext).
// custom_op_api() (src/core/custom_ops.cc) calls these virtual functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/custom_op.h"

struct kiln_op_context {
  virtual ~kiln_op_context() = default;
  virtual const char* node_name() const = 0;
  virtual size_t input_count() const = 0;
  virtual size_t output_count() const = 0;
  virtual int input(size_t i, kiln_op_tensor* out) const = 0;
  virtual int attribute_int(const char* name, int64_t* out) const = 0;
  virtual int attribute_float(const char* name, float* out) const = 0;
  virtual int attribute_string(const char* name, const char** out, size_t* length) const = 0;
  virtual int attribute_ints(const char* name, const int64_t** out, size_t* count) const = 0;
  virtual int attribute_floats(const char* name, const float** out, size_t* count) const = 0;
  // Kernels only; the other kind of context records an error and returns null / nonzero.
  virtual void* allocate_output(size_t i, int32_t dtype, const int64_t* dims, size_t rank) = 0;
  // Shape functions only.
  virtual int set_output_type(size_t i, int32_t dtype, const int64_t* dims, int64_t rank,
                              const char* const* dim_names) = 0;
  virtual void parallel_for(int64_t n, void (*body)(void*, int64_t, int64_t), void* user) const {
    if (n > 0) body(user, 0, n);
  }
  // What the library reported through set_error, or what kiln recorded (a bad allocation request).
  void set_error(const char* message) { error = message ? message : "(no message)"; }
  std::string error;
};
