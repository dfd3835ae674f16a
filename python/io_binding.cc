// onnxruntime's C-level SessionIOBinding (onnxruntime.capi._pybind_state.SessionIOBinding); kiln/__init__.py wraps
// it in the Python-level IOBinding, as onnxruntime does. Inputs are bound once and read in place by every run.
// Outputs bound to memory (an OrtValue, or a pointer with its element type and shape) are written there in place by
// Session::run_into: with them, a steady-state run allocates no tensor memory. Outputs bound to a device only are
// allocated by each run and read with get_outputs() or copy_outputs_to_cpu().
#include "io_binding.h"

#include <algorithm>
#include <string>
#include <vector>

namespace kiln::python {
namespace {

std::string names_of(const std::vector<IoInfo>& infos) {
  std::string s;
  for (const auto& i : infos) s += (s.empty() ? "'" : ", '") + i.name + "'";
  return s;
}

const IoInfo* find(const std::vector<IoInfo>& infos, const std::string& name) {
  auto it = std::find_if(infos.begin(), infos.end(), [&](const IoInfo& i) { return i.name == name; });
  return it == infos.end() ? nullptr : &*it;
}

void check_input(const PyIOBinding& b, const std::string& name) {
  const ir::Graph& g = b.session->model().graph;
  const bool overridable = g.find_initializer(name) != nullptr &&
                           std::any_of(g.inputs.begin(), g.inputs.end(), [&](const auto& v) { return v.name == name; });
  if (!find(b.session->inputs(), name) && !overridable) {
    raise(invalid_argument("bind_input: '" + name +
                           "' is not an input of the model (inputs: " + names_of(b.session->inputs()) + ")"));
  }
}

void check_output(const PyIOBinding& b, const std::string& name) {
  if (!find(b.session->outputs(), name)) {
    raise(invalid_argument("bind_output: '" + name +
                           "' is not an output of the model (outputs: " + names_of(b.session->outputs()) + ")"));
  }
}

template <typename T>
void put(std::vector<std::pair<std::string, T>>& list, const std::string& name, T value) {
  for (auto& [n, v] : list) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  list.emplace_back(name, std::move(value));
}

// A tensor over memory the caller owns (a raw pointer on `device`, as onnxruntime's bind_input/bind_output take one).
PyOrtValue borrowed(const std::string& what, py::handle device, py::handle element_type,
                    const std::vector<int64_t>& shape, uintptr_t buffer_ptr) {
  check_device(device, 0);
  const DType t = element_type_of(element_type);
  if (t == DType::kString) throw py::type_error(what + ": string tensors cannot be bound to raw memory");
  for (int64_t d : shape) {
    if (d < 0) throw py::value_error(what + ": shape has a negative dimension (" + std::to_string(d) + ")");
  }
  if (buffer_ptr == 0) throw py::value_error(what + ": buffer_ptr is null");
  return PyOrtValue{Value(Tensor::borrow(t, shape, reinterpret_cast<void*>(buffer_ptr))), py::object()};
}

}  // namespace

void run_with_iobinding(PyIOBinding& b, const kiln::RunOptions* options) {
  NamedValues feeds;
  for (const auto& [name, v] : b.inputs) feeds.emplace_back(name, v.value);
  std::vector<std::string> names;
  std::vector<Value> outs;
  for (const auto& [name, v] : b.outputs) {
    names.push_back(name);
    outs.push_back(v.value);  // a tensor: written in place; undefined: allocated by the run
  }
  if (names.empty()) {
    for (const auto& o : b.session->outputs()) names.push_back(o.name);
    outs.clear();
  }
  Status st;
  {
    py::gil_scoped_release nogil;
    st = b.session->run_into(feeds, names, outs, options);
  }
  feeds.clear();
  if (!st.is_ok()) raise(st);
  b.results.clear();
  for (size_t i = 0; i < outs.size(); ++i) {
    // An output written in place keeps what its memory belongs to (the OrtValue's array) alive with it.
    py::object keep = i < b.outputs.size() ? b.outputs[i].second.keep : py::object();
    b.results.push_back(PyOrtValue{std::move(outs[i]), keep});
  }
}

void bind_io_binding(py::module_& m) {
  py::class_<PyIOBinding>(m, "SessionIOBinding")
      .def(py::init([](py::object session) {
             BoundSession bs = bound_session(session);
             PyIOBinding b;
             b.owner = session;
             b.session = bs.session;
             b.convert = bs.convert;
             return b;
           }),
           py::arg("session"))
      .def(
          "bind_input",
          [](PyIOBinding& b, const std::string& name, py::object array) {
            check_input(b, name);
            put(b.inputs, name, PyOrtValue{b.convert(b.owner, name, array), array});
          },
          py::arg("name"), py::arg("arr_on_cpu"))
      .def(
          "bind_input",
          [](PyIOBinding& b, const std::string& name, py::object device, py::object element_type,
             std::vector<int64_t> shape, uintptr_t buffer_ptr) {
            check_input(b, name);
            put(b.inputs, name, borrowed("bind_input '" + name + "'", device, element_type, shape, buffer_ptr));
          },
          py::arg("name"), py::arg("device"), py::arg("element_type"), py::arg("shape"), py::arg("buffer_ptr"))
      .def(
          "bind_ortvalue_input",
          [](PyIOBinding& b, const std::string& name, const PyOrtValue& v) {
            check_input(b, name);
            put(b.inputs, name, v);
          },
          py::arg("name"), py::arg("ortvalue"))
      .def(
          "bind_output",
          [](PyIOBinding& b, const std::string& name, py::object device) {
            check_output(b, name);
            if (!device.is_none()) check_device(device, 0);
            put(b.outputs, name, PyOrtValue{Value(), py::object()});
          },
          py::arg("name"), py::arg("device") = py::none())
      .def(
          "bind_output",
          [](PyIOBinding& b, const std::string& name, py::object device, py::object element_type,
             std::vector<int64_t> shape, uintptr_t buffer_ptr) {
            check_output(b, name);
            put(b.outputs, name, borrowed("bind_output '" + name + "'", device, element_type, shape, buffer_ptr));
          },
          py::arg("name"), py::arg("device"), py::arg("element_type"), py::arg("shape"), py::arg("buffer_ptr"))
      .def(
          "bind_ortvalue_output",
          [](PyIOBinding& b, const std::string& name, const PyOrtValue& v) {
            check_output(b, name);
            if (!v.value.is_tensor()) {
              throw py::type_error("bind_ortvalue_output '" + name + "': the OrtValue holds " + v.value.describe() +
                                   "; an output is bound to a tensor");
            }
            put(b.outputs, name, v);
          },
          py::arg("name"), py::arg("ortvalue"))
      // The CPU needs no synchronization: these exist for code written for GPUs.
      .def("synchronize_inputs", [](PyIOBinding&) {})
      .def("synchronize_outputs", [](PyIOBinding&) {})
      .def("get_outputs",
           [](const PyIOBinding& b) {
             PyOrtValueVector v;
             v.values = b.results;
             return v;
           })
      .def("copy_outputs_to_cpu",
           [](const PyIOBinding& b) {
             // Copies, as onnxruntime's are: the arrays stay valid when later runs write the bound memory again.
             py::list out;
             for (const auto& r : b.results) {
               py::object a = python_from_value(r.value);
               out.append(py::isinstance<py::array>(a) ? a.attr("copy")() : a);
             }
             return out;
           })
      .def("clear_binding_inputs", [](PyIOBinding& b) { b.inputs.clear(); })
      .def("clear_binding_outputs", [](PyIOBinding& b) {
        b.outputs.clear();
        b.results.clear();
      });
}

}  // namespace kiln::python
