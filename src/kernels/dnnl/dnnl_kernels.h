// Building blocks on oneDNN (libdnnl) for the fast kernels of src/kernels/fast (conv.dnnl, nchwc_conv.dnnl,
// matmul.dnnl, ...), each tested against its reference kernel in src/kernels/ref
// (tests/unit/runtime/fast_kernels_test.cc); the session runs the reference kernel where no fast kernel's
// supports() holds, or when SessionOptions::reference_kernels asks for it.
//
// Primitives are made once per node and input shape and kept in the node's KernelCache, together with the
// weights reordered into the layout the primitive wants when the weights are constants of the model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/kernel.h"
#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln::dnnl_kernels {

struct ConvParams {
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pad_begin, pad_end;  // per spatial dim, ONNX conventions
  std::vector<int64_t> out_dims;                                // N, M, spatial...
  // Channel-blocked (NCHWc) tensors, 2-D only: the logical N, C, H, W of x, and the block of x and y
  // (0: plain NCHW). A blocked tensor is stored as [N, ceil(C / block), H, W, block], padding lanes zero.
  std::vector<int64_t> src_dims;  // empty: x.dims()
  int src_block = 0, dst_block = 0;
  // Multiply in bfloat16 with float32 accumulation (Precision::kBf16): x is converted on each call, constant
  // weights once; y, b and z stay float32, and the primitive picks its own layouts (AMX's are channels-last),
  // with reorders at the edges.
  bool bf16 = false;
  // x, z and y channels-last ([N, H, W, C], 2-D only) in bfloat16 or float32 (io_bf16), the layout oneDNN's AMX
  // kernels take (ai.kiln NhwcConv); p.bf16 must hold with io_bf16. out_dims stay the logical [N, M, OH, OW].
  bool channels_last = false, io_bf16 = false;
};

// True when oneDNN has a direct (jit) kernel for this convolution in the layouts p asks for; false when it
// would fall back to its reference or gemm implementation plus reorders.
bool conv_has_direct_kernel(const Tensor& x, const Tensor& w, bool has_bias, const ConvParams& p);

// Caps oneDNN's instruction set at `isa` for the rest of the process (avx512: no cap). Only the first call
// counts, and only before oneDNN has dispatched a kernel (its choice is process-wide and fixed from then on).
void cap_isa(cpu::Isa isa);

// The channel block oneDNN's kernels prefer on this CPU: 16 with AVX-512, else 8.
int preferred_channel_block();

// True when conv_f32 takes this case: float32 X/W/B, 1 to 3 spatial dims.
bool conv_supported(const Tensor& x, const Tensor& w, const Tensor* b);

// y = x permuted [N, C, H, W] -> [N, H, W, C] (to_nhwc) or back, converted from x's dtype to y's (float32 or
// bfloat16; to bfloat16 rounds to nearest even), on oneDNN's reorder. `cache`: the node's cache (nullptr: nothing
// kept).
Status reorder_channels(const Tensor& x, bool to_nhwc, Tensor& y, cpu::KernelCache* cache, int threads);

// y = act(Conv(x, w) + b + z), into `y` (allocated by the caller with p.out_dims). `z` (optional) has
// y's shape. `cache`: the node's cache (nullptr: nothing kept); `constant_weights`: w never changes, so its
// packed form is kept. `threads`: OpenMP threads oneDNN may use (0: its default). `impl` (optional) receives
// the implementation oneDNN chose, "dnnl_conv(brgconv:avx512_core)". A `y` without data (a kernel in
// KernelContext::preparing()) makes the primitive and its packed weights in the caches and computes nothing.
Status conv_f32(const Tensor& x, const Tensor& w, const Tensor* b, const Tensor* z, const ConvParams& p,
                const cpu::Activation& act, cpu::KernelCache* cache, bool constant_weights, Tensor& y, int threads,
                std::string* impl = nullptr, cpu::KernelCache* shared = nullptr);

// ONNX QLinearConv on oneDNN's int8 convolution: x uint8 or int8 (plain layout) with a zero point, w int8 with
// zero points 0, bias int32 [M] (optional), y uint8 or int8:
// y = saturate(round_half_even((sum (x - x_zero_point) * w + bias) * scales[m]) + y_zero_point),
// scales[m] = x_scale * w_scale[m] / y_scale (one value: per tensor). p.conv gives the geometry (plain layouts).
struct QConvParams {
  ConvParams conv;
  int32_t x_zero_point = 0, y_zero_point = 0;
  std::vector<float> scales;
  bool x_signed = false, y_signed = false;
  // x and y channels-last ([N, H, W, C], ai.kiln NhwcQLinearConv); conv.out_dims stay the logical [N, M, OH, OW].
  bool channels_last = false;
  // A residual sum (NhwcQLinearConv with Z, a QLinearAdd fused): the scaled value is clipped to [clip_lo, clip_hi],
  // then sum_scale * (z - sum_zero_point) is added (oneDNN's sum post-op, z copied into y first unless y holds it)
  // and, with relu, max(., 0), before y's zero point and the rounding.
  bool sum = false, relu = false;
  float clip_lo = 0, clip_hi = 0, sum_scale = 1;
  int32_t sum_zero_point = 0;
  // Which of oneDNN's implementations runs it (a tactic the tuner times): oneDNN's first choice, or its direct JIT
  // convolution ("jit_int8:...") or its 1x1 one ("jit_int8_1x1:...") where oneDNN has them for these shapes (else
  // its first choice). With AVX512-VNNI and no AMX, oneDNN ranks brgconv first, which some shapes run slower.
  enum class Impl { kFirst, kJit, kJit1x1 } impl = Impl::kFirst;
};
Status qconv_int8(const Tensor& x, const Tensor& w, const Tensor* bias, const QConvParams& p, cpu::KernelCache* cache,
                  bool constant_weights, Tensor& y, int threads, std::string* impl = nullptr,
                  cpu::KernelCache* shared = nullptr, const void* z = nullptr);

// A quantized 2-D product y[M, N] = a[M, K] @ b[K, N], row-major, on oneDNN's int8 matmul. QLinearMatMul: a
// uint8/int8 with a zero point, b int8 with zero points 0, y uint8/int8, scales[n] = a_scale * b_scale[n] / y_scale
// (one value: per tensor); y = saturate(round_half_even(acc * scales[n]) + y_zero_point). MatMulInteger: y int32
// (y_type kInt32), no scales, acc itself.
struct QMatMulParams {
  int64_t M = 0, N = 0, K = 0;
  DType a_type = DType::kUInt8, b_type = DType::kInt8, y_type = DType::kUInt8;
  int32_t a_zero_point = 0, y_zero_point = 0;
  std::vector<float> scales;
};
Status qmatmul_int8(const void* a, const void* b, void* y, const QMatMulParams& p, cpu::KernelCache* cache,
                    bool constant_b, int threads, std::string* impl = nullptr, cpu::KernelCache* shared = nullptr);

// y = ConvTranspose(x, w) + b into `y` (allocated with p.out_dims), plain layouts; p.pad_end is oneDNN's
// right padding ((in - 1) * stride + effective kernel - pad_begin - out; >= 0).
Status deconv_f32(const Tensor& x, const Tensor& w, const Tensor* b, const ConvParams& p, cpu::KernelCache* cache,
                  bool constant_weights, Tensor& y, int threads, std::string* impl = nullptr);

// y[M, N] = act(alpha * op(a) @ op(b) (+ bias[N])) for float32 2-D a and b given as row-major buffers, op =
// transpose when trans_*: the shape is that of the stored matrix ([K, M] for a transposed a). `batch` > 1: a
// and b hold `batch` matrices each, one after the other (3-D batched product, no transposes).
struct MatMulParams {
  int64_t batch = 1, M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f;
  // Multiply in bfloat16 with float32 accumulation: a (and a B that is not constant) converted on each call, a
  // constant B once; bias and y stay float32.
  bool bf16 = false;
};
// `impl` (optional) receives the implementation oneDNN chose, "dnnl_matmul(brg:avx512_core)". `shared` (optional):
// the session's cache for what depends only on constants; a constant B reordered into the primitive's layout is
// kept there, keyed by B's address and the layout, so that nodes reading the same initializer (a model whose
// layers share weights) keep one copy. `y` null (a kernel in KernelContext::preparing()): the primitive only.
Status matmul_f32(const float* a, const float* b, const float* bias, float* y, const MatMulParams& p,
                  const cpu::Activation& act, cpu::KernelCache* cache, bool constant_b, int threads,
                  std::string* impl = nullptr, cpu::KernelCache* shared = nullptr);

// y = softmax (or log-softmax) of each of `rows` contiguous rows of `len` floats.
Status softmax_f32(const float* x, float* y, int64_t rows, int64_t len, bool log, int threads);

// data[0, n) = act(data) in place, on oneDNN's vectorized eltwise kernels.
Status eltwise_f32(float* data, int64_t n, const cpu::Activation& act, int threads);

}  // namespace kiln::dnnl_kernels
