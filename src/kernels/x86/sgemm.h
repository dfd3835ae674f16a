// A float32 GEMM for weights known in advance: B is packed once into 16-column panels, then C = A @ B (+ bias)
// runs an AVX2/FMA 6x16 register-blocked micro-kernel over K blocks that stay in L1 (A is copied into 6-row
// interleaved panels first when it meets more than 4 weight panels; the next weight block is prefetched while
// one is in use). Used by MatMul, Gemm and
// FusedMatMul when B is a constant of the model (oneDNN 2.6 repacks B on every call, which costs most of the
// time for the M = 128 products of a transformer). Every output element is computed by one task in a fixed
// order, so results do not depend on the thread count. Tested against the reference kernels
// (tests/unit/runtime/fast_kernels_test.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "kernels/isa.h"

namespace kiln::sgemm {

// Every function here needs AVX2 and FMA (cpu::Isa::kAvx2 or better: callers check KernelContext::isa()). Those
// that take an Isa run AVX-512 micro-kernels when it is kAvx512 (two weight panels per call; the packed layouts
// are the same for every ISA). Both sum each output's products in the same order with FMA, so their results are
// bit for bit the same.
struct PackedB {
  int64_t K = 0, N = 0;
  std::unique_ptr<float, void (*)(void*)> data{nullptr, nullptr};  // panels of [K][16], zero-padded
};

// B is [K, N] row-major, or [N, K] when trans_b. Nullptr when out of memory.
std::shared_ptr<PackedB> pack_b(const float* b, int64_t K, int64_t N, bool trans_b);

// An uninitialized PackedB for a [K, N] B, to be written in pack_b's layout (panel p's row k at
// data + (p K + k) 16, the last panel's lanes past N zero). Nullptr when out of memory.
std::shared_ptr<PackedB> allocate_packed_b(int64_t K, int64_t N);

// The floats pack_b_into writes for a [K, N] B: panels of [K][16], the last one zero-padded.
int64_t packed_b_floats(int64_t K, int64_t N);
// B with element (k, n) at b[k * stride_k + n * stride_n] (any view: transposed, strided) into the panel layout
// of pack_b, at `out` (packed_b_floats(K, N) floats).
void pack_b_into(const float* b, int64_t K, int64_t N, int64_t stride_k, int64_t stride_n, float* out);
// On the calling thread: c[M, N] (rows `ldc` apart) = a[M, K] (rows `lda` apart) @ B, B packed at `bp` by
// pack_b_into. For small products that a caller already spreads over threads (one attention head each).
void gemm_serial(cpu::Isa isa, const float* a, int64_t M, int64_t lda, const float* bp, int64_t K, int64_t N, float* c,
                 int64_t ldc);

// c[M, N] = a[M, K] (rows `lda` apart) @ B + bias[N] (nullptr: none). `parallel_for(n, fn)` spreads tasks.
// `epilogue` (when not null) runs on each task's finished block of c while it is in cache: rows x cols
// floats at c, rows ldc apart (an activation).
using ParallelFor = std::function<void(int64_t n, const std::function<void(int64_t, int64_t)>& fn)>;
using Epilogue = std::function<void(float* c, int64_t rows, int64_t cols, int64_t ldc)>;
void gemm(cpu::Isa isa, const float* a, int64_t M, int64_t lda, const PackedB& b, const float* bias, float* c,
          const ParallelFor& parallel_for, const Epilogue* epilogue = nullptr);

// A convolution from a plain NCHW input (a first layer: few input channels, any kernel size) straight into
// the channel-blocked layout: six output pixels at a time are multiplied by the packed weights W [M, C*KH*KW]
// (pack_b(w, C*KH*KW, M, true)), reading the input in place where the six windows lie inside it and through
// an im2col of the tile (zero padding included) at the borders; then bias, the activation (`relu`, or
// `epilogue` when not null, applied to the 6 x 16 tile, 6 x 32 with AVX-512 and blocks of 16) and the scatter into y
// [N, ceil(M/block), OH, OW, block] (padding lanes zero).
struct Conv2dGeometry {
  int64_t N, C, H, W, M, KH, KW, OH, OW;
  int64_t stride_h, stride_w, pad_t, pad_l, dil_h, dil_w;
};
void conv2d_nchw_to_blocked(cpu::Isa isa, const float* x, const Conv2dGeometry& g, const PackedB& w, const float* bias,
                            int64_t block, float* y, bool relu,
                            const std::function<void(float* tile, int64_t n)>* epilogue,
                            const ParallelFor& parallel_for);

// A convolution of a channel-blocked input as one GEMM (for few output pixels, where a direct kernel has too
// little work per weight to hide the weights' trip from memory): the im2col of every output pixel, six pixels
// at a time, is packed straight into the SGEMM's A panels; C [N * OH * OW, M] = A @ W, then bias, z and the
// clamp on each task's block while it is in cache, into the blocked output. x [N, ceil(C/B), H, W, B] (padding
// lanes zero), y and z (null: none; may be y itself) [N, M/B, OH, OW, B] for B = block, 8 or 16; M a multiple of
// B; ReLU is lo 0, hi infinity. W from pack_conv_weights_blocked with the same block (w [M, C, KH, KW]; nullptr
// when out of memory).
std::shared_ptr<PackedB> pack_conv_weights_blocked(const float* w, int64_t M, int64_t C, int64_t KH, int64_t KW,
                                                   int64_t block);
void conv2d_blocked(cpu::Isa isa, int64_t block, const float* x, const Conv2dGeometry& g, const PackedB& w,
                    const float* bias, const float* z, float lo, float hi, float* y, const ParallelFor& parallel_for);

}  // namespace kiln::sgemm
