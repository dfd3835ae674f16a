// onnxruntime's C-level OrtValue and OrtValueVector (onnxruntime.capi._pybind_state): a value kiln's runtime takes
// and gives without numpy conversions. kiln/_ort.py wraps them in the Python-level OrtValue, as onnxruntime does.
#include "ort_value.h"

#include <cstring>
#include <string>
#include <vector>

namespace kiln::python {

void check_device(py::handle device, int device_id) {
  if (!py::isinstance<py::str>(device)) {
    // An OrtDevice: its type number (0 is the CPU) and id.
    if (!py::hasattr(device, "device_type") || !py::hasattr(device, "device_id")) {
      throw py::type_error("a device is a name (\"cpu\") or an OrtDevice, not " +
                           std::string(py::str(device.get_type())));
    }
    const int type = device.attr("device_type")().cast<int>();
    if (type != 0) {
      throw py::value_error("device type " + std::to_string(type) + " is not available: kiln runs on the CPU (" +
                            "OrtDevice.cpu(), 0)");
    }
    device_id = device.attr("device_id")().cast<int>();
  } else {
    const std::string name = device.cast<std::string>();
    if (name != "cpu" && name != "CPU") {
      throw py::value_error("device '" + name + "' is not available: kiln runs on the CPU (\"cpu\")");
    }
  }
  if (device_id != 0) throw py::value_error("device_id " + std::to_string(device_id) + ": the CPU is device 0");
}

DType element_type_of(py::handle element_type) {
  if (py::isinstance<py::int_>(element_type)) {
    const int code = element_type.cast<int>();
    const auto t = static_cast<DType>(code);
    if (!dtype_is_valid(code) || t == DType::kUndefined || (t != DType::kString && dtype_storage_bytes(t, 1) == 0)) {
      throw py::value_error("onnx element type " + std::to_string(code) + " is not one kiln takes");
    }
    return t;
  }
  const py::dtype d = py::dtype::from_args(py::reinterpret_borrow<py::object>(element_type));
  const DType t = dtype_of(d);
  if (t == DType::kUndefined) {
    throw py::type_error("element type " + std::string(py::str(element_type)) + " has no ONNX equivalent kiln takes");
  }
  return t;
}

const Tensor& PyOrtValue::tensor() const {
  if (!value.is_tensor()) throw py::type_error("the OrtValue holds " + value.describe() + ", not a tensor");
  return value.tensor();
}

void bind_ort_value(py::module_& m) {
  py::class_<PyOrtValue>(m, "OrtValue")
      .def_static(
          "ortvalue_from_numpy",
          [](py::object array, py::object device_type, int device_id) {
            check_device(device_type, device_id);
            // Zero-copy, as onnxruntime on the CPU: the tensor views the array and keeps it alive.
            return PyOrtValue{Value(tensor_from_numpy("ortvalue", array)), py::object()};
          },
          py::arg("array"), py::arg("device_type") = py::str("cpu"), py::arg("device_id") = 0)
      .def_static(
          "ortvalue_from_numpy_with_onnx_type",
          [](py::array array, int onnx_element_type) {
            const DType want = static_cast<DType>(onnx_element_type);
            if (!dtype_is_valid(onnx_element_type) || dtype_storage_bytes(want, 1) == 0) {
              throw py::value_error("onnx element type " + std::to_string(onnx_element_type) +
                                    " is not one kiln takes");
            }
            // The array's bytes reinterpreted as the ONNX type (bfloat16 from uint16, float8 from uint8, ...), in
            // place: the value keeps the (C-contiguous) array alive.
            py::array c = py::array::ensure(array, py::array::c_style);
            std::vector<int64_t> dims(c.shape(), c.shape() + c.ndim());
            int64_t n = 1;
            for (int64_t d : dims) n *= d;
            if (dtype_storage_bytes(want, n) != static_cast<size_t>(c.nbytes())) {
              throw py::value_error("the array holds " + std::to_string(c.nbytes()) + " bytes; " + std::to_string(n) +
                                    " elements of " + dtype_name(want) + " take " +
                                    std::to_string(dtype_storage_bytes(want, n)));
            }
            return PyOrtValue{Value(Tensor::borrow(want, std::move(dims), c.mutable_data())), c};
          },
          py::arg("array"), py::arg("onnx_element_type"))
      .def_static(
          "ortvalue_from_shape_and_type",
          [](std::vector<int64_t> shape, py::object element_type, py::object device_type, int device_id) {
            check_device(device_type, device_id);
            return PyOrtValue{Value(value_or_raise(Tensor::allocate(element_type_of(element_type), std::move(shape)))),
                              py::object()};
          },
          py::arg("shape"), py::arg("element_type"), py::arg("device_type") = py::str("cpu"), py::arg("device_id") = 0)
      .def("numpy", [](const PyOrtValue& v) { return python_from_value(v.value); })
      // onnxruntime's Python OrtValue wraps a C-level one (`_ortvalue`, `_get_c_value()`); here both are this object.
      .def("_get_c_value", [](py::object self) { return self; })
      .def_property_readonly("_ortvalue", [](py::object self) { return self; })
      .def("shape",
           [](const PyOrtValue& v) { return std::vector<int64_t>(v.tensor().dims().begin(), v.tensor().dims().end()); })
      .def("data_type",
           [](const PyOrtValue& v) {
             return v.value.is_tensor()     ? std::string("tensor(") + dtype_name(v.value.tensor().dtype()) + ")"
                    : v.value.is_sequence() ? std::string("seq(tensor(") + dtype_name(v.value.elem_type()) + "))"
                                            : std::string("optional");
           })
      .def("element_type", [](const PyOrtValue& v) { return static_cast<int>(v.tensor().dtype()); })
      .def("has_value", [](const PyOrtValue& v) { return !v.value.is_none(); })
      .def("is_tensor", [](const PyOrtValue& v) { return v.value.is_tensor(); })
      .def("is_sparse_tensor", [](const PyOrtValue&) { return false; })
      .def("as_sparse_tensor",
           [](const PyOrtValue& v) -> py::object {
             throw py::type_error("the OrtValue holds " + v.value.describe() +
                                  ", not a sparse tensor (OrtValue.ort_value_from_sparse_tensor makes one)");
           })
      .def("is_tensor_sequence", [](const PyOrtValue& v) { return v.value.is_sequence(); })
      .def("device_name", [](const PyOrtValue&) { return std::string("cpu"); })
      .def("tensor_size_in_bytes", [](const PyOrtValue& v) { return v.tensor().nbytes(); })
      .def("data_ptr", [](const PyOrtValue& v) { return reinterpret_cast<uintptr_t>(v.tensor().raw_data()); })
      .def(
          "update_inplace",
          [](PyOrtValue& v, py::array array) {
            const Tensor& t = v.tensor();
            Tensor src = tensor_from_numpy("update_inplace", array);
            if (src.dtype() != t.dtype() || src.num_elements() != t.num_elements()) {
              throw py::value_error("update_inplace: the array has " + std::to_string(src.num_elements()) + " " +
                                    dtype_name(src.dtype()) + " elements; the OrtValue holds " +
                                    std::to_string(t.num_elements()) + " " + dtype_name(t.dtype()));
            }
            std::memcpy(const_cast<void*>(t.raw_data()), src.raw_data(), t.nbytes());
          },
          py::arg("np_arr"));

  py::class_<PyOrtValueVector>(m, "OrtValueVector")
      .def(py::init<>())
      .def("__len__", [](const PyOrtValueVector& v) { return v.values.size(); })
      .def("__getitem__",
           [](const PyOrtValueVector& v, py::ssize_t i) {
             const auto n = static_cast<py::ssize_t>(v.values.size());
             if (i < 0) i += n;
             if (i < 0 || i >= n) throw py::index_error("OrtValueVector index out of range");
             return v.values[static_cast<size_t>(i)];
           })
      .def("__iter__",
           [](const PyOrtValueVector& v) {
             py::list items;
             for (const auto& x : v.values) items.append(x);
             return py::iter(items);
           })
      .def("push_back", [](PyOrtValueVector& v, const PyOrtValue& x) { v.values.push_back(x); })
      .def("reserve", [](PyOrtValueVector& v, size_t n) { v.values.reserve(n); })
      .def("numpy", [](const PyOrtValueVector& v) {
        py::list out;
        for (const auto& x : v.values) out.append(python_from_value(x.value));
        return out;
      });
}

}  // namespace kiln::python
