// Sessions from ONNX models: the one part of the session that links the ONNX importer (kiln_runtime). A path or
// bytes holding an engine plan go to create_from_plan (session_plan.cc, kiln_engine).
#include <cstring>

#include "kiln/onnx/check.h"
#include "kiln/onnx/model_io.h"
#include "kiln/runtime/plan.h"
#include "runtime/plan_format.h"
#include "runtime/session_impl.h"

namespace kiln {

StatusOr<std::unique_ptr<Session>> Session::create(const std::string& path, const SessionOptions& options) {
  if (is_plan_file(path)) return create_from_plan(path, options);
  KILN_ASSIGN_OR_RETURN(auto model, onnx::load_model(path));
  auto s = create(std::move(model), options);
  if (!s.is_ok()) return s.status().with_context(path);
  return s;
}

StatusOr<std::unique_ptr<Session>> Session::create_from_bytes(const void* data, size_t size,
                                                              const SessionOptions& options) {
  if (data && size >= sizeof plan::kMagic && std::memcmp(data, plan::kMagic, sizeof plan::kMagic) == 0) {
    return create_from_plan_bytes(data, size, options);
  }
  KILN_ASSIGN_OR_RETURN(auto model, onnx::load_model_from_bytes(data, size));
  return create(std::move(model), options);
}

StatusOr<std::unique_ptr<Session>> Session::create(ir::Model model, const SessionOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->model = std::move(model);
  impl->options = options;
  // The optimizer's patterns and the kernels take each node's schema for granted: a node with too few inputs or no
  // output is refused here.
  KILN_RETURN_IF_ERROR(onnx::check_node_arity(impl->model));
  KILN_RETURN_IF_ERROR(impl->init(/*optimize=*/true));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

}  // namespace kiln
