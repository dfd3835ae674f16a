// Conv, ConvTranspose, MatMul and Gemm of models stored in float16 or bfloat16 (exported in half precision): the
// node runs as float32, on the kernel a float32 node of the same shapes gets (select_kernel: a fast one where one
// supports it), with its inputs widened to float32 and its output rounded back to the model's type once, as ONNX
// Runtime's CPU provider runs the half-precision nodes it has no kernel for. The widening is exact; the result
// differs from the reference kernel's (which also sums in float32 and rounds once) only by the float32 summation
// order. Constant inputs are widened once, in the node's cache, so that the float32 kernel prepares its weights once
// too. Tested against the reference kernels (tests/unit/runtime/fast_kernels_test.cc).
#include <immintrin.h>

#include <memory>
#include <string>
#include <vector>

#include "kernels/fast/parallel.h"
#include "kernels/kernel.h"
#include "kernels/x86/scratch.h"

namespace kiln::cpu {
namespace {

// The 16-bit values of one type <-> float32, n of them. Float16 with F16C (round to nearest even, as float_to_half;
// every AVX2 CPU has it), bfloat16 with the reference's functions (bfloat16 models are rare, and this keeps the
// reference's NaN and rounding rules without a second copy of them).
__attribute__((target("avx2,f16c"))) void half_to_float_f16c(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  }
  for (; i < n; ++i) y[i] = half_to_float(x[i]);
}
__attribute__((target("avx2,f16c"))) void float_to_half_f16c(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) y[i] = float_to_half(x[i]);
}

void widen(const KernelContext& ctx, DType from, const uint16_t* x, float* y, int64_t n) {
  ctx.parallel_for(n, int64_t{1} << 15, [&](int64_t b, int64_t e) {
    if (from == DType::kFloat16) {
      half_to_float_f16c(x + b, y + b, e - b);
    } else {
      for (int64_t i = b; i < e; ++i) y[i] = bfloat16_to_float(x[i]);
    }
  });
}

void narrow(const KernelContext& ctx, DType to, const float* x, uint16_t* y, int64_t n) {
  ctx.parallel_for(n, int64_t{1} << 15, [&](int64_t b, int64_t e) {
    if (to == DType::kFloat16) {
      float_to_half_f16c(x + b, y + b, e - b);
    } else {
      for (int64_t i = b; i < e; ++i) y[i] = float_to_bfloat16(x[i]);
    }
  });
}

StatusOr<Tensor> widened(const KernelContext& ctx, const Tensor& t) {
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(DType::kFloat32, t.dims()));
  widen(ctx, t.dtype(), t.data<uint16_t>(), out.data<float>(), t.num_elements());
  return out;
}

// The float32 node's output, in the calling thread's scratch (kept from call to call: a steady-state run makes no
// allocation and touches no new page; the output is rounded into the node's own before the call returns).
class ScratchOutput final : public OutputArena {
 public:
  StatusOr<Tensor> allocate(size_t, size_t, DType dtype, std::vector<int64_t> dims, const void*) override {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;  // checked by the context (check_output_size) before it asks
    const size_t bytes = dtype_storage_bytes(dtype, n);
    float* data = x86::thread_scratch<x86::ScratchUser::kHalfOutput>().reserve(bytes / sizeof(float) + 1);
    return Tensor::borrow(dtype, std::move(dims), data);
  }
};

// A constant input widened once (the node's cache holds it: its address stays the same from run to run).
struct WideConstant {
  Value value;
};

}  // namespace

// Every float input in the same 16-bit type, on a CPU with AVX2 (F16C comes with it).
bool half_as_float_supports(const KernelContext& ctx) {
  const Tensor* x = ctx.input(0);
  if (!x || !is_half(x->dtype()) || ctx.isa() < Isa::kAvx2 || !cpu_features().f16c) return false;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Value* v = ctx.value(i);
    if (v && (!v->is_tensor() || v->tensor().dtype() != x->dtype())) return false;
  }
  return ctx.num_outputs() == 1;
}

Status half_as_float_kernel(KernelContext& ctx) {
  const DType half = ctx.input(0)->dtype();
  std::vector<Value> wide(ctx.num_inputs());
  std::vector<const Value*> inputs(ctx.num_inputs(), nullptr);
  // The fed inputs widened one after another into the calling thread's scratch.
  size_t fed = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor* t = ctx.input(i);
    if (t && !(ctx.input_is_constant(i) && ctx.cache())) fed += static_cast<size_t>(t->num_elements());
  }
  float* next = x86::thread_scratch<x86::ScratchUser::kHalfInputs>().reserve(fed + 1);
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor* t = ctx.input(i);
    if (!t) continue;
    if (ctx.input_is_constant(i) && ctx.cache()) {
      const CacheKey key{CacheEntry::kWidenedConstant, {static_cast<int64_t>(i)}};
      KILN_ASSIGN_OR_RETURN(auto c,
                            ctx.cache()->get<WideConstant>(key, [&]() -> StatusOr<std::shared_ptr<WideConstant>> {
                              KILN_ASSIGN_OR_RETURN(Tensor w, widened(ctx, *t));
                              return std::make_shared<WideConstant>(WideConstant{Value(std::move(w))});
                            }));
      wide[i] = c->value;  // shares the cached tensor's bytes
    } else {
      widen(ctx, half, t->data<uint16_t>(), next, t->num_elements());
      wide[i] = Value(Tensor::borrow(DType::kFloat32, t->dims(), next));
      next += t->num_elements();
    }
    inputs[i] = &wide[i];
  }
  // The node as float32, with this node's services: its pool, ISA cap, precision, caches and constant inputs.
  KernelContext f32(ctx.node(), ctx.opset(), inputs, 1, ctx.subgraphs());
  f32.set_thread_pool(ctx.thread_pool());
  f32.set_isa(ctx.isa());
  f32.set_precision(ctx.precision());
  f32.set_cache(ctx.cache());
  f32.set_shared_cache(ctx.shared_cache());
  f32.set_constant_inputs(ctx.constant_inputs());
  ScratchOutput output;
  f32.set_run_memory(&output, 0);
  const KernelDef* k = select_kernel(find_candidates(ctx.node().domain, ctx.node().op_type, ctx.opset()), f32, false);
  if (!k) return ctx.error("no float32 kernel for " + ctx.node().op_type);
  KILN_RETURN_IF_ERROR(k->fn(f32));
  const Value out = f32.take_output(0);
  if (!out.is_tensor() || out.tensor().dtype() != DType::kFloat32) {
    return ctx.error(std::string("the float32 kernel '") + k->name + "' gave no float32 tensor");
  }
  const Tensor& y32 = out.tensor();
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, half, y32.dims()));
  narrow(ctx, half, y32.data<float>(), y->data<uint16_t>(), y32.num_elements());
  const std::string inner = f32.kernel_detail().empty() ? k->name : f32.kernel_detail();
  ctx.set_kernel_detail((half == DType::kFloat16 ? "float16 as float32: " : "bfloat16 as float32: ") + inner);
  return Status::ok();
}

}  // namespace kiln::cpu
