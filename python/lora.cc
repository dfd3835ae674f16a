// onnxruntime's AdapterFormat and LoraAdapter over kiln::LoraAdapter. One class serves both of onnxruntime's levels:
// the C-level properties (adapter_version, parameters, ...) and the Python-level get_/set_ methods.
#include "lora.h"

#include <string>
#include <utility>

#include "ort_value.h"

namespace kiln::python {
namespace {

std::string path_of(const py::object& p) { return py::module_::import("os").attr("fspath")(p).cast<std::string>(); }

py::dict parameters_of(const LoraAdapter& a) {
  py::dict d;
  for (const auto& [name, t] : a.parameters) d[py::str(name)] = PyOrtValue{Value(t), py::object()};
  return d;
}

void set_parameters(LoraAdapter& a, const py::dict& params) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto item : params) {
    const std::string name = py::str(item.first).cast<std::string>();
    py::handle v = item.second;
    if (py::hasattr(v, "_get_c_value")) v = v.attr("_get_c_value")();
    if (!py::isinstance<PyOrtValue>(v)) {
      throw py::type_error("adapter parameter '" + name + "' must be an OrtValue, not " +
                           std::string(py::str(v.get_type())));
    }
    out.emplace_back(name, v.cast<const PyOrtValue&>().tensor());
  }
  a.parameters = std::move(out);
}

}  // namespace

void bind_lora(py::module_& m) {
  py::class_<LoraAdapter>(m, "AdapterFormat")
      .def(py::init<>())
      .def_static(
          "read_adapter",
          [](py::object path) {
            const std::string p = path_of(path);
            StatusOr<LoraAdapter> a = [&] {
              py::gil_scoped_release nogil;
              return LoraAdapter::load(p);
            }();
            return value_or_raise(std::move(a));
          },
          py::arg("file_path"))
      .def(
          "export_adapter",
          [](const LoraAdapter& a, py::object path) {
            Status st = a.save(path_of(path));
            if (!st.is_ok()) raise(st);
          },
          py::arg("file_path"))
      .def_property_readonly("format_version", [](const LoraAdapter& a) { return a.format_version; })
      .def_readwrite("adapter_version", &LoraAdapter::adapter_version)
      .def_readwrite("model_version", &LoraAdapter::model_version)
      .def_property("parameters", &parameters_of, &set_parameters)
      .def("get_format_version", [](const LoraAdapter& a) { return a.format_version; })
      .def("get_adapter_version", [](const LoraAdapter& a) { return a.adapter_version; })
      .def(
          "set_adapter_version", [](LoraAdapter& a, int v) { a.adapter_version = v; }, py::arg("adapter_version"))
      .def("get_model_version", [](const LoraAdapter& a) { return a.model_version; })
      .def(
          "set_model_version", [](LoraAdapter& a, int v) { a.model_version = v; }, py::arg("model_version"))
      .def("get_parameters", &parameters_of)
      .def("set_parameters", &set_parameters, py::arg("params"));

  py::class_<PyLoraAdapter>(m, "LoraAdapter")
      .def(py::init<>())
      .def(
          "Load",
          [](PyLoraAdapter& self, py::object path) {
            const std::string p = path_of(path);
            StatusOr<LoraAdapter> a = [&] {
              py::gil_scoped_release nogil;
              return LoraAdapter::load(p);
            }();
            self.adapter = std::make_shared<const LoraAdapter>(value_or_raise(std::move(a)));
          },
          py::arg("adapter_file_path"), "Reads an adapter file (ONNX Runtime's .onnx_adapter format)")
      .def("get_parameters",
           [](const PyLoraAdapter& self) { return self.adapter ? parameters_of(*self.adapter) : py::dict(); });
}

}  // namespace kiln::python
