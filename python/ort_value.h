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

void bind_ort_value(py::module_& m);

}  // namespace kiln::python
