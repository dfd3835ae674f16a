// A custom op's shape function called from libonnx's shape inference, through a kiln_op_context over its
// InferenceContext.
#include "onnx/custom_schemas.h"

#include <string>
#include <vector>

#include "core/custom_op_context.h"

namespace kiln::onnx {

namespace {

namespace ox = ::ONNX_NAMESPACE;

class InferOpContext final : public kiln_op_context {
 public:
  explicit InferOpContext(ox::InferenceContext& ctx) : ctx_(ctx), inputs_(ctx.getNumInputs()) {}

  const char* node_name() const override { return ""; }
  size_t input_count() const override { return ctx_.getNumInputs(); }
  size_t output_count() const override { return ctx_.getNumOutputs(); }
  int input(size_t i, kiln_op_tensor* out) const override {
    if (i >= inputs_.size()) return 1;
    Input& in = inputs_[i];
    in.dims.clear();
    in.names.clear();
    in.name_ptrs.clear();
    const ox::TypeProto* t = ctx_.getInputType(i);
    *out = {0, -1, nullptr, nullptr, nullptr};
    if (!t || !t->has_tensor_type()) return 0;
    out->dtype = t->tensor_type().elem_type();
    if (!t->tensor_type().has_shape()) return 0;
    for (const auto& d : t->tensor_type().shape().dim()) {
      in.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
      in.names.push_back(d.has_dim_param() ? d.dim_param() : std::string());
    }
    for (const auto& n : in.names) in.name_ptrs.push_back(n.c_str());
    out->rank = static_cast<int64_t>(in.dims.size());
    out->dims = in.dims.data();
    out->dim_names = in.name_ptrs.data();
    return 0;
  }
  int attribute_int(const char* name, int64_t* out) const override {
    const auto* a = find(name, ox::AttributeProto::INT);
    if (a) *out = a->i();
    return a ? 0 : 1;
  }
  int attribute_float(const char* name, float* out) const override {
    const auto* a = find(name, ox::AttributeProto::FLOAT);
    if (a) *out = a->f();
    return a ? 0 : 1;
  }
  int attribute_string(const char* name, const char** out, size_t* length) const override {
    const auto* a = find(name, ox::AttributeProto::STRING);
    if (a) {
      *out = a->s().c_str();
      if (length) *length = a->s().size();
    }
    return a ? 0 : 1;
  }
  int attribute_ints(const char* name, const int64_t** out, size_t* count) const override {
    const auto* a = find(name, ox::AttributeProto::INTS);
    if (a) {
      *out = a->ints().data();
      *count = static_cast<size_t>(a->ints_size());
    }
    return a ? 0 : 1;
  }
  int attribute_floats(const char* name, const float** out, size_t* count) const override {
    const auto* a = find(name, ox::AttributeProto::FLOATS);
    if (a) {
      *out = a->floats().data();
      *count = static_cast<size_t>(a->floats_size());
    }
    return a ? 0 : 1;
  }
  void* allocate_output(size_t, int32_t, const int64_t*, size_t) override {
    set_error("allocate_output is for kernels, not shape functions");
    return nullptr;
  }
  int set_output_type(size_t i, int32_t dtype, const int64_t* dims, int64_t rank,
                      const char* const* dim_names) override {
    if (i >= ctx_.getNumOutputs()) {
      set_error(("set_output_type: output " + std::to_string(i) + " does not exist").c_str());
      return 1;
    }
    if (dtype < 1 || dtype > 16) {
      set_error(("set_output_type: output " + std::to_string(i) + ": dtype " + std::to_string(dtype)).c_str());
      return 1;
    }
    ox::TypeProto_Tensor* t = ctx_.getOutputType(i)->mutable_tensor_type();
    t->set_elem_type(dtype);
    if (rank < 0) return 0;
    ox::TensorShapeProto* shape = t->mutable_shape();
    shape->clear_dim();
    for (int64_t d = 0; d < rank; ++d) {
      auto* dim = shape->add_dim();
      if (dims[d] >= 0) {
        dim->set_dim_value(dims[d]);
      } else if (dim_names && dim_names[d] && *dim_names[d]) {
        dim->set_dim_param(dim_names[d]);
      }
    }
    return 0;
  }

 private:
  struct Input {
    std::vector<int64_t> dims;
    std::vector<std::string> names;
    std::vector<const char*> name_ptrs;
  };
  const ox::AttributeProto* find(const char* name, ox::AttributeProto::AttributeType type) const {
    const ox::AttributeProto* a = ctx_.getAttribute(name);
    return a && a->type() == type ? a : nullptr;
  }
  ox::InferenceContext& ctx_;
  mutable std::vector<Input> inputs_;
};

std::string op_name(const kiln_custom_op& op) {
  return (*op.domain ? std::string(op.domain) + "::" : std::string()) + op.op_type;
}

}  // namespace

const ox::OpSchema* CustomSchemaRegistry::GetSchema(const std::string& key, const int maxInclusiveVersion,
                                                    const std::string& domain) const {
  const CustomOps::Found found = ops_.find(domain, key, maxInclusiveVersion);
  if (!found.op) return ox::OpSchemaRegistry::Instance()->GetSchema(key, maxInclusiveVersion, domain);
  auto& schema = schemas_[found.op];
  if (!schema) {
    const kiln_custom_op* op = found.op;
    const std::string library = found.library->path();
    schema = std::make_unique<ox::OpSchema>(op->op_type, library, 0);
    schema->SetDomain(op->domain).SinceVersion(op->since_version).AllowUncheckedAttributes();
    if (op->max_inputs > 0) {
      schema->Input(0, "inputs", "", "T", ox::OpSchema::Variadic, /*is_homogeneous=*/false, op->min_inputs);
    }
    schema->Output(0, "outputs", "", "T", ox::OpSchema::Variadic, /*is_homogeneous=*/false, op->num_outputs);
    schema->TypeConstraint("T", ox::OpSchema::all_tensor_types(), "any tensor");
    if (op->infer_types) {
      schema->TypeAndShapeInferenceFunction([op, library](ox::InferenceContext& ctx) {
        InferOpContext c(ctx);
        if (op->infer_types(custom_op_api(), &c) != 0) {
          throw ox::InferenceError("[ShapeInferenceError] custom op " + op_name(*op) + " from '" + library +
                                   "': its shape function failed" + (c.error.empty() ? "" : ": " + c.error));
        }
      });
    }
    schema->Finalize();
  }
  return schema.get();
}

}  // namespace kiln::onnx
