// Fast float32 element-wise arithmetic, Relu and Gelu, for the nodes no pass fused into a producer: the float tail of
// an int8 network (DequantizeLinear -> Add -> Relu -> GlobalAveragePool), the bias sums and GELUs between an int8
// transformer's products, residual sums and activations of models kiln does not lay out. Operands are contiguous and
// of one shape, or one of them is a single element or a row repeated over the other's leading dims (a bias: [3072]
// against [1, 128, 3072]): a plain loop over the elements, in chunks across the pool, writing over a dying input
// where the run's memory plan allows.
// The loops are SSE2 (every x86-64 CPU): these kernels move bytes, they do not wait on arithmetic. The reference
// kernels walk every element through broadcast index arithmetic, and their compiled Relu branches on each sign.
// Each element is one IEEE operation as in the reference kernel (maxps(x, 0) is act::relu: 0 for NaN and -0):
// results are equal, bit for bit. gelu.simd is vmath::gelu (AVX2 / AVX-512; erf to about 2e-7).
#include <emmintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/kernel.h"
#include "kernels/x86/vmath.h"

namespace kiln::cpu {
namespace {

// Elements per parallel chunk: a chunk reads and writes 192 KiB, well above a task's cost.
constexpr int64_t kChunk = int64_t{1} << 14;

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

enum class BinaryOp { kAdd, kSub, kMul, kDiv };

BinaryOp binary_op(const std::string& op_type) {
  if (op_type == "Sub") return BinaryOp::kSub;
  if (op_type == "Mul") return BinaryOp::kMul;
  if (op_type == "Div") return BinaryOp::kDiv;
  return BinaryOp::kAdd;
}

template <BinaryOp kOp>
__m128 apply(__m128 x, __m128 z) {
  if constexpr (kOp == BinaryOp::kAdd) return _mm_add_ps(x, z);
  if constexpr (kOp == BinaryOp::kSub) return _mm_sub_ps(x, z);
  if constexpr (kOp == BinaryOp::kMul) return _mm_mul_ps(x, z);
  return _mm_div_ps(x, z);
}

// Operand i of a full operand, or the single element broadcast.
template <int kStep>
__m128 load(const float* p, int64_t i) {
  if constexpr (kStep == 1) return _mm_loadu_ps(p + i);
  return _mm_set1_ps(p[0]);
}

// y[i] = a[i or 0] op b[i or 0] over [i0, i1); kAStep, kBStep: 1 for a full operand, 0 for a single element. The
// tail goes through the same vector operation, one lane used, so every element is computed the same way.
template <BinaryOp kOp, int kAStep, int kBStep>
void binary_range(const float* a, const float* b, float* y, int64_t i0, int64_t i1) {
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const __m128 lo = apply<kOp>(load<kAStep>(a, i), load<kBStep>(b, i));
    const __m128 hi = apply<kOp>(load<kAStep>(a, i + 4), load<kBStep>(b, i + 4));
    _mm_storeu_ps(y + i, lo);
    _mm_storeu_ps(y + i + 4, hi);
  }
  for (; i < i1; ++i) {
    _mm_store_ss(y + i, apply<kOp>(_mm_set_ss(a[i * kAStep]), _mm_set_ss(b[i * kBStep])));
  }
}

// The operands over [i0, i1) of y's n elements; a row operand (a_row or b_row elements, repeated) is read from the
// row's start, in pieces that do not cross a row's end.
template <BinaryOp kOp>
void binary_span(const float* a, int64_t a_row, const float* b, int64_t b_row, float* y, int64_t i0, int64_t i1) {
  if (a_row == 0 && b_row == 0) return binary_range<kOp, 1, 1>(a, b, y, i0, i1);
  if (a_row == 1) return binary_range<kOp, 0, 1>(a, b, y, i0, i1);
  if (b_row == 1) return binary_range<kOp, 1, 0>(a, b, y, i0, i1);
  const int64_t row = a_row ? a_row : b_row;
  for (int64_t i = i0; i < i1;) {
    const int64_t at = i % row, end = std::min(i1, i + row - at);
    if (a_row) {
      binary_range<kOp, 1, 1>(a + at, b + i, y + i, 0, end - i);
    } else {
      binary_range<kOp, 1, 1>(a + i, b + at, y + i, 0, end - i);
    }
    i = end;
  }
}

template <BinaryOp kOp>
void binary_loop(KernelContext& ctx, const float* a, int64_t a_row, const float* b, int64_t b_row, float* y,
                 int64_t n) {
  ctx.parallel_for(n, kChunk, [&](int64_t i0, int64_t i1) { binary_span<kOp>(a, a_row, b, b_row, y, i0, i1); });
}

// 0 when `t` has y's elements; else the length of the row that repeats to make them: t's dims without its leading
// 1s are the trailing dims of the output (1 for a single element); -1 for any other broadcast.
int64_t row_length(const Tensor& t, const std::vector<int64_t>& out) {
  const int64_t n = t.num_elements();
  int64_t total = 1;
  for (int64_t d : out) total *= d;
  if (n == total) return 0;
  if (n == 1) return 1;
  size_t lead = 0;
  while (lead < t.dims().size() && t.dims()[lead] == 1) ++lead;
  const size_t rank = t.dims().size() - lead;
  if (rank > out.size()) return -1;
  for (size_t k = 0; k < rank; ++k) {
    if (t.dims()[lead + k] != out[out.size() - rank + k]) return -1;
  }
  return n;
}

}  // namespace

// Add, Sub, Mul, Div (opset 7 on: numpy broadcasting) of two float32 tensors of the same shape, or where one is a
// single element or a row the other repeats (row_length).
bool binary_sse2_supports(const KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  if (ctx.isa() < Isa::kAvx2 || !is_f32(a) || !is_f32(b) || ctx.num_inputs() != 2) return false;
  auto dims = broadcast_shapes(a->dims(), b->dims());
  if (!dims.is_ok()) return false;
  const int64_t ar = row_length(*a, *dims), br = row_length(*b, *dims);
  return ar >= 0 && br >= 0 && (ar == 0 || br == 0 || (ar == 1 && br == 1));
}

Status binary_sse2_kernel(KernelContext& ctx) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  auto dims = broadcast_shapes(a.dims(), b.dims());
  if (!dims.is_ok()) return ctx.error(dims.status().message());
  int64_t ar = row_length(a, *dims), br = row_length(b, *dims);
  // The output may take the bytes of an operand that has all its elements and dies here (a residual sum's).
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_reusing(0, ar == 0 ? 0 : 1, DType::kFloat32, *dims));
  const int64_t n = y->num_elements();
  if (n == 0) return Status::ok();
  if (ar == 1 && br == 1) ar = br = 0;  // two single elements: one of each
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = y->data<float>();
  switch (binary_op(ctx.node().op_type)) {
    case BinaryOp::kAdd: binary_loop<BinaryOp::kAdd>(ctx, pa, ar, pb, br, py, n); break;
    case BinaryOp::kSub: binary_loop<BinaryOp::kSub>(ctx, pa, ar, pb, br, py, n); break;
    case BinaryOp::kMul: binary_loop<BinaryOp::kMul>(ctx, pa, ar, pb, br, py, n); break;
    case BinaryOp::kDiv: binary_loop<BinaryOp::kDiv>(ctx, pa, ar, pb, br, py, n); break;
  }
  return Status::ok();
}

bool relu_sse2_supports(const KernelContext& ctx) { return ctx.isa() >= Isa::kAvx2 && is_f32(ctx.input(0)); }

Status relu_sse2_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_reusing(0, 0, DType::kFloat32, x.dims()));
  const float* px = x.data<float>();
  float* py = y->data<float>();
  ctx.parallel_for(x.num_elements(), kChunk, [&](int64_t i0, int64_t i1) {
    const __m128 zero = _mm_setzero_ps();
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
      const __m128 lo = _mm_max_ps(_mm_loadu_ps(px + i), zero), hi = _mm_max_ps(_mm_loadu_ps(px + i + 4), zero);
      _mm_storeu_ps(py + i, lo);
      _mm_storeu_ps(py + i + 4, hi);
    }
    for (; i < i1; ++i) _mm_store_ss(py + i, _mm_max_ss(_mm_set_ss(px[i]), zero));
  });
  return Status::ok();
}

// Gelu (ONNX opset 20, ai.kiln's) of float32 with the exact form (approximate "none"): vmath::gelu in place over
// each chunk, copied first where the output does not take the input's bytes.
bool gelu_simd_supports(const KernelContext& ctx) {
  return ctx.isa() >= Isa::kAvx2 && is_f32(ctx.input(0)) && ctx.attr_string("approximate", "none") == "none";
}

Status gelu_simd_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_reusing(0, 0, DType::kFloat32, x.dims()));
  const float* px = x.data<float>();
  float* py = y->data<float>();
  ctx.parallel_for(x.num_elements(), kChunk / 4, [&](int64_t i0, int64_t i1) {
    if (py != px) std::memcpy(py + i0, px + i0, static_cast<size_t>(i1 - i0) * sizeof(float));
    vmath::gelu(ctx.isa(), py + i0, i1 - i0);
  });
  ctx.set_kernel_detail(std::string("gelu.") + isa_name(ctx.isa()));
  return Status::ok();
}

}  // namespace kiln::cpu
