// The DLPack exchange ABI (dmlc/dlpack, v0.8 layout of DLManagedTensor), as its C structs: a tensor handed between
// libraries in a PyCapsule named "dltensor" (renamed "used_dltensor" by the consumer, who then owns it and calls its
// deleter when done). Only what kiln's OrtValue.to_dlpack/from_dlpack need: CPU memory, compact row-major tensors.
#pragma once

#include <cstdint>

extern "C" {

struct DLDevice {
  int32_t device_type;  // 1: kDLCPU
  int32_t device_id;
};

struct DLDataType {
  uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat, 5 complex, 6 bool
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL: compact row-major
  uint64_t byte_offset;
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

}  // extern "C"

namespace kiln::python::dlpack {

constexpr int32_t kDLCPU = 1;
constexpr uint8_t kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLComplex = 5, kDLBool = 6;

}  // namespace kiln::python::dlpack
