// Custom ops (kiln/core/custom_ops.h) as ONNX schemas, so that libonnx's shape inference types their outputs with the
// library's shape function and carries the types on downstream: a registry that answers for the custom ops and
// defers to ONNX's own registry for everything else.
#pragma once

#include <map>
#include <memory>

#include <onnx/defs/schema.h>

#include "kiln/core/custom_ops.h"

namespace kiln::onnx {

class CustomSchemaRegistry final : public ::ONNX_NAMESPACE::ISchemaRegistry {
 public:
  explicit CustomSchemaRegistry(const CustomOps& ops) : ops_(ops) {}
  const ::ONNX_NAMESPACE::OpSchema* GetSchema(const std::string& key, const int maxInclusiveVersion,
                                              const std::string& domain) const override;

 private:
  const CustomOps& ops_;
  mutable std::map<const kiln_custom_op*, std::unique_ptr<::ONNX_NAMESPACE::OpSchema>> schemas_;
};

}  // namespace kiln::onnx
