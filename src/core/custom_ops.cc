// Loading custom-operator libraries (dlopen), checking what they declare, and the kiln_op_api table.
#include "kiln/core/custom_ops.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <map>
#include <mutex>

#include "core/custom_op_context.h"

namespace kiln {

namespace {

std::string op_label(const kiln_custom_op& op, size_t index) {
  if (!op.op_type) return "op " + std::to_string(index);
  const std::string domain = op.domain ? op.domain : "";
  return "op " + std::to_string(index) + " (" + (domain.empty() ? "" : domain + "::") + op.op_type + ")";
}

Status check_op(const std::string& lib, const kiln_custom_op& op, size_t index) {
  const std::string where = "custom-op library '" + lib + "': " + op_label(op, index);
  if (!op.domain || !op.op_type || !*op.op_type)
    return invalid_argument(where + ": domain or op_type is NULL or empty");
  if (!op.compute) return invalid_argument(where + ": compute is NULL");
  if (op.since_version < 1) {
    return invalid_argument(where + ": since_version is " + std::to_string(op.since_version) + " (expected >= 1)");
  }
  if (op.min_inputs < 0 || op.max_inputs < op.min_inputs) {
    return invalid_argument(where + ": min_inputs " + std::to_string(op.min_inputs) + ", max_inputs " +
                            std::to_string(op.max_inputs) + " (expected 0 <= min_inputs <= max_inputs)");
  }
  if (op.num_outputs < 1) {
    return invalid_argument(where + ": num_outputs is " + std::to_string(op.num_outputs) + " (expected >= 1)");
  }
  return Status::ok();
}

std::string canonical_domain(const std::string& d) { return d == "ai.onnx" ? "" : d; }

// The same op at the same version ("" and "ai.onnx" are one domain): two declarations of it are an error.
bool same_op(const kiln_custom_op& a, const kiln_custom_op& b) {
  return canonical_domain(a.domain) == canonical_domain(b.domain) && std::string(a.op_type) == b.op_type &&
         a.since_version == b.since_version;
}

std::mutex g_mu;
std::map<std::string, std::weak_ptr<const CustomOpLibrary>>& loaded() {
  static auto* m = new std::map<std::string, std::weak_ptr<const CustomOpLibrary>>();
  return *m;
}

}  // namespace

StatusOr<std::shared_ptr<const CustomOpLibrary>> CustomOpLibrary::load(const std::string& path) {
  struct stat st {};
  if (path.empty()) return invalid_argument("custom-op library: the path is empty");
  if (::stat(path.c_str(), &st) != 0) return not_found("custom-op library '" + path + "': no such file");
  char resolved[4096];
  const std::string key = ::realpath(path.c_str(), resolved) ? std::string(resolved) : path;
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = loaded()[key].lock()) return existing;
  ::dlerror();
  // A path without a slash would be searched for on the library path: name this file instead.
  const std::string open_path = path.find('/') == std::string::npos ? "./" + path : path;
  void* handle = ::dlopen(open_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    return invalid_argument("custom-op library '" + path + "': cannot load it: " + (why ? why : "dlopen failed"));
  }
  std::shared_ptr<CustomOpLibrary> lib(new CustomOpLibrary(path, handle));
  void* sym = ::dlsym(handle, KILN_CUSTOM_OP_LIBRARY_SYMBOL);
  if (!sym) {
    return invalid_argument("custom-op library '" + path +
                            "' does not export " KILN_CUSTOM_OP_LIBRARY_SYMBOL "() (see kiln/custom_op.h)");
  }
  auto get = reinterpret_cast<kiln_custom_op_library_get_fn>(sym);
  const kiln_custom_op_library* desc = get();
  if (!desc)
    return invalid_argument("custom-op library '" + path + "': " KILN_CUSTOM_OP_LIBRARY_SYMBOL "() returned NULL");
  if (desc->abi_version != KILN_CUSTOM_OP_ABI_VERSION) {
    return invalid_argument("custom-op library '" + path + "' was built for custom-op ABI version " +
                            std::to_string(desc->abi_version) + ", but this kiln has version " +
                            std::to_string(KILN_CUSTOM_OP_ABI_VERSION) +
                            ": rebuild it against this kiln's kiln/custom_op.h");
  }
  if (desc->op_count == 0 || !desc->ops) return invalid_argument("custom-op library '" + path + "' declares no ops");
  for (size_t i = 0; i < desc->op_count; ++i) {
    KILN_RETURN_IF_ERROR(check_op(path, desc->ops[i], i));
    for (const auto* other : lib->ops_) {
      if (same_op(*other, desc->ops[i])) {
        return invalid_argument("custom-op library '" + path + "' declares " + op_label(desc->ops[i], i) +
                                " twice for since_version " + std::to_string(other->since_version));
      }
    }
    lib->ops_.push_back(&desc->ops[i]);
  }
  loaded()[key] = lib;
  return std::shared_ptr<const CustomOpLibrary>(std::move(lib));
}

CustomOpLibrary::~CustomOpLibrary() {
  if (handle_) ::dlclose(handle_);
}

StatusOr<CustomOps> CustomOps::load(const std::vector<std::string>& paths) {
  CustomOps ops;
  for (const auto& p : paths) {
    KILN_ASSIGN_OR_RETURN(auto lib, CustomOpLibrary::load(p));
    bool again = false;
    for (const auto& l : ops.libraries_) again |= l == lib;
    if (again) continue;
    for (const auto* op : lib->ops()) {
      for (const auto& l : ops.libraries_) {
        for (const auto* o : l->ops()) {
          if (same_op(*o, *op)) {
            return invalid_argument("custom op " + std::string(*op->domain ? op->domain : "ai.onnx") +
                                    "::" + op->op_type + " is declared by two libraries: '" + l->path() + "' and '" +
                                    lib->path() + "'");
          }
        }
      }
    }
    ops.libraries_.push_back(std::move(lib));
  }
  return ops;
}

CustomOps::Found CustomOps::find(const std::string& domain, const std::string& op_type, int64_t opset) const {
  Found best;
  const std::string dom = canonical_domain(domain);
  for (const auto& lib : libraries_) {
    for (const auto* op : lib->ops()) {
      if (canonical_domain(op->domain) != dom || op_type != op->op_type || op->since_version > opset) continue;
      if (!best.op || op->since_version > best.op->since_version) best = {op, lib.get()};
    }
  }
  return best;
}

namespace {

const char* api_node_name(const kiln_op_context* c) { return c ? c->node_name() : ""; }
size_t api_input_count(const kiln_op_context* c) { return c ? c->input_count() : 0; }
size_t api_output_count(const kiln_op_context* c) { return c ? c->output_count() : 0; }
int api_input(const kiln_op_context* c, size_t i, kiln_op_tensor* out) { return c && out ? c->input(i, out) : 1; }
int api_attribute_int(const kiln_op_context* c, const char* name, int64_t* out) {
  return c && name && out ? c->attribute_int(name, out) : 1;
}
int api_attribute_float(const kiln_op_context* c, const char* name, float* out) {
  return c && name && out ? c->attribute_float(name, out) : 1;
}
int api_attribute_string(const kiln_op_context* c, const char* name, const char** out, size_t* length) {
  return c && name && out ? c->attribute_string(name, out, length) : 1;
}
int api_attribute_ints(const kiln_op_context* c, const char* name, const int64_t** out, size_t* count) {
  return c && name && out && count ? c->attribute_ints(name, out, count) : 1;
}
int api_attribute_floats(const kiln_op_context* c, const char* name, const float** out, size_t* count) {
  return c && name && out && count ? c->attribute_floats(name, out, count) : 1;
}
void* api_allocate_output(kiln_op_context* c, size_t i, int32_t dtype, const int64_t* dims, size_t rank) {
  if (!c) return nullptr;
  if (rank > 0 && !dims) {
    c->set_error("allocate_output: dims is NULL for a rank above 0");
    return nullptr;
  }
  return c->allocate_output(i, dtype, dims, rank);
}
int api_set_output_type(kiln_op_context* c, size_t i, int32_t dtype, const int64_t* dims, int64_t rank,
                        const char* const* dim_names) {
  if (!c) return 1;
  if (rank > 0 && !dims) {
    c->set_error("set_output_type: dims is NULL for a rank above 0");
    return 1;
  }
  return c->set_output_type(i, dtype, dims, rank, dim_names);
}
void api_set_error(kiln_op_context* c, const char* message) {
  if (c) c->set_error(message);
}
void api_parallel_for(const kiln_op_context* c, int64_t n, void (*body)(void*, int64_t, int64_t), void* user) {
  if (c && body) c->parallel_for(n, body, user);
}

const kiln_op_api kApi = {
    KILN_CUSTOM_OP_ABI_VERSION, api_node_name,       api_input_count,      api_output_count,   api_input,
    api_attribute_int,          api_attribute_float, api_attribute_string, api_attribute_ints, api_attribute_floats,
    api_allocate_output,        api_set_output_type, api_set_error,        api_parallel_for,
};

}  // namespace

const kiln_op_api* custom_op_api() { return &kApi; }

}  // namespace kiln
