// Custom-operator libraries (include/kiln/custom_op.h): loading one, checking what it declares, and finding the op
// that serves a node. The checker (kiln::onnx) and the runtime (kiln::Session) both take a set of loaded libraries.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/custom_op.h"

namespace kiln {

class CustomOpLibrary {
 public:
  // Loads the shared library at `path` (dlopen) and checks what it declares: the exported
  // kiln_custom_op_library_get, its ABI version, and each op (domain, op type, counts, compute function). Every
  // error names the library (and the op). The same path loaded again shares the first load.
  static StatusOr<std::shared_ptr<const CustomOpLibrary>> load(const std::string& path);
  ~CustomOpLibrary();
  CustomOpLibrary(const CustomOpLibrary&) = delete;
  CustomOpLibrary& operator=(const CustomOpLibrary&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<const kiln_custom_op*>& ops() const { return ops_; }

 private:
  CustomOpLibrary(std::string path, void* handle) : path_(std::move(path)), handle_(handle) {}
  std::string path_;
  void* handle_;
  std::vector<const kiln_custom_op*> ops_;
};

// The custom ops a session or a check knows, from one or more libraries.
class CustomOps {
 public:
  // Loads every library (CustomOpLibrary::load); an op declared by two of them is an error naming both.
  static StatusOr<CustomOps> load(const std::vector<std::string>& paths);

  struct Found {
    const kiln_custom_op* op = nullptr;
    const CustomOpLibrary* library = nullptr;
  };
  // The op serving (domain, op_type) at the model's `opset` of that domain ("" and "ai.onnx" are one domain): the
  // one with the highest since_version <= opset. op is nullptr when none does.
  Found find(const std::string& domain, const std::string& op_type, int64_t opset) const;
  bool empty() const { return libraries_.empty(); }
  const std::vector<std::shared_ptr<const CustomOpLibrary>>& libraries() const { return libraries_; }

 private:
  std::vector<std::shared_ptr<const CustomOpLibrary>> libraries_;
};

// The table of functions kiln passes to custom kernels and shape functions (src/core/custom_op_context.h).
const kiln_op_api* custom_op_api();

}  // namespace kiln
