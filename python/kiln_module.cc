// The Python module `kiln` (pybind11): InferenceSession with onnxruntime's Python API, so that scripts
// written for onnxruntime run with `import kiln as onnxruntime`.
// numpy in and out without copies: C-contiguous inputs of the right dtype are read in place (the array is
// kept alive by the tensor that views it), and outputs are numpy arrays over kiln's own buffers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "kiln/core/custom_ops.h"
#include "kiln/core/value.h"
#include "kiln/runtime/session.h"
#include "sdk/tasks.h"

namespace py = pybind11;

namespace kiln::python {
namespace {

// onnxruntime's exception classes (onnxruntime.capi.onnxruntime_pybind11_state), all RuntimeErrors.
struct Errors {
  py::object fail, invalid_argument, no_such_file, invalid_graph, not_implemented, runtime_exception;
};
Errors* errors = nullptr;

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

template <typename T>
T value_or_raise(StatusOr<T> s) {
  if (!s.is_ok()) raise(s.status());
  return std::move(s).value();
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
  if (kind == 'U' || kind == 'S' || kind == 'O') return DType::kString;
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

// ---- the API objects ----

struct NodeArg {
  std::string name;
  py::object shape;  // list of int / str / None, or None when the rank is unknown
  std::string type;
};

NodeArg node_arg(const IoInfo& info) {
  NodeArg a{info.name, py::none(), onnx_type(info.type)};
  const ir::Type* t = &info.type;
  if (t->kind == ir::Type::Kind::kOptional && t->value_type) t = t->value_type.get();
  if (t->kind == ir::Type::Kind::kTensor && t->shape) {
    py::list dims;
    for (size_t i = 0; i < t->shape->rank(); ++i) {
      const Dim& d = (*t->shape)[i];
      if (d.is_known()) {
        dims.append(d.value());
      } else if (d.is_symbolic()) {
        dims.append(d.symbol());
      } else {
        dims.append(py::none());
      }
    }
    a.shape = std::move(dims);
  } else if (t->kind == ir::Type::Kind::kTensor) {
    a.shape = py::list();
  }
  return a;
}

enum class GraphOptimizationLevel {
  ORT_DISABLE_ALL = 0,
  ORT_ENABLE_BASIC = 1,
  ORT_ENABLE_EXTENDED = 2,
  ORT_ENABLE_ALL = 99
};

struct PySessionOptions {
  int intra_op_num_threads = 0;
  GraphOptimizationLevel graph_optimization_level = GraphOptimizationLevel::ORT_ENABLE_ALL;
  bool enable_profiling = false;
  std::string profile_file_prefix = "kiln_profile";
  int64_t memory_limit_mb = 0;
  std::vector<std::string> custom_op_libraries;  // register_custom_ops_library
};

struct ModelMetadata {
  std::string producer_name, graph_name, domain, description, graph_description;
  int64_t version = 0;
  std::map<std::string, std::string> custom_metadata_map;
};

class InferenceSession {
 public:
  InferenceSession(py::object path_or_bytes, py::object sess_options, py::object providers,
                   py::object provider_options) {
    (void)provider_options;
    if (!sess_options.is_none()) options_ = sess_options.cast<PySessionOptions>();
    check_providers(providers);
    SessionOptions opts;
    opts.intra_op_threads = options_.intra_op_num_threads;
    opts.optimization_level = static_cast<int>(options_.graph_optimization_level);
    opts.enable_profiling = options_.enable_profiling;
    opts.profile_file_prefix = options_.profile_file_prefix;
    opts.memory_limit_mb = options_.memory_limit_mb;
    opts.custom_op_libraries = options_.custom_op_libraries;
    if (py::isinstance<py::bytes>(path_or_bytes)) {
      std::string bytes = path_or_bytes.cast<std::string>();
      py::gil_scoped_release nogil;
      auto s = Session::create_from_bytes(bytes.data(), bytes.size(), opts);
      py::gil_scoped_acquire gil;
      session_ = value_or_raise(std::move(s));
    } else {
      py::object fspath = py::module_::import("os").attr("fspath");
      std::string path;
      try {
        path = fspath(path_or_bytes).cast<std::string>();
      } catch (const py::error_already_set&) {
        throw py::type_error("InferenceSession needs a model path (str or os.PathLike) or the model's bytes, got " +
                             std::string(py::str(path_or_bytes.get_type())));
      }
      model_path_ = path;
      StatusOr<std::unique_ptr<Session>> s = [&] {
        py::gil_scoped_release nogil;
        return Session::create(path, opts);
      }();
      session_ = value_or_raise(std::move(s));
    }
  }

  std::vector<NodeArg> get_inputs() const {
    std::vector<NodeArg> out;
    for (const auto& i : session_->inputs()) out.push_back(node_arg(i));
    return out;
  }
  std::vector<NodeArg> get_outputs() const {
    std::vector<NodeArg> out;
    for (const auto& o : session_->outputs()) out.push_back(node_arg(o));
    return out;
  }
  ModelMetadata get_modelmeta() const {
    const ir::Model& m = session_->model();
    ModelMetadata meta;
    meta.producer_name = m.producer_name;
    meta.graph_name = m.graph.name;
    meta.domain = m.domain;
    meta.description = m.doc_string;
    meta.graph_description = m.graph.doc_string;
    meta.version = m.model_version;
    for (const auto& [k, v] : m.metadata_props) meta.custom_metadata_map[k] = v;
    return meta;
  }
  std::vector<std::string> get_providers() const { return {"CPUExecutionProvider"}; }
  PySessionOptions get_session_options() const { return options_; }
  std::string end_profiling() { return value_or_raise(session_->end_profiling()); }

  py::list run(py::object output_names, py::dict input_feed, py::object run_options) {
    // The options object stays alive (the caller holds it) while the run, without the GIL, reads its flag: another
    // Python thread may set `terminate` meanwhile.
    const kiln::RunOptions* ro = run_options.is_none() ? nullptr : &run_options.cast<const kiln::RunOptions&>();
    // onnxruntime checks the feed's names in Python first; the same errors here.
    std::vector<std::string> given;
    for (auto item : input_feed) given.push_back(py::str(item.first).cast<std::string>());
    std::vector<std::string> missing;
    for (const auto& in : session_->inputs()) {
      bool found = false;
      for (const auto& g : given) found = found || g == in.name;
      const bool has_default = session_->model().graph.find_initializer(in.name) != nullptr;
      if (!found && !has_default) missing.push_back(in.name);
    }
    if (!missing.empty()) {
      throw py::value_error("Required inputs (" + list_repr(missing) + ") are missing from input feed (" +
                            list_repr(given) + ").");
    }
    NamedValues feeds;
    for (auto item : input_feed) {
      const std::string name = py::str(item.first).cast<std::string>();
      feeds.emplace_back(name, value_from_python(name, item.second));
    }
    std::vector<std::string> names;
    if (!output_names.is_none()) {
      for (py::handle n : output_names) names.push_back(py::str(n).cast<std::string>());
    }
    StatusOr<std::vector<Value>> result = [&] {
      py::gil_scoped_release nogil;
      return session_->run_values(feeds, names, ro);
    }();
    feeds.clear();  // drop the views of the inputs while the GIL is held
    std::vector<Value> outs = value_or_raise(std::move(result));
    py::list py_outs;
    for (const auto& v : outs) py_outs.append(python_from_value(v));
    return py_outs;
  }

  const std::string& model_path() const { return model_path_; }

 private:
  static std::string list_repr(const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", '" : "'") + v[i] + "'";
    return s + "]";
  }

  static void check_providers(const py::object& providers) {
    if (providers.is_none()) return;
    for (py::handle p : providers) {
      std::string name =
          py::isinstance<py::str>(p) ? p.cast<std::string>() : py::str(p[py::int_(0)]).cast<std::string>();
      if (name != "CPUExecutionProvider") {
        const std::string msg = "Specified provider '" + name +
                                "' is not in available provider names.Available providers: 'CPUExecutionProvider'";
        if (PyErr_WarnEx(PyExc_UserWarning, msg.c_str(), 1) != 0) throw py::error_already_set();
      }
    }
  }

  Value value_from_python(const std::string& name, py::handle obj) {
    if (obj.is_none()) return Value::none("");
    if (py::isinstance<py::list>(obj) && !is_tensor_input(name)) {
      std::vector<Tensor> items;
      for (py::handle x : obj) items.push_back(tensor_from_numpy(name, x));
      DType dt = items.empty() ? DType::kUndefined : items[0].dtype();
      return Value::sequence(std::move(items), dt);
    }
    return Value(tensor_from_numpy(name, obj));
  }

  bool is_tensor_input(const std::string& name) const {
    for (const auto& i : session_->inputs()) {
      if (i.name == name) return i.type.kind == ir::Type::Kind::kTensor;
    }
    return true;
  }

  std::unique_ptr<Session> session_;
  PySessionOptions options_;
  std::string model_path_;
};

}  // namespace
}  // namespace kiln::python

namespace kiln::python {
namespace {

// ---- kiln.sdk: the vision tasks of a model folder (kiln pack) ----

StatusOr<sdk::Image> image_from_numpy(const py::array& a) {
  if (a.ndim() != 2 && a.ndim() != 3) {
    return invalid_argument("the image must be an H x W (gray) or H x W x 3 (BGR) array, not of rank " +
                            std::to_string(a.ndim()));
  }
  const int channels = a.ndim() == 2 ? 1 : static_cast<int>(a.shape(2));
  if (py::isinstance<py::array_t<uint8_t>>(a)) {
    auto c = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
    return sdk::image_from_pixels(c.data(), static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), channels, false,
                                  false);
  }
  if (!py::isinstance<py::array_t<float>>(a)) {
    return invalid_argument("the image's dtype must be uint8 or float32, not " +
                            py::str(a.dtype()).cast<std::string>());
  }
  auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  return sdk::image_from_pixels(c.data(), static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), channels, false,
                                true);
}

class PyTask {
 public:
  PyTask(const std::string& model_dir, const std::string& kind, const std::string& device, int device_id) {
    if (device != "cpu" || device_id != 0) {
      raise(invalid_argument("device '" + device + "' " + std::to_string(device_id) +
                             " is not available (kiln runs on the CPU: \"cpu\", 0)"));
    }
    task_ = value_or_raise(sdk::Task::load(model_dir, kind));
  }
  const sdk::Task& task() const { return *task_; }

 private:
  std::unique_ptr<sdk::Task> task_;
};

struct PyRestorer : PyTask {
  using PyTask::PyTask;
};
struct PyClassifier : PyTask {
  using PyTask::PyTask;
};
struct PyDetector : PyTask {
  using PyTask::PyTask;
};
struct PySegmentor : PyTask {
  using PyTask::PyTask;
};

// [(left, top, right, bottom, label_id, score), ...], best first.
std::vector<std::tuple<float, float, float, float, int, float>> detect_image(const PyDetector& t,
                                                                             const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<std::vector<sdk::Detection>> found = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    found = sdk::detect(t.task(), img);
  }
  if (!found.is_ok()) raise(found.status());
  std::vector<std::tuple<float, float, float, float, int, float>> out;
  for (const auto& d : *found) out.emplace_back(d.left, d.top, d.right, d.bottom, d.label_id, d.score);
  return out;
}

// An H x W int32 array of class ids.
py::array segment_image(const PySegmentor& t, const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<sdk::Segmentation> seg = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    seg = sdk::segment(t.task(), img);
  }
  if (!seg.is_ok()) raise(seg.status());
  py::array_t<int32_t> a({static_cast<py::ssize_t>(seg->height), static_cast<py::ssize_t>(seg->width)});
  std::copy(seg->mask.begin(), seg->mask.end(), a.mutable_data());
  return a;
}

py::array restore_image(const PyRestorer& t, const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<sdk::RestoredImage> r = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    r = sdk::restore(t.task(), img);
  }
  if (!r.is_ok()) raise(r.status());
  const sdk::RestoredImage& out = *r;
  std::vector<py::ssize_t> shape = {out.height, out.width};
  if (out.channels != 1) shape.push_back(out.channels);
  py::array_t<uint8_t> a(shape);
  std::memcpy(a.mutable_data(), out.pixels.data(), out.pixels.size());
  return a;
}

std::vector<std::pair<int, float>> classify_image(const PyClassifier& t, const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<std::vector<sdk::Classification>> top = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    top = sdk::classify(t.task(), img);
  }
  std::vector<std::pair<int, float>> out;
  if (!top.is_ok()) raise(top.status());
  for (const auto& c : *top) out.emplace_back(c.label_id, c.score);
  return out;
}

void bind_sdk(py::module_& m) {
  auto sdk_m = m.def_submodule("sdk", "The vision tasks of a model folder made by `kiln pack` (MMDeploy's SDK)");
  py::class_<PyRestorer>(sdk_m, "Restorer")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PyRestorer(dir, "restorer", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &restore_image, py::arg("image"),
           "The restored image (H x W x 3 BGR uint8) of an H x W x 3 BGR image (uint8 or float32)");
  py::class_<PyClassifier>(sdk_m, "Classifier")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PyClassifier(dir, "classifier", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &classify_image, py::arg("image"), "[(label_id, score), ...], best first");
  py::class_<PyDetector>(sdk_m, "Detector")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PyDetector(dir, "detector", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &detect_image, py::arg("image"),
           "[(left, top, right, bottom, label_id, score), ...] in the image's pixels, best first");
  py::class_<PySegmentor>(sdk_m, "Segmentor")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PySegmentor(dir, "segmentor", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &segment_image, py::arg("image"), "The class of each pixel: an H x W int32 array");
}

}  // namespace
}  // namespace kiln::python

PYBIND11_MODULE(_kiln, m) {
  using namespace kiln::python;
  m.doc() = "kiln: ONNX inference on the CPU, with onnxruntime's Python API";

  static Errors errs;
  auto make = [&](const char* name) {
    py::object cls = py::reinterpret_steal<py::object>(
        PyErr_NewException((std::string("kiln.") + name).c_str(), PyExc_RuntimeError, nullptr));
    m.attr(name) = cls;
    return cls;
  };
  errs.fail = make("Fail");
  errs.invalid_argument = make("InvalidArgument");
  errs.no_such_file = make("NoSuchFile");
  errs.invalid_graph = make("InvalidGraph");
  errs.not_implemented = make("NotImplemented");
  errs.runtime_exception = make("RuntimeException");
  errors = &errs;

  py::enum_<GraphOptimizationLevel>(m, "GraphOptimizationLevel")
      .value("ORT_DISABLE_ALL", GraphOptimizationLevel::ORT_DISABLE_ALL)
      .value("ORT_ENABLE_BASIC", GraphOptimizationLevel::ORT_ENABLE_BASIC)
      .value("ORT_ENABLE_EXTENDED", GraphOptimizationLevel::ORT_ENABLE_EXTENDED)
      .value("ORT_ENABLE_ALL", GraphOptimizationLevel::ORT_ENABLE_ALL);

  py::class_<PySessionOptions>(m, "SessionOptions")
      .def(py::init<>())
      .def_readwrite("intra_op_num_threads", &PySessionOptions::intra_op_num_threads,
                     "Threads for one operator (0: one per physical core)")
      .def_readwrite("graph_optimization_level", &PySessionOptions::graph_optimization_level)
      .def_readwrite("enable_profiling", &PySessionOptions::enable_profiling,
                     "Record a span per node; InferenceSession.end_profiling() writes a Chrome trace")
      .def_readwrite("profile_file_prefix", &PySessionOptions::profile_file_prefix)
      .def_readwrite("memory_limit_mb", &PySessionOptions::memory_limit_mb,
                     "The most memory one run may hold, in MiB (0: no limit); going over it raises before the "
                     "allocation is made")
      .def(
          "register_custom_ops_library",
          [](PySessionOptions& o, const std::string& path) {
            // Loaded and checked now, as onnxruntime does; sessions load it again by path.
            (void)value_or_raise(kiln::CustomOpLibrary::load(path));
            o.custom_op_libraries.push_back(path);
          },
          py::arg("library_path"), "Load a shared library of custom operators (kiln/custom_op.h) for these options");

  py::class_<kiln::RunOptions>(m, "RunOptions")
      .def(py::init<>())
      .def_property(
          "terminate", [](const kiln::RunOptions& o) { return o.terminate(); },
          [](kiln::RunOptions& o, bool v) { o.set_terminate(v); },
          "Set to True (from any thread) to stop the runs using these options at their next node")
      .def_readwrite("timeout_ms", &kiln::RunOptions::timeout_ms,
                     "The longest a run may take, in ms (0: no limit); checked between nodes");

  py::class_<NodeArg>(m, "NodeArg")
      .def_readonly("name", &NodeArg::name)
      .def_readonly("shape", &NodeArg::shape)
      .def_readonly("type", &NodeArg::type)
      .def("__repr__", [](const NodeArg& a) {
        return "NodeArg(name='" + a.name + "', type='" + a.type + "', shape=" + std::string(py::repr(a.shape)) + ")";
      });

  py::class_<ModelMetadata>(m, "ModelMetadata")
      .def_readonly("producer_name", &ModelMetadata::producer_name)
      .def_readonly("graph_name", &ModelMetadata::graph_name)
      .def_readonly("domain", &ModelMetadata::domain)
      .def_readonly("description", &ModelMetadata::description)
      .def_readonly("graph_description", &ModelMetadata::graph_description)
      .def_readonly("version", &ModelMetadata::version)
      .def_readonly("custom_metadata_map", &ModelMetadata::custom_metadata_map);

  py::class_<InferenceSession>(m, "InferenceSession")
      .def(py::init<py::object, py::object, py::object, py::object>(), py::arg("path_or_bytes"),
           py::arg("sess_options") = py::none(), py::arg("providers") = py::none(),
           py::arg("provider_options") = py::none())
      .def("run", &InferenceSession::run, py::arg("output_names"), py::arg("input_feed"),
           py::arg("run_options") = py::none())
      .def("get_inputs", &InferenceSession::get_inputs)
      .def("get_outputs", &InferenceSession::get_outputs)
      .def("get_modelmeta", &InferenceSession::get_modelmeta)
      .def("get_providers", &InferenceSession::get_providers)
      .def("get_session_options", &InferenceSession::get_session_options)
      .def("end_profiling", &InferenceSession::end_profiling)
      .def_property_readonly("_model_path", &InferenceSession::model_path);

  m.def("get_available_providers", [] { return std::vector<std::string>{"CPUExecutionProvider"}; });
  m.def("get_all_providers", [] { return std::vector<std::string>{"CPUExecutionProvider"}; });
  m.def("get_device", [] { return std::string("CPU"); });
  bind_sdk(m);
}
