// Fast CPU kernels on oneDNN (libdnnl). Each one has a plain reference kernel in kernels/cpu that it is
// tested against (tests/unit/runtime/fast_kernels_test.cc); the reference kernel runs when oneDNN cannot
// take a case, or when SessionOptions::reference_kernels asks for it.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln::dnnl_kernels {

struct ConvParams {
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pad_begin, pad_end;  // per spatial dim, ONNX conventions
  std::vector<int64_t> out_dims;                                // N, M, spatial...
};

// True when conv_f32 takes this case: float32 X/W/B, 1 to 3 spatial dims.
bool conv_supported(const Tensor& x, const Tensor& w, const Tensor* b);

// y = Conv(x, w) + b, allocated here. `threads`: OpenMP threads oneDNN may use (0: its default).
StatusOr<Tensor> conv_f32(const Tensor& x, const Tensor& w, const Tensor* b, const ConvParams& p, int threads);

}  // namespace kiln::dnnl_kernels

namespace kiln::dnnl_kernels {

// y[M, N] = alpha * op(a) @ op(b) (+ bias[N]) for float32 2-D a and b given as row-major buffers, op = transpose
// when trans_*: the shape is that of the stored matrix ([K, M] for a transposed a). `batch` > 1: a and b hold
// `batch` matrices each, one after the other (3-D batched product, no transposes).
struct MatMulParams {
  int64_t batch = 1, M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f;
};
Status matmul_f32(const float* a, const float* b, const float* bias, float* y, const MatMulParams& p, int threads);

}  // namespace kiln::dnnl_kernels
