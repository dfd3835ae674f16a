// The C API (include/kiln/kiln_c.h) over kiln::Session and kiln::Tensor. Every entry point checks its arguments,
// turns kiln::Status into a kiln_status, and catches every exception: nothing unwinds into C.
#include "kiln/kiln_c.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "capi/capi_util.h"
#include "kiln/core/custom_ops.h"
#include "kiln/core/dtype.h"
#include "kiln/core/status.h"
#include "kiln/core/tensor.h"
#include "kiln/runtime/session.h"

struct kiln_session_options {
  kiln::SessionOptions options;
  std::vector<std::shared_ptr<const kiln::CustomOpLibrary>> libraries;
};

struct kiln_run_options {
  kiln::RunOptions options;
};

struct kiln_tensor {
  kiln::Tensor tensor;
  std::vector<const char*> strings;  // a string tensor's elements as C strings, into tensor.strings()
};

using kiln::capi::from_status;
using kiln::capi::g_out_of_memory;
using kiln::capi::guarded;
using kiln::capi::invalid;
using kiln::capi::make_status;

namespace {

// A graph input or output as the getters return it; the strings and dims live as long as the session.
struct IoEntry {
  std::string name;
  int32_t dtype = KILN_DTYPE_UNDEFINED;
  int64_t rank = -1;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_names;
};

}  // namespace

struct kiln_session {
  std::unique_ptr<kiln::Session> session;
  std::vector<IoEntry> inputs, outputs;
  std::unordered_set<const kiln::Buffer*> initializer_buffers;  // outputs that alias these are copied
};

namespace {

std::vector<IoEntry> io_entries(const std::vector<kiln::IoInfo>& infos) {
  std::vector<IoEntry> out;
  for (const auto& info : infos) {
    IoEntry e;
    e.name = info.name;
    if (info.type.is_tensor()) {
      e.dtype = static_cast<int32_t>(info.type.elem_type);
      if (info.type.shape) {
        e.rank = static_cast<int64_t>(info.type.shape->rank());
        for (size_t i = 0; i < info.type.shape->rank(); ++i) {
          const kiln::Dim& d = (*info.type.shape)[i];
          e.dims.push_back(d.is_known() ? d.value() : -1);
          e.dim_names.push_back(d.is_symbolic() ? d.symbol() : std::string());
        }
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

kiln_status* finish_session(kiln::StatusOr<std::unique_ptr<kiln::Session>> created, kiln_session** out) {
  if (!created.is_ok()) return from_status(created.status());
  auto s = std::make_unique<kiln_session>();
  s->session = std::move(created).value();
  s->inputs = io_entries(s->session->inputs());
  s->outputs = io_entries(s->session->outputs());
  for (const auto& init : s->session->model().graph.initializers) {
    if (init.tensor.buffer()) s->initializer_buffers.insert(init.tensor.buffer());
  }
  *out = s.release();
  return nullptr;
}

const kiln::SessionOptions& options_of(const kiln_session_options* options) {
  static const kiln::SessionOptions defaults;
  return options ? options->options : defaults;
}

// Checks a dtype and shape from the caller; fills `dims`.
kiln_status* check_dtype_shape(const char* function, int32_t dtype, const int64_t* shape, size_t rank,
                               std::vector<int64_t>& dims) {
  if (dtype <= KILN_DTYPE_UNDEFINED || dtype > KILN_DTYPE_BFLOAT16) {
    return invalid(std::string(function) + ": dtype " + std::to_string(dtype) +
                   " is not a tensor dtype (expected 1..16, ONNX's TensorProto.DataType numbering)");
  }
  if (rank > 0 && shape == nullptr) {
    return invalid(std::string(function) + ": shape is NULL but rank is " + std::to_string(rank));
  }
  if (rank > 64) return invalid(std::string(function) + ": rank " + std::to_string(rank) + " is over 64");
  dims.assign(shape, shape + rank);
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0) {
      return invalid(std::string(function) + ": dim " + std::to_string(i) + " is " + std::to_string(dims[i]) +
                     " (expected >= 0)");
    }
  }
  return nullptr;
}

void index_strings(kiln_tensor& t) {
  t.strings.clear();
  if (t.tensor.dtype() != kiln::DType::kString) return;
  for (const auto& s : t.tensor.strings()) t.strings.push_back(s.c_str());
}

kiln_status* io_index(const char* function, const kiln_session* session, const std::vector<IoEntry> kiln_session::*io,
                      size_t index, const char* what, const IoEntry** entry) {
  KILN_C_REQUIRE(session, function, "session");
  const auto& list = session->*io;
  if (index >= list.size()) {
    return invalid(std::string(function) + ": " + what + " index " + std::to_string(index) +
                   " is out of range (the model has " + std::to_string(list.size()) + " " + what + "s)");
  }
  *entry = &list[index];
  return nullptr;
}

}  // namespace

extern "C" {

const char* kiln_version(void) { return KILN_VERSION_STRING; }

int32_t kiln_status_code(const kiln_status* status) { return status ? status->code : KILN_OK; }

const char* kiln_status_message(const kiln_status* status) {
  if (!status) return "";
  if (status == &g_out_of_memory) return "out of memory";
  return status->message.c_str();
}

void kiln_status_release(kiln_status* status) {
  if (status != &g_out_of_memory) delete status;
}

// ---- Session options ----

kiln_status* kiln_session_options_create(kiln_session_options** out) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(out, fn, "out");
    *out = new kiln_session_options();
    return nullptr;
  });
}

kiln_status* kiln_session_options_set_threads(kiln_session_options* options, int32_t threads) {
  KILN_C_REQUIRE(options, __func__, "options");
  if (threads < 0)
    return invalid(std::string(__func__) + ": threads is " + std::to_string(threads) + " (expected >= 0)");
  options->options.intra_op_threads = threads;
  return nullptr;
}

kiln_status* kiln_session_options_set_opt_level(kiln_session_options* options, int32_t level) {
  KILN_C_REQUIRE(options, __func__, "options");
  if (level != 0 && level != 1 && level != 2 && level != 99) {
    return invalid(std::string(__func__) + ": level " + std::to_string(level) +
                   " (expected 0 disabled, 1 basic, 2 extended or 99 all)");
  }
  options->options.optimization_level = level;
  return nullptr;
}

kiln_status* kiln_session_options_set_memory_limit_mb(kiln_session_options* options, int64_t megabytes) {
  KILN_C_REQUIRE(options, __func__, "options");
  if (megabytes < 0) {
    return invalid(std::string(__func__) + ": " + std::to_string(megabytes) + " MiB (expected >= 0; 0: no limit)");
  }
  options->options.memory_limit_mb = megabytes;
  return nullptr;
}

kiln_status* kiln_session_options_register_custom_ops_library(kiln_session_options* options, const char* library_path) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(options, fn, "options");
    KILN_C_REQUIRE(library_path, fn, "library_path");
    auto lib = kiln::CustomOpLibrary::load(library_path);
    if (!lib.is_ok()) return from_status(lib.status());
    options->options.custom_op_libraries.emplace_back(library_path);
    // Sessions load it again by path; keeping this load shares it with them.
    options->libraries.push_back(std::move(lib).value());
    return nullptr;
  });
}

void kiln_session_options_release(kiln_session_options* options) { delete options; }

// ---- Tensors ----

kiln_status* kiln_tensor_create(int32_t dtype, const int64_t* shape, size_t rank, const void* data, kiln_tensor** out) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(out, fn, "out");
    *out = nullptr;
    std::vector<int64_t> dims;
    if (kiln_status* bad = check_dtype_shape(fn, dtype, shape, rank, dims)) return bad;
    auto t = std::make_unique<kiln_tensor>();
    if (dtype == KILN_DTYPE_STRING) {
      int64_t n = 1;
      for (int64_t d : dims) {
        if (d != 0 && n > (int64_t{1} << 40) / d) return invalid(std::string(fn) + ": too many strings");
        n *= d;
      }
      std::vector<std::string> values(static_cast<size_t>(n));
      if (data) {
        const auto* items = static_cast<const char* const*>(data);
        for (int64_t i = 0; i < n; ++i) {
          if (!items[i]) return invalid(std::string(fn) + ": string element " + std::to_string(i) + " is NULL");
          values[static_cast<size_t>(i)] = items[i];
        }
      }
      t->tensor = kiln::Tensor::from_strings(std::move(dims), std::move(values));
      index_strings(*t);
    } else {
      auto made = kiln::Tensor::allocate(static_cast<kiln::DType>(dtype), std::move(dims));
      if (!made.is_ok()) return from_status(made.status().with_context(fn));
      t->tensor = std::move(made).value();
      if (data && t->tensor.nbytes()) std::memcpy(t->tensor.raw_data(), data, t->tensor.nbytes());
    }
    *out = t.release();
    return nullptr;
  });
}

kiln_status* kiln_tensor_create_borrowed(int32_t dtype, const int64_t* shape, size_t rank, void* data,
                                         kiln_tensor** out) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(out, fn, "out");
    *out = nullptr;
    std::vector<int64_t> dims;
    if (kiln_status* bad = check_dtype_shape(fn, dtype, shape, rank, dims)) return bad;
    if (dtype == KILN_DTYPE_STRING) {
      return invalid(std::string(fn) + ": string tensors cannot borrow memory (use kiln_tensor_create)");
    }
    // The element count, checked against overflow, decides whether data may be NULL (an empty tensor).
    auto probe = kiln::Tensor::borrow(static_cast<kiln::DType>(dtype), dims, data);
    if (probe.num_elements() == 0 && !dims.empty()) {
      bool has_zero = false;
      for (int64_t d : dims) has_zero |= d == 0;
      if (!has_zero) return invalid(std::string(fn) + ": the shape's element count overflows");
    }
    if (data == nullptr && probe.num_elements() != 0) {
      return invalid(std::string(fn) + ": data is NULL for " + std::to_string(probe.num_elements()) + " elements");
    }
    auto t = std::make_unique<kiln_tensor>();
    t->tensor = std::move(probe);
    *out = t.release();
    return nullptr;
  });
}

kiln_status* kiln_tensor_data(const kiln_tensor* tensor, void** out) {
  KILN_C_REQUIRE(tensor, __func__, "tensor");
  KILN_C_REQUIRE(out, __func__, "out");
  if (tensor->tensor.dtype() == kiln::DType::kString) {
    *out = const_cast<const char**>(tensor->strings.data());
  } else {
    *out = const_cast<void*>(tensor->tensor.raw_data());
  }
  return nullptr;
}

kiln_status* kiln_tensor_dtype(const kiln_tensor* tensor, int32_t* out) {
  KILN_C_REQUIRE(tensor, __func__, "tensor");
  KILN_C_REQUIRE(out, __func__, "out");
  *out = static_cast<int32_t>(tensor->tensor.dtype());
  return nullptr;
}

kiln_status* kiln_tensor_rank(const kiln_tensor* tensor, size_t* out) {
  KILN_C_REQUIRE(tensor, __func__, "tensor");
  KILN_C_REQUIRE(out, __func__, "out");
  *out = tensor->tensor.rank();
  return nullptr;
}

kiln_status* kiln_tensor_shape(const kiln_tensor* tensor, const int64_t** out) {
  KILN_C_REQUIRE(tensor, __func__, "tensor");
  KILN_C_REQUIRE(out, __func__, "out");
  *out = tensor->tensor.rank() ? tensor->tensor.dims().data() : nullptr;
  return nullptr;
}

kiln_status* kiln_tensor_element_count(const kiln_tensor* tensor, int64_t* out) {
  KILN_C_REQUIRE(tensor, __func__, "tensor");
  KILN_C_REQUIRE(out, __func__, "out");
  *out = tensor->tensor.num_elements();
  return nullptr;
}

kiln_status* kiln_tensor_byte_size(const kiln_tensor* tensor, size_t* out) {
  KILN_C_REQUIRE(tensor, __func__, "tensor");
  KILN_C_REQUIRE(out, __func__, "out");
  *out = tensor->tensor.nbytes();
  return nullptr;
}

void kiln_tensor_release(kiln_tensor* tensor) { delete tensor; }

// ---- Sessions ----

// libkiln.so takes ONNX models and engine plans (.kplan); libkiln_rt.so, built from this file over kiln_engine with
// KILN_PLANS_ONLY, takes plans only: it links no ONNX parser and no protobuf (what an application that ships plans
// deploys).
#ifdef KILN_PLANS_ONLY
#define KILN_C_CREATE kiln::Session::create_from_plan
#define KILN_C_CREATE_FROM_BYTES kiln::Session::create_from_plan_bytes
#else
#define KILN_C_CREATE kiln::Session::create
#define KILN_C_CREATE_FROM_BYTES kiln::Session::create_from_bytes
#endif

kiln_status* kiln_session_create(const char* path, const kiln_session_options* options, kiln_session** out) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(out, fn, "out");
    *out = nullptr;
    KILN_C_REQUIRE(path, fn, "path");
    return finish_session(KILN_C_CREATE(std::string(path), options_of(options)), out);
  });
}

kiln_status* kiln_session_create_from_bytes(const void* data, size_t size, const kiln_session_options* options,
                                            kiln_session** out) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(out, fn, "out");
    *out = nullptr;
    if (size > 0) KILN_C_REQUIRE(data, fn, "data");
    return finish_session(KILN_C_CREATE_FROM_BYTES(data, size, options_of(options)), out);
  });
}

void kiln_session_release(kiln_session* session) { delete session; }

#define KILN_C_IO_GETTERS(kind, member)                                                                         \
  kiln_status* kiln_session_##kind##_count(const kiln_session* session, size_t* out) {                          \
    KILN_C_REQUIRE(session, __func__, "session");                                                               \
    KILN_C_REQUIRE(out, __func__, "out");                                                                       \
    *out = session->member.size();                                                                              \
    return nullptr;                                                                                             \
  }                                                                                                             \
  kiln_status* kiln_session_##kind##_name(const kiln_session* session, size_t index, const char** out) {        \
    const IoEntry* e = nullptr;                                                                                 \
    KILN_C_REQUIRE(out, __func__, "out");                                                                       \
    if (kiln_status* bad = io_index(__func__, session, &kiln_session::member, index, #kind, &e)) return bad;    \
    *out = e->name.c_str();                                                                                     \
    return nullptr;                                                                                             \
  }                                                                                                             \
  kiln_status* kiln_session_##kind##_dtype(const kiln_session* session, size_t index, int32_t* out) {           \
    const IoEntry* e = nullptr;                                                                                 \
    KILN_C_REQUIRE(out, __func__, "out");                                                                       \
    if (kiln_status* bad = io_index(__func__, session, &kiln_session::member, index, #kind, &e)) return bad;    \
    *out = e->dtype;                                                                                            \
    return nullptr;                                                                                             \
  }                                                                                                             \
  kiln_status* kiln_session_##kind##_shape(const kiln_session* session, size_t index, const int64_t** dims,     \
                                           int64_t* rank) {                                                     \
    const IoEntry* e = nullptr;                                                                                 \
    KILN_C_REQUIRE(dims, __func__, "dims");                                                                     \
    KILN_C_REQUIRE(rank, __func__, "rank");                                                                     \
    if (kiln_status* bad = io_index(__func__, session, &kiln_session::member, index, #kind, &e)) return bad;    \
    *dims = e->dims.empty() ? nullptr : e->dims.data();                                                         \
    *rank = e->rank;                                                                                            \
    return nullptr;                                                                                             \
  }                                                                                                             \
  kiln_status* kiln_session_##kind##_dim_name(const kiln_session* session, size_t index, size_t dim,            \
                                              const char** out) {                                               \
    const IoEntry* e = nullptr;                                                                                 \
    KILN_C_REQUIRE(out, __func__, "out");                                                                       \
    if (kiln_status* bad = io_index(__func__, session, &kiln_session::member, index, #kind, &e)) return bad;    \
    if (dim >= e->dim_names.size()) {                                                                           \
      return invalid(std::string(__func__) + ": dim " + std::to_string(dim) + " is out of range ('" + e->name + \
                     "' has rank " + (e->rank < 0 ? std::string("unknown") : std::to_string(e->rank)) + ")");   \
    }                                                                                                           \
    *out = e->dim_names[dim].c_str();                                                                           \
    return nullptr;                                                                                             \
  }

KILN_C_IO_GETTERS(input, inputs)
KILN_C_IO_GETTERS(output, outputs)

// ---- Running ----

kiln_status* kiln_run_options_create(kiln_run_options** out) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(out, fn, "out");
    *out = new kiln_run_options();
    return nullptr;
  });
}

kiln_status* kiln_run_options_set_terminate(kiln_run_options* options, int32_t terminate) {
  KILN_C_REQUIRE(options, __func__, "options");
  options->options.set_terminate(terminate != 0);
  return nullptr;
}

kiln_status* kiln_run_options_set_timeout_ms(kiln_run_options* options, double timeout_ms) {
  KILN_C_REQUIRE(options, __func__, "options");
  if (!(timeout_ms >= 0)) {
    return invalid(std::string(__func__) + ": " + std::to_string(timeout_ms) + " ms (expected >= 0; 0: no limit)");
  }
  options->options.timeout_ms = timeout_ms;
  return nullptr;
}

void kiln_run_options_release(kiln_run_options* options) { delete options; }

}  // extern "C"

namespace {

// The checked feeds and output names of a run (every error names `fn` and the argument at fault).
struct RunArgs {
  kiln::NamedTensors feeds;
  std::unordered_set<const kiln::Buffer*> fed_buffers;
  std::vector<std::string> wanted;
};

kiln_status* run_args(const char* fn, kiln_session* session, const char* const* input_names,
                      const kiln_tensor* const* inputs, size_t n_inputs, const char* const* output_names,
                      size_t n_outputs, RunArgs& args) {
  KILN_C_REQUIRE(session, fn, "session");
  if (n_inputs > 0) {
    KILN_C_REQUIRE(input_names, fn, "input_names");
    KILN_C_REQUIRE(inputs, fn, "inputs");
  }
  for (size_t i = 0; i < n_inputs; ++i) {
    if (!input_names[i]) return invalid(std::string(fn) + ": input_names[" + std::to_string(i) + "] is NULL");
    if (!inputs[i]) {
      return invalid(std::string(fn) + ": inputs[" + std::to_string(i) + "] ('" + input_names[i] + "') is NULL");
    }
    for (const auto& [name, t] : args.feeds) {
      if (name == input_names[i]) return invalid(std::string(fn) + ": input '" + name + "' is given twice");
    }
    args.feeds.emplace_back(input_names[i], inputs[i]->tensor);
    if (inputs[i]->tensor.buffer()) args.fed_buffers.insert(inputs[i]->tensor.buffer());
  }
  if (output_names) {
    for (size_t i = 0; i < n_outputs; ++i) {
      if (!output_names[i]) return invalid(std::string(fn) + ": output_names[" + std::to_string(i) + "] is NULL");
      args.wanted.emplace_back(output_names[i]);
    }
    if (n_outputs == 0) return invalid(std::string(fn) + ": n_outputs is 0 (expected at least one output)");
  } else if (n_outputs != session->outputs.size()) {
    return invalid(std::string(fn) + ": output_names is NULL, so n_outputs must be the model's output count, " +
                   std::to_string(session->outputs.size()) + ", not " + std::to_string(n_outputs));
  }
  return nullptr;
}

kiln_status* run_session(const char* fn, kiln_session* session, const kiln_run_options* run_options,
                         const char* const* input_names, const kiln_tensor* const* inputs, size_t n_inputs,
                         const char* const* output_names, size_t n_outputs, kiln_tensor** outputs) {
  return guarded(fn, [&]() -> kiln_status* {
    if (n_outputs > 0) KILN_C_REQUIRE(outputs, fn, "outputs");
    for (size_t i = 0; i < n_outputs; ++i) outputs[i] = nullptr;
    RunArgs args;
    if (kiln_status* st = run_args(fn, session, input_names, inputs, n_inputs, output_names, n_outputs, args)) {
      return st;
    }
    kiln::NamedTensors& feeds = args.feeds;
    std::unordered_set<const kiln::Buffer*>& fed_buffers = args.fed_buffers;
    std::vector<std::string>& wanted = args.wanted;
    auto result = session->session->run(feeds, wanted, run_options ? &run_options->options : nullptr);
    if (!result.is_ok()) return from_status(result.status());
    std::vector<std::unique_ptr<kiln_tensor>> made;
    for (auto& t : *result) {
      auto out = std::make_unique<kiln_tensor>();
      // An output that shares memory with a feed, the caller's memory or an initializer is copied: the caller
      // owns what it gets, and may write to it.
      const kiln::Buffer* b = t.buffer();
      const bool shared = t.dtype() != kiln::DType::kString &&
                          (b == nullptr || fed_buffers.count(b) || session->initializer_buffers.count(b));
      if (shared) {
        auto copy = t.clone();
        if (!copy.is_ok()) return from_status(copy.status().with_context(fn));
        out->tensor = std::move(copy).value();
      } else {
        out->tensor = std::move(t);
      }
      index_strings(*out);
      made.push_back(std::move(out));
    }
    for (size_t i = 0; i < n_outputs; ++i) outputs[i] = made[i].release();
    return nullptr;
  });
}

}  // namespace

extern "C" {

kiln_status* kiln_session_run_with_options(kiln_session* session, const kiln_run_options* run_options,
                                           const char* const* input_names, const kiln_tensor* const* inputs,
                                           size_t n_inputs, const char* const* output_names, size_t n_outputs,
                                           kiln_tensor** outputs) {
  return run_session(__func__, session, run_options, input_names, inputs, n_inputs, output_names, n_outputs, outputs);
}

kiln_status* kiln_session_run_into(kiln_session* session, const kiln_run_options* run_options,
                                   const char* const* input_names, const kiln_tensor* const* inputs, size_t n_inputs,
                                   const char* const* output_names, size_t n_outputs, kiln_tensor* const* outputs) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    if (n_outputs > 0) KILN_C_REQUIRE(outputs, fn, "outputs");
    RunArgs args;
    if (kiln_status* st = run_args(fn, session, input_names, inputs, n_inputs, output_names, n_outputs, args)) {
      return st;
    }
    std::vector<kiln::Value> outs;
    for (size_t i = 0; i < n_outputs; ++i) {
      if (!outputs[i]) return invalid(std::string(fn) + ": outputs[" + std::to_string(i) + "] is NULL");
      if (outputs[i]->tensor.dtype() == kiln::DType::kString) {
        return invalid(std::string(fn) + ": outputs[" + std::to_string(i) + "] is a string tensor");
      }
      outs.emplace_back(outputs[i]->tensor);
    }
    kiln::NamedValues feeds;
    for (const auto& [name, t] : args.feeds) feeds.emplace_back(name, kiln::Value(t));
    kiln::Status st =
        session->session->run_into(feeds, args.wanted, outs, run_options ? &run_options->options : nullptr);
    return st.is_ok() ? nullptr : from_status(st);
  });
}

kiln_status* kiln_session_run(kiln_session* session, const char* const* input_names, const kiln_tensor* const* inputs,
                              size_t n_inputs, const char* const* output_names, size_t n_outputs,
                              kiln_tensor** outputs) {
  return run_session(__func__, session, nullptr, input_names, inputs, n_inputs, output_names, n_outputs, outputs);
}

}  // extern "C"
