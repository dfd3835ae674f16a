// onnxruntime's C-level SessionIOBinding (python/io_binding.cc): inputs and outputs bound to a session ahead of its
// runs; outputs bound to preallocated memory are written in place.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kiln/runtime/session.h"
#include "ort_value.h"

namespace kiln::python {

// What a binding needs of the Python InferenceSession it was made for (python/kiln_module.cc).
struct BoundSession {
  const Session* session = nullptr;
  // The session's conversion of a Python object fed as input `name` (lists to the declared type, ...).
  Value (*convert)(py::handle session, const std::string& name, py::handle obj) = nullptr;
};
BoundSession bound_session(py::handle inference_session);

struct PyIOBinding {
  py::object owner;  // the InferenceSession, kept alive while the binding is
  const Session* session = nullptr;
  Value (*convert)(py::handle session, const std::string& name, py::handle obj) = nullptr;  // BoundSession's
  std::vector<std::pair<std::string, PyOrtValue>> inputs;
  // In the order bound; an output bound to memory holds its tensor, one bound to a device only holds nothing.
  std::vector<std::pair<std::string, PyOrtValue>> outputs;
  std::vector<PyOrtValue> results;  // the last run's outputs, in the order the outputs were bound
};

// Runs `binding`'s session on its inputs into its outputs (InferenceSession.run_with_iobinding).
void run_with_iobinding(PyIOBinding& binding, const kiln::RunOptions* options);

void bind_io_binding(py::module_& m);

}  // namespace kiln::python
