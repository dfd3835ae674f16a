// onnxruntime's C-level OrtValue and OrtValueVector (python/ort_value.cc).
#pragma once

#include <vector>

#include "module.h"

namespace kiln::python {

struct PyOrtValue {
  Value value;
  py::object keep;  // what the value's memory belongs to, when the value borrows it (a numpy array)
  // The tensor, or a TypeError saying what the value holds instead.
  const Tensor& tensor() const;
};

struct PyOrtValueVector {
  std::vector<PyOrtValue> values;
};

// A device given as a name ("cpu") or an OrtDevice, with an id: a ValueError unless it is the CPU.
void check_device(py::handle device, int device_id);
// An element type given as a numpy type (np.float32) or an ONNX type number (TensorProto.FLOAT).
DType element_type_of(py::handle element_type);

void bind_ort_value(py::module_& m);

}  // namespace kiln::python
