// The Python module `kiln` (pybind11): InferenceSession with onnxruntime's Python API, so that scripts
// written for onnxruntime run with `import kiln as onnxruntime`.
// numpy in and out without copies: C-contiguous inputs of the right dtype are read in place (the array is
// kept alive by the tensor that views it), and outputs are numpy arrays over kiln's own buffers.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/custom_ops.h"
#include "kiln/runtime/session.h"
#include "module.h"

namespace kiln::python {
namespace {

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
