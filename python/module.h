// The Python module's shared pieces (python/convert.cc): errors as onnxruntime's exception classes, dtypes, numpy
// arrays to and from tensors; and the functions that bind each part of the API.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <utility>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"
#include "kiln/core/value.h"
#include "kiln/ir/graph.h"

namespace py = pybind11;

namespace kiln::python {

// onnxruntime's exception classes (onnxruntime.capi.onnxruntime_pybind11_state), all RuntimeErrors.
struct Errors {
  py::object fail, invalid_argument, no_such_file, invalid_graph, not_implemented, runtime_exception;
};
extern Errors* errors;

// Raises the status as the onnxruntime exception class of its code.
[[noreturn]] void raise(const Status& s);

template <typename T>
T value_or_raise(StatusOr<T> s) {
  if (!s.is_ok()) raise(s.status());
  return std::move(s).value();
}

// "tensor(float)", "seq(tensor(int64))", ...
std::string onnx_type(const ir::Type& t);
// numpy dtype -> kiln dtype (kUndefined when kiln has no equivalent), and back.
DType dtype_of(const py::dtype& d);
py::dtype numpy_dtype(DType t);
// A tensor over a numpy array (zero-copy when C-contiguous and aligned; strings are copied); errors name `name`.
Tensor tensor_from_numpy(const std::string& name, py::handle obj);
// A numpy array over the tensor's buffer (kept alive by the array).
py::object numpy_from_tensor(const Tensor& t);
py::object python_from_value(const Value& v);

void bind_sdk(py::module_& m);

}  // namespace kiln::python
