// What the module's files share: onnxruntime's exception classes, dtypes, numpy <-> Tensor (python/module.h).
#include "module.h"

namespace kiln::python {

// onnxruntime's exception classes (onnxruntime.capi.onnxruntime_pybind11_state), all RuntimeErrors.
Errors* errors = nullptr;

namespace {

const char* code_text(StatusCode c) {
  switch (c) {
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kNotFound: return "NO_SUCHFILE";
    case StatusCode::kInvalidModel: return "INVALID_GRAPH";
    case StatusCode::kUnimplemented: return "NOT_IMPLEMENTED";
    case StatusCode::kIoError:
    case StatusCode::kCancelled: return "FAIL";
    default: return "RUNTIME_EXCEPTION";
  }
}

}  // namespace

[[noreturn]] void raise(const Status& s) {
  py::object* cls = &errors->runtime_exception;
  switch (s.code()) {
    case StatusCode::kInvalidArgument: cls = &errors->invalid_argument; break;
    case StatusCode::kNotFound: cls = &errors->no_such_file; break;
    case StatusCode::kInvalidModel: cls = &errors->invalid_graph; break;
    case StatusCode::kUnimplemented: cls = &errors->not_implemented; break;
    case StatusCode::kIoError:
    case StatusCode::kCancelled: cls = &errors->fail; break;
    default: break;
  }
  const std::string msg = std::string("[kiln] : ") + code_text(s.code()) + " : " + s.message();
  PyErr_SetString(cls->ptr(), msg.c_str());
  throw py::error_already_set();
}

// ---- dtypes ----

std::string onnx_type(const ir::Type& t) {
  using K = ir::Type::Kind;
  switch (t.kind) {
    case K::kTensor: return std::string("tensor(") + dtype_name(t.elem_type) + ")";
    case K::kSparseTensor: return std::string("sparse_tensor(") + dtype_name(t.elem_type) + ")";
    case K::kSequence: return "seq(" + (t.value_type ? onnx_type(*t.value_type) : std::string("undefined")) + ")";
    case K::kOptional: return "optional(" + (t.value_type ? onnx_type(*t.value_type) : std::string("undefined")) + ")";
    case K::kMap:
      return std::string("map(") + dtype_name(t.key_type) + "," +
             (t.value_type ? onnx_type(*t.value_type) : std::string("undefined")) + ")";
    default: return "undefined";
  }
}

// numpy dtype -> kiln dtype (kUndefined when kiln has no equivalent).
DType dtype_of(const py::dtype& d) {
  const char kind = d.kind();
  const auto size = d.itemsize();
  if (kind == 'f')
    return size == 4 ? DType::kFloat32 : size == 8 ? DType::kFloat64 : size == 2 ? DType::kFloat16 : DType::kUndefined;
  if (kind == 'i') {
    return size == 1 ? DType::kInt8 : size == 2 ? DType::kInt16 : size == 4 ? DType::kInt32 : DType::kInt64;
  }
  if (kind == 'u') {
    return size == 1 ? DType::kUInt8 : size == 2 ? DType::kUInt16 : size == 4 ? DType::kUInt32 : DType::kUInt64;
  }
  if (kind == 'b') return DType::kBool;
  if (kind == 'U' || kind == 'S' || kind == 'O' || kind == 'V') return DType::kString;  // V: np.void bytes
  return DType::kUndefined;
}

py::dtype numpy_dtype(DType t) {
  switch (t) {
    case DType::kFloat32: return py::dtype("float32");
    case DType::kFloat64: return py::dtype("float64");
    case DType::kFloat16: return py::dtype("float16");
    case DType::kInt8: return py::dtype("int8");
    case DType::kInt16: return py::dtype("int16");
    case DType::kInt32: return py::dtype("int32");
    case DType::kInt64: return py::dtype("int64");
    case DType::kUInt8: return py::dtype("uint8");
    case DType::kUInt16: return py::dtype("uint16");
    case DType::kUInt32: return py::dtype("uint32");
    case DType::kUInt64: return py::dtype("uint64");
    case DType::kBool: return py::dtype("bool");
    default: return py::dtype("object");
  }
}

// ---- numpy <-> Tensor ----

Tensor tensor_from_numpy(const std::string& name, py::handle obj) {
  py::array arr = py::array::ensure(obj);
  if (!arr)
    throw py::type_error("input '" + name + "' must be a numpy array, got " + std::string(py::str(obj.get_type())));
  const DType dtype = dtype_of(arr.dtype());
  if (dtype == DType::kUndefined) {
    throw py::type_error("input '" + name + "' has numpy dtype " + std::string(py::str(arr.dtype())) +
                         ", which kiln cannot take");
  }
  std::vector<int64_t> dims(arr.shape(), arr.shape() + arr.ndim());
  if (dtype == DType::kString) {
    std::vector<std::string> values;
    py::object flat = arr.attr("ravel")();
    for (py::handle item : flat) {
      if (py::isinstance<py::bytes>(item)) {
        values.push_back(item.cast<std::string>());
      } else if (arr.dtype().kind() == 'V') {
        values.push_back(py::reinterpret_steal<py::bytes>(PyObject_Bytes(item.ptr())).cast<std::string>());
      } else {
        values.push_back(py::str(item).cast<std::string>());
      }
    }
    return Tensor::from_strings(std::move(dims), std::move(values));
  }
  if (!(arr.flags() & py::array::c_style) || (reinterpret_cast<uintptr_t>(arr.data()) % arr.itemsize()) != 0) {
    arr = py::array::ensure(arr, py::array::c_style | py::array::forcecast);
  }
  // The tensor views the array's memory; the buffer's owner holds a reference to the array, released with
  // the GIL held whenever the last tensor viewing it goes away.
  PyObject* ref = arr.ptr();
  Py_INCREF(ref);
  std::shared_ptr<void> owner(ref, [](void* p) {
    py::gil_scoped_acquire gil;
    Py_DECREF(static_cast<PyObject*>(p));
  });
  const size_t bytes = static_cast<size_t>(arr.nbytes());
  auto buffer = Buffer::wrap(const_cast<void*>(arr.data()), bytes, std::move(owner));
  return Tensor::from_buffer(dtype, std::move(dims), std::move(buffer));
}

py::object numpy_from_tensor(const Tensor& t) {
  std::vector<py::ssize_t> shape(t.dims().begin(), t.dims().end());
  if (t.dtype() == DType::kString) {
    py::array out(py::dtype("object"), shape);
    auto* items = static_cast<PyObject**>(out.mutable_data());
    for (size_t i = 0; i < t.strings().size(); ++i) {
      PyObject* s =
          PyUnicode_DecodeUTF8(t.strings()[i].data(), static_cast<py::ssize_t>(t.strings()[i].size()), "replace");
      if (!s) throw py::error_already_set();
      Py_XDECREF(items[i]);
      items[i] = s;
    }
    return out;
  }
  if (t.dtype() == DType::kBFloat16) {
    // numpy has no bfloat16: widen to float32 (exact).
    py::array_t<float> out(shape);
    const auto* src = t.data<uint16_t>();
    for (int64_t i = 0; i < t.num_elements(); ++i) out.mutable_data()[i] = bfloat16_to_float(src[i]);
    return out;
  }
  const py::dtype dt = numpy_dtype(t.dtype());
  if (dt.kind() == 'O') {
    raise(unimplemented(std::string("outputs of dtype ") + dtype_name(t.dtype()) + " cannot be returned to numpy"));
  }
  // The capsule owns a Tensor that shares the buffer: the array stays valid as long as it lives.
  auto* keep = new Tensor(t);
  py::capsule base(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(dt, shape, {}, const_cast<void*>(keep->raw_data()), base);
}

py::object python_from_value(const Value& v) {
  if (v.is_none()) return py::none();
  if (v.is_tensor()) return numpy_from_tensor(v.tensor());
  py::list items;
  for (const auto& t : v.items()) items.append(numpy_from_tensor(t));
  return items;
}

}  // namespace kiln::python
