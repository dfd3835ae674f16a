// A custom op's compute, called through a kiln_op_context over the node's KernelContext.
#include "runtime/custom_op_kernel.h"

#include <cstring>
#include <vector>

#include "core/custom_op_context.h"

namespace kiln {

namespace {

bool dtype_ok(int32_t dtype) { return dtype >= 1 && dtype <= 16 && dtype != static_cast<int32_t>(DType::kString); }

class KernelOpContext final : public kiln_op_context {
 public:
  explicit KernelOpContext(cpu::KernelContext& ctx) : ctx_(ctx) {}

  const char* node_name() const override { return ctx_.node().name.c_str(); }
  size_t input_count() const override { return ctx_.num_inputs(); }
  size_t output_count() const override { return ctx_.num_outputs(); }
  int input(size_t i, kiln_op_tensor* out) const override {
    if (i >= ctx_.num_inputs()) return 1;
    const Tensor* t = ctx_.input(i);
    if (!t) {
      *out = {0, 0, nullptr, nullptr, nullptr};
      return 0;
    }
    *out = {static_cast<int32_t>(t->dtype()), static_cast<int64_t>(t->rank()), t->dims().data(), t->raw_data(),
            nullptr};
    return 0;
  }
  int attribute_int(const char* name, int64_t* out) const override {
    const ir::Attribute* a = find(name, ir::AttrType::kInt);
    if (a) *out = a->i;
    return a ? 0 : 1;
  }
  int attribute_float(const char* name, float* out) const override {
    const ir::Attribute* a = find(name, ir::AttrType::kFloat);
    if (a) *out = a->f;
    return a ? 0 : 1;
  }
  int attribute_string(const char* name, const char** out, size_t* length) const override {
    const ir::Attribute* a = find(name, ir::AttrType::kString);
    if (a) {
      *out = a->s.c_str();
      if (length) *length = a->s.size();
    }
    return a ? 0 : 1;
  }
  int attribute_ints(const char* name, const int64_t** out, size_t* count) const override {
    const ir::Attribute* a = find(name, ir::AttrType::kInts);
    if (a) {
      *out = a->ints.data();
      *count = a->ints.size();
    }
    return a ? 0 : 1;
  }
  int attribute_floats(const char* name, const float** out, size_t* count) const override {
    const ir::Attribute* a = find(name, ir::AttrType::kFloats);
    if (a) {
      *out = a->floats.data();
      *count = a->floats.size();
    }
    return a ? 0 : 1;
  }
  void* allocate_output(size_t i, int32_t dtype, const int64_t* dims, size_t rank) override {
    if (i >= ctx_.num_outputs()) {
      set_error(("allocate_output: output " + std::to_string(i) + " does not exist (the node has " +
                 std::to_string(ctx_.num_outputs()) + ")")
                    .c_str());
      return nullptr;
    }
    if (!dtype_ok(dtype)) {
      set_error(("allocate_output: output " + std::to_string(i) + ": dtype " + std::to_string(dtype) +
                 " (expected a numeric KILN_DTYPE_*)")
                    .c_str());
      return nullptr;
    }
    std::vector<int64_t> d(dims, dims + rank);
    for (size_t k = 0; k < rank; ++k) {
      if (d[k] < 0) {
        set_error(("allocate_output: output " + std::to_string(i) + ": dim " + std::to_string(k) + " is " +
                   std::to_string(d[k]))
                      .c_str());
        return nullptr;
      }
    }
    auto t = ctx_.allocate_output(i, static_cast<DType>(dtype), std::move(d));
    if (!t.is_ok()) {
      status = t.status();
      set_error(t.status().message().c_str());
      return nullptr;
    }
    allocated.resize(ctx_.num_outputs());
    allocated[i] = true;
    return (*t)->raw_data();
  }
  int set_output_type(size_t, int32_t, const int64_t*, int64_t, const char* const*) override {
    set_error("set_output_type is for shape functions, not kernels");
    return 1;
  }
  void parallel_for(int64_t n, void (*body)(void*, int64_t, int64_t), void* user) const override {
    ctx_.parallel_for(n, 1, [&](int64_t begin, int64_t end) { body(user, begin, end); });
  }

  Status status;  // an allocation kiln refused (its code is kept)
  std::vector<bool> allocated;

 private:
  const ir::Attribute* find(const char* name, ir::AttrType type) const {
    for (const auto& a : ctx_.node().attributes) {
      if (a.name == name && a.type == type) return &a;
    }
    return nullptr;
  }
  cpu::KernelContext& ctx_;
};

Status run_custom_op(cpu::KernelContext& ctx) {
  const auto* k = static_cast<const CustomKernel*>(ctx.kernel_data());
  if (!k) return internal_error("a custom-op kernel without its op");
  const std::string from = "custom op from '" + k->library + "'";
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Value* v = ctx.value(i);
    if (v && !v->is_tensor())
      return ctx.error(from + ": input " + std::to_string(i) + " is " + v->describe() + ", not a tensor");
    if (v && v->tensor().dtype() == DType::kString) {
      return ctx.error(from + ": input " + std::to_string(i) + " is a string tensor, which custom ops do not take");
    }
  }
  KernelOpContext c(ctx);
  const int rc = k->op->compute(custom_op_api(), &c);
  if (!c.status.is_ok()) return Status(c.status.code(), ctx.error(from + ": " + c.status.message()).message());
  if (rc != 0) {
    return ctx.error(from + " failed (returned " + std::to_string(rc) + ")" + (c.error.empty() ? "" : ": " + c.error));
  }
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    if (cpu::wants_output(ctx, i) && (i >= c.allocated.size() || !c.allocated[i])) {
      return ctx.error(from + " returned without allocating output " + std::to_string(i));
    }
  }
  return Status::ok();
}

}  // namespace

std::unique_ptr<CustomKernel> make_custom_kernel(const CustomOps::Found& found) {
  auto k = std::make_unique<CustomKernel>();
  k->op = found.op;
  k->library = found.library->path();
  const size_t slash = k->library.find_last_of('/');
  k->name = "custom:" + (slash == std::string::npos ? k->library : k->library.substr(slash + 1));
  k->def = cpu::KernelDef{found.op->domain, found.op->op_type, found.op->since_version,
                          INT32_MAX,        run_custom_op,     cpu::kAnyDType};
  k->def.name = k->name.c_str();
  k->def.data = k.get();
  return k;
}

}  // namespace kiln
