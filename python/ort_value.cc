// onnxruntime's C-level OrtValue and OrtValueVector (onnxruntime.capi._pybind_state): a value kiln's runtime takes
// and gives without numpy conversions. kiln/_ort.py wraps them in the Python-level OrtValue, as onnxruntime does.
#include "ort_value.h"

#include <utility>

#include "dlpack.h"

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

namespace {

// kiln dtype <-> DLPack dtype (bool travels as uint8, as onnxruntime exports it; from_dlpack's is_bool_tensor says
// which).
bool to_dl_dtype(DType t, DLDataType& d) {
  using namespace dlpack;
  d.lanes = 1;
  switch (t) {
    case DType::kFloat32:
      d.code = kDLFloat;
      d.bits = 32;
      return true;
    case DType::kFloat64:
      d.code = kDLFloat;
      d.bits = 64;
      return true;
    case DType::kFloat16:
      d.code = kDLFloat;
      d.bits = 16;
      return true;
    case DType::kBFloat16:
      d.code = kDLBfloat;
      d.bits = 16;
      return true;
    case DType::kInt8:
      d.code = kDLInt;
      d.bits = 8;
      return true;
    case DType::kInt16:
      d.code = kDLInt;
      d.bits = 16;
      return true;
    case DType::kInt32:
      d.code = kDLInt;
      d.bits = 32;
      return true;
    case DType::kInt64:
      d.code = kDLInt;
      d.bits = 64;
      return true;
    case DType::kUInt8:
    case DType::kBool:
      d.code = kDLUInt;
      d.bits = 8;
      return true;
    case DType::kUInt16:
      d.code = kDLUInt;
      d.bits = 16;
      return true;
    case DType::kUInt32:
      d.code = kDLUInt;
      d.bits = 32;
      return true;
    case DType::kUInt64:
      d.code = kDLUInt;
      d.bits = 64;
      return true;
    case DType::kComplex64:
      d.code = kDLComplex;
      d.bits = 64;
      return true;
    case DType::kComplex128:
      d.code = kDLComplex;
      d.bits = 128;
      return true;
    default: return false;
  }
}

DType from_dl_dtype(const DLDataType& d, bool is_bool) {
  using namespace dlpack;
  if (d.lanes != 1) return DType::kUndefined;
  for (DType t : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt8, DType::kInt16,
                  DType::kInt32, DType::kInt64, DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64,
                  DType::kComplex64, DType::kComplex128}) {
    DLDataType e{};
    if (to_dl_dtype(t, e) && e.code == d.code && e.bits == d.bits)
      return t == DType::kUInt8 && is_bool ? DType::kBool : t;
  }
  if (d.code == kDLBool && d.bits == 8) return DType::kBool;
  return DType::kUndefined;
}

// What a DLManagedTensor made by to_dlpack owns: the value (which keeps the bytes alive) and the shape.
struct Exported {
  PyOrtValue value;
  std::vector<int64_t> shape;
  DLManagedTensor managed{};
};

void delete_exported(DLManagedTensor* m) {
  auto* e = static_cast<Exported*>(m->manager_ctx);
  py::gil_scoped_acquire gil;  // the value may hold a numpy array
  delete e;
}

py::capsule to_dlpack(const PyOrtValue& v) {
  const Tensor& t = v.tensor();
  auto e = std::make_unique<Exported>();
  e->value = v;
  e->shape.assign(t.dims().begin(), t.dims().end());
  DLTensor& dl = e->managed.dl_tensor;
  if (!to_dl_dtype(t.dtype(), dl.dtype)) {
    throw py::type_error(std::string("a tensor of ") + dtype_name(t.dtype()) + " has no DLPack form");
  }
  dl.data = const_cast<void*>(t.raw_data());
  dl.device = {dlpack::kDLCPU, 0};
  dl.ndim = static_cast<int32_t>(e->shape.size());
  dl.shape = e->shape.data();
  dl.strides = nullptr;
  dl.byte_offset = 0;
  e->managed.manager_ctx = e.get();
  e->managed.deleter = delete_exported;
  DLManagedTensor* m = &e.release()->managed;
  // A capsule nobody consumed still owns the tensor.
  return py::capsule(m, "dltensor", [](PyObject* cap) {
    if (PyCapsule_IsValid(cap, "dltensor")) {
      auto* mt = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
      if (mt && mt->deleter) mt->deleter(mt);
    }
  });
}

DLManagedTensor* capsule_tensor(py::handle cap) {
  if (!PyCapsule_IsValid(cap.ptr(), "dltensor")) {
    throw py::type_error("expected a DLPack capsule named \"dltensor\" (one not consumed yet)");
  }
  return static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), "dltensor"));
}

PyOrtValue from_dlpack(py::object obj, bool is_bool) {
  if (!PyCapsule_CheckExact(obj.ptr())) {
    if (!py::hasattr(obj, "__dlpack__")) {
      throw py::type_error("from_dlpack takes a DLPack capsule or an object with __dlpack__, not " +
                           std::string(py::str(obj.get_type())));
    }
    obj = obj.attr("__dlpack__")();
  }
  DLManagedTensor* m = capsule_tensor(obj);
  const DLTensor& dl = m->dl_tensor;
  if (dl.device.device_type != dlpack::kDLCPU) {
    throw py::value_error("the DLPack tensor is on device type " + std::to_string(dl.device.device_type) +
                          "; kiln takes CPU tensors (device type 1)");
  }
  const DType dtype = from_dl_dtype(dl.dtype, is_bool);
  if (dtype == DType::kUndefined) {
    throw py::type_error("DLPack dtype (code " + std::to_string(dl.dtype.code) + ", " + std::to_string(dl.dtype.bits) +
                         " bits, " + std::to_string(dl.dtype.lanes) + " lanes) has no ONNX equivalent kiln takes");
  }
  std::vector<int64_t> dims(dl.shape, dl.shape + dl.ndim);
  if (dl.strides) {
    int64_t expect = 1;
    for (int32_t i = dl.ndim - 1; i >= 0; --i) {
      if (dims[static_cast<size_t>(i)] != 1 && dl.strides[i] != expect) {
        throw py::value_error("the DLPack tensor is not compact row-major (strides); make it contiguous first");
      }
      expect *= dims[static_cast<size_t>(i)];
    }
  }
  auto n = checked_num_elements(dims);
  if (!n) throw py::value_error("the DLPack tensor's shape " + dims_to_string(dims) + " is invalid");
  // Consumed: the capsule no longer deletes it; the tensor's buffer does, when the last view goes.
  PyCapsule_SetName(obj.ptr(), "used_dltensor");
  std::shared_ptr<void> owner(m, [](void* p) {
    auto* mt = static_cast<DLManagedTensor*>(p);
    if (mt->deleter) mt->deleter(mt);
  });
  auto* data = static_cast<uint8_t*>(dl.data) + dl.byte_offset;
  auto buffer = Buffer::wrap(data, dtype_storage_bytes(dtype, *n), std::move(owner));
  return PyOrtValue{Value(Tensor::from_buffer(dtype, std::move(dims), std::move(buffer))), py::object()};
}

}  // namespace

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
      // DLPack: the value's memory handed to another library without a copy (numpy.from_dlpack, torch), and back.
      .def("to_dlpack", &to_dlpack)
      .def(
          "__dlpack__", [](const PyOrtValue& v, py::object /*stream: the CPU has none*/) { return to_dlpack(v); },
          py::arg("stream") = py::none())
      .def("__dlpack_device__", [](const PyOrtValue&) { return py::make_tuple(dlpack::kDLCPU, 0); })
      .def_static("from_dlpack", &from_dlpack, py::arg("data"), py::arg("is_bool_tensor") = false)
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
