// The Python module `kiln` (pybind11): InferenceSession with onnxruntime's Python API, so that scripts
// written for onnxruntime run with `import kiln as onnxruntime`.
// numpy in and out without copies: C-contiguous inputs of the right dtype are read in place (the array is
// kept alive by the tensor that views it), and outputs are numpy arrays over kiln's own buffers.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dlpack.h"
#include "io_binding.h"
#include "kiln/core/allocator.h"
#include "kiln/core/custom_ops.h"
#include "kiln/onnx/model_io.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"
#include "lora.h"
#include "module.h"
#include "ort_value.h"

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

enum class ExecutionMode { ORT_SEQUENTIAL = 0, ORT_PARALLEL = 1 };

// onnxruntime's RunOptions: kiln's (terminate, timeout_ms) with the members kiln keeps for compatibility.
struct PyRunOptions {
  kiln::RunOptions options;
  std::string logid;
  int log_severity_level = 2, log_verbosity_level = 0;
  std::map<std::string, std::string> config;
};

// The kiln options of a Python RunOptions (None: none). The Python object, held by the caller, outlives the run.
const kiln::RunOptions* run_options_of(const py::object& run_options) {
  return run_options.is_none() ? nullptr : &run_options.cast<const PyRunOptions&>().options;
}

// A session or run configuration entry, or InvalidArgument naming the key as onnxruntime's message does.
const std::string& config_entry(const std::map<std::string, std::string>& config, const std::string& key,
                                const char* owner) {
  auto it = config.find(key);
  if (it == config.end())
    raise(kiln::invalid_argument(std::string(owner) + " does not have configuration with key: " + key));
  return it->second;
}

struct PySessionOptions {
  int intra_op_num_threads = 0;
  GraphOptimizationLevel graph_optimization_level = GraphOptimizationLevel::ORT_ENABLE_ALL;
  bool enable_profiling = false;
  std::string profile_file_prefix = "kiln_profile";
  int64_t memory_limit_mb = 0;
  std::string precision = "fp32";                // kiln's: SessionOptions::precision
  std::vector<std::string> custom_op_libraries;  // register_custom_ops_library
  // onnxruntime's other members. Logging: kiln logs nothing, so these are kept and returned only.
  int log_severity_level = 2, log_verbosity_level = 0;
  std::string logid;
  // Where the session writes the model it optimized (as `kiln optimize`), with the external-data entries below.
  std::string optimized_model_filepath;
  ExecutionMode execution_mode = ExecutionMode::ORT_SEQUENTIAL;  // kiln runs nodes in order; parallel is accepted
  int inter_op_num_threads = 0;
  // Memory patterns and the arena: kiln plans memory per input shape; these are kept for compatibility.
  bool enable_mem_pattern = true, enable_cpu_mem_arena = true, use_deterministic_compute = false;
  std::map<std::string, std::string> config;                 // add_session_config_entry
  std::vector<std::pair<std::string, int64_t>> dim_by_name;  // add_free_dimension_override_by_name
  std::vector<std::pair<std::string, int64_t>> dim_by_denotation;
  std::vector<std::pair<std::string, PyOrtValue>> initializers;  // add_initializer / add_external_initializers
};

// Fixes symbolic dims of the graph inputs before planning (onnxruntime's free-dimension overrides).
void override_free_dims(ir::Model& model, const PySessionOptions& o) {
  for (auto& in : model.graph.inputs) {
    if (!in.type.is_tensor() || !in.type.shape) continue;
    for (size_t i = 0; i < in.type.shape->rank(); ++i) {
      Dim& d = (*in.type.shape)[i];
      for (const auto& [name, value] : o.dim_by_name) {
        if (d.is_symbolic() && d.symbol() == name) d = Dim(value);
      }
      const std::string denotation = i < in.type.dim_denotations.size() ? in.type.dim_denotations[i] : "";
      for (const auto& [name, value] : o.dim_by_denotation) {
        if (!denotation.empty() && denotation == name && !d.is_known()) d = Dim(value);
      }
    }
  }
}

// Replaces initializers by the caller's values (no copy: the tensors view the OrtValues' memory).
void replace_initializers(ir::Model& model, const PySessionOptions& o) {
  for (const auto& [name, value] : o.initializers) {
    const Tensor& t = value.tensor();
    ir::NamedTensor* init = nullptr;
    for (auto& i : model.graph.initializers) {
      if (i.name == name) init = &i;
    }
    if (!init) {
      model.graph.initializers.push_back(ir::NamedTensor{name, t, "", true, ""});
      continue;
    }
    if (init->tensor.dtype() != t.dtype() || init->tensor.dims() != t.dims()) {
      raise(invalid_argument("initializer '" + name + "' is " + dtype_name(init->tensor.dtype()) + " " +
                             Shape::from_dims(init->tensor.dims()).to_string() + "; the value given is " +
                             dtype_name(t.dtype()) + " " + Shape::from_dims(t.dims()).to_string()));
    }
    init->tensor = t;
    init->external_location.clear();
  }
}

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
    // The model's own onnxruntime configuration (its "ort_config" metadata) when ORT_LOAD_CONFIG_FROM_MODEL=1.
    const char* from_model = std::getenv("ORT_LOAD_CONFIG_FROM_MODEL");
    load_config_from_model_ = from_model && std::string(from_model) == "1";
    SessionOptions opts;
    opts.intra_op_threads = options_.intra_op_num_threads;
    opts.optimization_level = static_cast<int>(options_.graph_optimization_level);
    opts.enable_profiling = options_.enable_profiling;
    opts.profile_file_prefix = options_.profile_file_prefix;
    opts.memory_limit_mb = options_.memory_limit_mb;
    opts.precision = options_.precision;
    opts.custom_op_libraries = options_.custom_op_libraries;
    // An engine plan (kiln build): its graph is optimized and its initializers fixed at build time.
    if (const std::optional<std::string> plan = plan_source(path_or_bytes)) {
      if (!options_.initializers.empty() || !options_.dim_by_name.empty() || !options_.dim_by_denotation.empty() ||
          !options_.optimized_model_filepath.empty()) {
        throw py::value_error(
            "add_initializer, add_free_dimension_override_by_* and optimized_model_filepath do not apply to a kiln "
            "plan (.kplan): its graph and weights were fixed by kiln build");
      }
      StatusOr<std::unique_ptr<Session>> s = [&] {
        py::gil_scoped_release nogil;
        return model_path_.empty() ? Session::create_from_plan_bytes(plan->data(), plan->size(), opts)
                                   : Session::create_from_plan(model_path_, opts);
      }();
      session_ = value_or_raise(std::move(s));
      start_ns_ = static_cast<int64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count());
      return;
    }
    StatusOr<ir::Model> model = invalid_argument("");
    if (py::isinstance<py::bytes>(path_or_bytes)) {
      std::string bytes = path_or_bytes.cast<std::string>();
      py::gil_scoped_release nogil;
      model = onnx::load_model_from_bytes(bytes.data(), bytes.size());
    } else {
      py::object fspath = py::module_::import("os").attr("fspath");
      try {
        model_path_ = fspath(path_or_bytes).cast<std::string>();
      } catch (const py::error_already_set&) {
        throw py::type_error("InferenceSession needs a model path (str or os.PathLike) or the model's bytes, got " +
                             std::string(py::str(path_or_bytes.get_type())));
      }
      std::vector<std::string> provided;
      for (const auto& [name, value] : options_.initializers) provided.push_back(name);
      py::gil_scoped_release nogil;
      model = onnx::load_model(model_path_, provided);
    }
    ir::Model m = value_or_raise(std::move(model));
    if (load_config_from_model_) apply_model_config(m, opts);
    override_free_dims(m, options_);
    replace_initializers(m, options_);
    StatusOr<std::unique_ptr<Session>> s = [&] {
      py::gil_scoped_release nogil;
      return Session::create(std::move(m), opts);
    }();
    if (!s.is_ok() && !model_path_.empty()) raise(s.status().with_context(model_path_));
    session_ = value_or_raise(std::move(s));
    start_ns_ = static_cast<int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    if (!options_.optimized_model_filepath.empty()) save_optimized();
  }

  // For a plan: its bytes (when given bytes) or "" with model_path_ set (when given its path); nullopt otherwise.
  std::optional<std::string> plan_source(const py::object& path_or_bytes) {
    if (py::isinstance<py::bytes>(path_or_bytes)) {
      std::string bytes = path_or_bytes.cast<std::string>();
      if (bytes.size() >= 8 && bytes.compare(0, 8, "KILNPLAN") == 0) return bytes;
      return std::nullopt;
    }
    try {
      const std::string path = py::module_::import("os").attr("fspath")(path_or_bytes).cast<std::string>();
      if (!is_plan_file(path)) return std::nullopt;
      model_path_ = path;
      return std::string();
    } catch (const py::error_already_set&) {
      return std::nullopt;  // the ONNX path below names the wrong type
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
  py::dict get_provider_options() const {
    py::dict d;
    d["CPUExecutionProvider"] = py::dict();
    return d;
  }
  // onnxruntime's set_providers: the CPU is the only provider; another name is a ValueError.
  void set_providers(py::object providers, py::object provider_options) {
    (void)provider_options;
    if (providers.is_none()) return;
    for (py::handle p : providers) {
      const std::string name =
          py::isinstance<py::str>(p) ? p.cast<std::string>() : py::str(p[py::int_(0)]).cast<std::string>();
      if (name != "CPUExecutionProvider") {
        raise(kiln::invalid_argument("Unknown Provider Type: " + name + " (kiln has CPUExecutionProvider only)"));
      }
    }
  }
  int64_t get_profiling_start_time_ns() const { return start_ns_; }
  PySessionOptions get_session_options() const { return options_; }
  std::string end_profiling() { return value_or_raise(session_->end_profiling()); }

  py::list run(py::object output_names, py::dict input_feed, py::object run_options) {
    // The options object stays alive (the caller holds it) while the run, without the GIL, reads its flag: another
    // Python thread may set `terminate` meanwhile.
    const kiln::RunOptions* ro = run_options_of(run_options);
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

  // onnxruntime's run_with_ort_values, at both of its levels: C-level (feeds, output_names, run_options) returning an
  // OrtValueVector, and Python-level (output_names, feeds, run_options) returning a list of OrtValues.
  py::object run_with_ort_values(py::object a, py::object b, py::object run_options) {
    const bool c_level = py::isinstance<py::dict>(a);
    py::dict feeds = c_level ? a.cast<py::dict>() : b.cast<py::dict>();
    py::object names_obj = c_level ? b : a;
    const kiln::RunOptions* ro = run_options_of(run_options);
    NamedValues values;
    for (auto item : feeds) {
      const std::string name = py::str(item.first).cast<std::string>();
      if (!py::isinstance<PyOrtValue>(item.second)) {
        throw py::type_error("run_with_ort_values: input '" + name + "' must be an OrtValue, not " +
                             std::string(py::str(item.second.get_type())));
      }
      values.emplace_back(name, item.second.cast<const PyOrtValue&>().value);
    }
    std::vector<std::string> names;
    if (!names_obj.is_none()) {
      for (py::handle n : names_obj) names.push_back(py::str(n).cast<std::string>());
    }
    StatusOr<std::vector<Value>> result = [&] {
      py::gil_scoped_release nogil;
      return session_->run_values(values, names, ro);
    }();
    values.clear();
    std::vector<Value> outs = value_or_raise(std::move(result));
    PyOrtValueVector vec;
    for (auto& v : outs) vec.values.push_back(PyOrtValue{std::move(v), py::none()});
    if (c_level) return py::cast(std::move(vec));
    py::list l;
    for (auto& v : vec.values) l.append(py::cast(std::move(v)));
    return l;
  }

  // The graph inputs that have an initializer (a default a run may replace), as onnxruntime lists them.
  std::vector<NodeArg> get_overridable_initializers() const {
    std::vector<NodeArg> out;
    const ir::Graph& g = session_->model().graph;
    for (const auto& v : g.inputs) {
      if (g.find_initializer(v.name)) out.push_back(node_arg(IoInfo{v.name, v.type}));
    }
    return out;
  }

  // onnxruntime's run_with_ortvaluevector: feeds and fetches as OrtValueVectors. Fetches that hold one tensor per
  // fetch name are written in place (preallocated outputs); otherwise they are replaced by the run's outputs.
  void run_with_ortvaluevector(py::object run_options, const std::vector<std::string>& feed_names,
                               const PyOrtValueVector& feeds, const std::vector<std::string>& fetch_names,
                               PyOrtValueVector& fetches, py::object fetch_devices) {
    (void)fetch_devices;  // the CPU's
    if (feed_names.size() != feeds.values.size()) {
      raise(invalid_argument(std::to_string(feed_names.size()) + " feed names for " +
                             std::to_string(feeds.values.size()) + " feeds"));
    }
    const kiln::RunOptions* ro = run_options_of(run_options);
    NamedValues values;
    for (size_t i = 0; i < feeds.values.size(); ++i) values.emplace_back(feed_names[i], feeds.values[i].value);
    std::vector<Value> outs;
    const bool preallocated = fetches.values.size() == fetch_names.size() &&
                              std::all_of(fetches.values.begin(), fetches.values.end(),
                                          [](const PyOrtValue& v) { return v.value.is_tensor(); });
    if (preallocated) {
      for (const auto& v : fetches.values) outs.push_back(v.value);
    }
    Status st;
    {
      py::gil_scoped_release nogil;
      st = session_->run_into(values, fetch_names, outs, ro);
    }
    values.clear();
    if (!st.is_ok()) raise(st);
    if (!preallocated) {
      fetches.values.clear();
      for (auto& v : outs) fetches.values.push_back(PyOrtValue{std::move(v), py::none()});
    }
  }

  const std::string& model_path() const { return model_path_; }
  const Session& session() const { return *session_; }
  Value feed(const std::string& name, py::handle obj) { return value_from_python(name, obj); }

  // onnxruntime's run_with_iobinding: the Python-level IOBinding (its C-level one is `_iobinding`) or the C-level
  // SessionIOBinding.
  void run_with_iobinding(py::object binding, py::object run_options) {
    if (py::hasattr(binding, "_iobinding")) binding = binding.attr("_iobinding");
    if (!py::isinstance<PyIOBinding>(binding)) {
      throw py::type_error("run_with_iobinding takes an IOBinding (session.io_binding()), not " +
                           std::string(py::str(binding.get_type())));
    }
    auto& b = binding.cast<PyIOBinding&>();
    if (b.session != session_.get()) {
      raise(invalid_argument("run_with_iobinding: the IOBinding was made for another session"));
    }
    const kiln::RunOptions* ro = run_options_of(run_options);
    python::run_with_iobinding(b, ro);
  }

 private:
  // The model's "ort_config" metadata (JSON {"session_options": {...}}), as onnxruntime reads it.
  void apply_model_config(const ir::Model& m, SessionOptions& opts) {
    auto it = std::find_if(m.metadata_props.begin(), m.metadata_props.end(),
                           [](const auto& kv) { return kv.first == "ort_config"; });
    if (it == m.metadata_props.end()) return;
    py::object json = py::module_::import("json");
    py::dict cfg;
    try {
      cfg = py::dict(json.attr("loads")(it->second));
    } catch (const py::error_already_set&) {
      raise(invalid_argument("the model's ort_config metadata is not a JSON object"));
    }
    if (!cfg.contains("session_options")) return;
    for (auto item : cfg["session_options"].cast<py::dict>()) {
      const std::string key = py::str(item.first).cast<std::string>();
      const int64_t v = item.second.cast<int64_t>();
      if (key == "intra_op_num_threads") {
        options_.intra_op_num_threads = static_cast<int>(v);
        opts.intra_op_threads = static_cast<int>(v);
      } else if (key == "inter_op_num_threads") {
        options_.inter_op_num_threads = static_cast<int>(v);
      } else if (key == "graph_optimization_level") {
        options_.graph_optimization_level = static_cast<GraphOptimizationLevel>(v);
        opts.optimization_level = static_cast<int>(v);
      } else if (key == "enable_profiling") {
        options_.enable_profiling = v != 0;
        opts.enable_profiling = v != 0;
      } else if (key == "execution_mode") {
        options_.execution_mode = static_cast<ExecutionMode>(v);
      } else {
        raise(invalid_argument("the model's ort_config sets '" + key + "', which kiln does not know"));
      }
    }
  }

  // Writes the optimized model to optimized_model_filepath, initializers of at least
  // session.optimized_model_external_initializers_min_size_in_bytes bytes to the external file the config names.
  void save_optimized() {
    onnx::SaveOptions so;
    auto file = options_.config.find("session.optimized_model_external_initializers_file_name");
    if (file != options_.config.end()) {
      so.external_data = true;
      so.location = file->second;
      auto min = options_.config.find("session.optimized_model_external_initializers_min_size_in_bytes");
      if (min != options_.config.end()) so.size_threshold = static_cast<size_t>(std::stoll(min->second));
    }
    Status st = onnx::save_model(session_->model(), options_.optimized_model_filepath, so);
    if (!st.is_ok()) raise(st);
  }

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
    if (py::isinstance<PyOrtValue>(obj)) return obj.cast<const PyOrtValue&>().value;
    if (py::hasattr(obj, "as_sparse_tensor")) {
      throw py::type_error("input '" + name +
                           "' is a SparseTensor: kiln takes sparse values only as a model's initializers, not as run "
                           "inputs");
    }
    const ir::Type* declared = input_type(name);
    if (declared && declared->kind == ir::Type::Kind::kOptional) declared = declared->value_type.get();
    if (py::isinstance<py::list>(obj) && declared && declared->kind == ir::Type::Kind::kSequence) {
      std::vector<Tensor> items;
      for (py::handle x : obj) items.push_back(tensor_from_numpy(name, x));
      // An empty sequence takes its element type from the model, as onnxruntime does.
      DType dt = items.empty() ? (declared->value_type ? declared->value_type->elem_type : DType::kUndefined)
                               : items[0].dtype();
      return Value::sequence(std::move(items), dt);
    }
    if (!py::isinstance<py::array>(obj) && declared && declared->is_tensor() &&
        declared->elem_type != DType::kUndefined && declared->elem_type != DType::kString &&
        (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj) || py::isinstance<py::float_>(obj) ||
         py::isinstance<py::int_>(obj))) {
      // A Python list (or scalar) becomes an array of the input's declared element type, as onnxruntime converts it.
      // (Held by `converted` while the tensor takes its own reference: `obj` is only a handle.)
      py::object converted = py::module_::import("numpy").attr("asarray")(obj, numpy_dtype(declared->elem_type));
      return Value(tensor_from_numpy(name, converted));
    }
    return Value(tensor_from_numpy(name, obj));
  }

  const ir::Type* input_type(const std::string& name) const {
    for (const auto& i : session_->inputs()) {
      if (i.name == name) return &i.type;
    }
    return nullptr;
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
  bool load_config_from_model_ = false;
  int64_t start_ns_ = 0;
};

}  // namespace

BoundSession bound_session(py::handle inference_session) {
  if (!py::isinstance<InferenceSession>(inference_session)) {
    throw py::type_error("SessionIOBinding takes an InferenceSession, not " +
                         std::string(py::str(inference_session.get_type())));
  }
  BoundSession b;
  b.session = &inference_session.cast<const InferenceSession&>().session();
  b.convert = [](py::handle session, const std::string& name, py::handle obj) {
    return session.cast<InferenceSession&>().feed(name, obj);
  };
  return b;
}

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
      .def_readwrite("precision", &PySessionOptions::precision,
                     "kiln's: 'fp32' (default) or 'bf16': convolutions and matrix products may multiply in bfloat16 "
                     "with fp32 accumulation where the CPU has AVX512-BF16 or AMX (elsewhere fp32, said once on "
                     "stderr); a plan (.kplan) runs at the precision it was built with")
      .def(
          "register_custom_ops_library",
          [](PySessionOptions& o, const std::string& path) {
            // Loaded and checked now, as onnxruntime does; sessions load it again by path.
            (void)value_or_raise(kiln::CustomOpLibrary::load(path));
            o.custom_op_libraries.push_back(path);
          },
          py::arg("library_path"), "Load a shared library of custom operators (kiln/custom_op.h) for these options")
      .def_readwrite("log_severity_level", &PySessionOptions::log_severity_level)
      .def_readwrite("log_verbosity_level", &PySessionOptions::log_verbosity_level)
      .def_readwrite("logid", &PySessionOptions::logid)
      .def_readwrite("optimized_model_filepath", &PySessionOptions::optimized_model_filepath,
                     "Write the optimized model there when a session is created (as `kiln optimize`)")
      .def_readwrite("execution_mode", &PySessionOptions::execution_mode)
      .def_readwrite("inter_op_num_threads", &PySessionOptions::inter_op_num_threads)
      .def_readwrite("enable_mem_pattern", &PySessionOptions::enable_mem_pattern)
      .def_readwrite("enable_cpu_mem_arena", &PySessionOptions::enable_cpu_mem_arena)
      .def_readwrite("use_deterministic_compute", &PySessionOptions::use_deterministic_compute,
                     "kiln's kernels are deterministic: every output is computed in a fixed order")
      .def(
          "add_session_config_entry",
          [](PySessionOptions& o, const std::string& key, const std::string& value) { o.config[key] = value; },
          py::arg("config_key"), py::arg("config_value"))
      .def(
          "get_session_config_entry",
          [](const PySessionOptions& o, const std::string& key) {
            return config_entry(o.config, key, "SessionOptions");
          },
          py::arg("config_key"))
      .def(
          "add_free_dimension_override_by_name",
          [](PySessionOptions& o, const std::string& name, int64_t value) { o.dim_by_name.emplace_back(name, value); },
          py::arg("dim_name"), py::arg("dim_value"))
      .def(
          "add_free_dimension_override_by_denotation",
          [](PySessionOptions& o, const std::string& denotation, int64_t value) {
            o.dim_by_denotation.emplace_back(denotation, value);
          },
          py::arg("dim_denotation"), py::arg("dim_value"))
      .def(
          "add_initializer",
          [](PySessionOptions& o, const std::string& name, py::object value) {
            if (!py::isinstance<PyOrtValue>(value)) value = value.attr("_ortvalue");
            o.initializers.emplace_back(name, value.cast<PyOrtValue>());
          },
          py::arg("name"), py::arg("ort_value"), "Replace (or add) an initializer by the OrtValue, without a copy")
      .def(
          "add_external_initializers",
          [](PySessionOptions& o, const std::vector<std::string>& names, py::list values) {
            if (names.size() != values.size()) {
              throw py::value_error("add_external_initializers: " + std::to_string(names.size()) + " names for " +
                                    std::to_string(values.size()) + " values");
            }
            for (size_t i = 0; i < names.size(); ++i) {
              py::object v = values[i];
              if (!py::isinstance<PyOrtValue>(v)) v = v.attr("_ortvalue");
              o.initializers.emplace_back(names[i], v.cast<PyOrtValue>());
            }
          },
          py::arg("names"), py::arg("ort_values"));

  py::enum_<ExecutionMode>(m, "ExecutionMode")
      .value("ORT_SEQUENTIAL", ExecutionMode::ORT_SEQUENTIAL)
      .value("ORT_PARALLEL", ExecutionMode::ORT_PARALLEL);

  py::class_<PyRunOptions>(m, "RunOptions")
      .def(py::init<>())
      .def_property(
          "terminate", [](const PyRunOptions& o) { return o.options.terminate(); },
          [](PyRunOptions& o, bool v) { o.options.set_terminate(v); },
          "Set to True (from any thread) to stop the runs using these options at their next node")
      .def_property(
          "timeout_ms", [](const PyRunOptions& o) { return o.options.timeout_ms; },
          [](PyRunOptions& o, double v) { o.options.timeout_ms = v; },
          "The longest a run may take, in ms (0: no limit); checked between nodes")
      .def_readwrite("logid", &PyRunOptions::logid)
      .def(
          "add_active_adapter",
          [](PyRunOptions& o, const PyLoraAdapter& a) {
            if (!a.adapter) {
              kiln::python::raise(
                  kiln::invalid_argument("add_active_adapter: the LoraAdapter is not loaded (call Load)"));
            }
            o.options.add_active_adapter(a.adapter);
          },
          py::arg("adapter"), "Feeds the adapter's parameters to the model's inputs of the same names in every run")
      .def_readwrite("log_severity_level", &PyRunOptions::log_severity_level)
      .def_readwrite("log_verbosity_level", &PyRunOptions::log_verbosity_level)
      .def(
          "add_run_config_entry",
          [](PyRunOptions& o, const std::string& key, const std::string& value) { o.config[key] = value; },
          py::arg("config_key"), py::arg("config_value"))
      .def(
          "get_run_config_entry",
          [](const PyRunOptions& o, const std::string& key) { return config_entry(o.config, key, "RunOptions"); },
          py::arg("config_key"));

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
      .def("get_provider_options", &InferenceSession::get_provider_options)
      .def("set_providers", &InferenceSession::set_providers, py::arg("providers") = py::none(),
           py::arg("provider_options") = py::none())
      .def("get_profiling_start_time_ns", &InferenceSession::get_profiling_start_time_ns)
      .def("run_with_ort_values", &InferenceSession::run_with_ort_values, py::arg("a"), py::arg("b"),
           py::arg("run_options") = py::none())
      .def("run_with_iobinding", &InferenceSession::run_with_iobinding, py::arg("iobinding"),
           py::arg("run_options") = py::none())
      .def("run_with_ortvaluevector", &InferenceSession::run_with_ortvaluevector, py::arg("run_options"),
           py::arg("feed_names"), py::arg("feeds"), py::arg("fetch_names"), py::arg("fetches"),
           py::arg("fetch_devices") = py::none())
      .def("get_overridable_initializers", &InferenceSession::get_overridable_initializers)
      // onnxruntime falls back to the CPU provider when another fails; kiln runs on the CPU only: nothing to switch.
      .def("disable_fallback", [](InferenceSession&) {})
      .def("enable_fallback", [](InferenceSession&) {})
      // onnxruntime's Python InferenceSession wraps a C-level one as `_sess`; here both are this object.
      .def_property_readonly("_sess", [](py::object self) { return self; })
      .def_property_readonly("_model_path", &InferenceSession::model_path);

  m.def("get_available_providers", [] { return std::vector<std::string>{"CPUExecutionProvider"}; });
  m.def("get_all_providers", [] { return std::vector<std::string>{"CPUExecutionProvider"}; });
  m.def("get_device", [] { return std::string("CPU"); });
  m.def("get_version_string", [] { return std::string("0.1.0"); });
  m.def("get_build_info",
        [] { return std::string("Build Info: kiln 0.1.0, CPU (x86-64; kernels chosen by CPUID at run time)"); });
  // kiln collects no telemetry: these exist for compatibility and do nothing.
  m.def("enable_telemetry_events", [] {});
  m.def("disable_telemetry_events", [] {});
  // kiln logs nothing: the severity is kept for compatibility.
  m.def("set_default_logger_severity", [](int severity) {
    if (severity < 0 || severity > 4) throw py::value_error("severity must be 0 (verbose) to 4 (fatal)");
  });
  m.def("get_default_session_options", [] { return PySessionOptions(); });
  m.def(
      "is_dlpack_uint8_tensor",
      [](py::capsule cap) {
        if (!PyCapsule_IsValid(cap.ptr(), "dltensor")) throw py::type_error("expected an unconsumed DLPack capsule");
        const auto* mt = static_cast<const DLManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), "dltensor"));
        return mt->dl_tensor.dtype.code == 1 && mt->dl_tensor.dtype.bits == 8 && mt->dl_tensor.dtype.lanes == 1;
      },
      py::arg("dlpack"), "Whether a DLPack capsule holds uint8 (or bool, which DLPack carries as uint8)");
  // kiln's own: tensor memory taken from the heap since the process started, as (allocations, bytes). Read it
  // around runs to see what they allocate (a steady-state run_with_iobinding with every output bound to memory
  // allocates none).
  m.def("tensor_heap_stats", [] {
    const kiln::TensorHeapStats s = kiln::tensor_heap_stats();
    return py::make_tuple(s.allocations, s.bytes);
  });
  bind_ort_value(m);
  bind_io_binding(m);
  bind_lora(m);
  bind_sdk(m);
}
