// 3x3 convolutions as Winograd F(2x2, 3x3) or F(4x4, 3x3) on the channel-blocked layout (blocks of 8 with
// AVX2/FMA, blocks of 16 with AVX-512; one source for both, winograd_impl.inc). Each (T + 2) x (T + 2) input patch, the
// window of a T x T output tile, is transformed (B^T d B); the (T + 2)^2 transformed positions are as many products
// [tiles, C] @ [C, M] on the SGEMM against weights transformed once (G g G^T); each output tile is A^T m A, then bias,
// residual and clamp. 2.25 (T = 2) or 4 (T = 4) times fewer multiplications than the direct convolution; T = 4 has (T +
// 2)^2 / 9 = 4 times the weights to read (T = 2: 1.8 times) and rounds the output up to whole tiles of 4. Stride-2 3x3
// convolutions take a stride-2 form with tiles of 2 (5x5 patches: F(2, 2) on the even rows and columns, the middle tap
// on the odd ones; 25 products a tile instead of 36). With up to 1 MiB of transformed weights each thread takes runs of
// tiles through all three steps in its own cache; with more, both threads work on shared chunks of tiles step by step.
// Every output is computed by one task in a fixed order, so results do not depend on the thread count. Tested
// against the reference convolution (tests/unit/runtime/fast_kernels_test.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/x86/sgemm.h"

namespace kiln::winograd {

struct Weights {
  int64_t C = 0, M = 0;
  int tile = 2;                                    // T: F(2x2, 3x3) or F(4x4, 3x3)
  int stride = 1;                                  // 2: the stride-2 form (tile 2)
  std::vector<std::shared_ptr<sgemm::PackedB>> u;  // position xi = (T + 2) i + j of G g G^T, as a packed [C, M]
};

// From w [M, C, 3, 3] for output tiles of `tile` (2 or 4) at stride 1, or of 2 at stride 2, spread over
// `parallel_for`'s threads; nullptr when out of memory.
std::shared_ptr<Weights> transform_weights(const float* w, int64_t M, int64_t C, int tile, int stride,
                                           const sgemm::ParallelFor& parallel_for);

// The number of output tiles of `tile` x `tile` in n images of oh x ow.
int64_t tiles(int tile, int64_t n, int64_t oh, int64_t ow);

struct Geometry {
  int64_t N, C, H, W, M, OH, OW, pad_t, pad_l;
};

// Whether conv3x3_blocked runs on tensors of channel blocks of `block` with `isa`: blocks of 8 need AVX2 (one
// ymm register a block), blocks of 16 AVX-512 (one zmm register).
bool supports(cpu::Isa isa, int64_t block);

// y [N, M/B, OH, OW, B] = the convolution of x [N, C/B, H, W, B] (zero outside the input) + bias[M] (nullptr:
// none) + z (nullptr: none; y's layout, may be y itself), clamped to [lo, hi] (ReLU: 0 and infinity), for
// B = `block`. C and M are multiples of B; supports(isa, block) must hold. The transforms and products of each
// output are the same for every ISA and block.
void conv3x3_blocked(cpu::Isa isa, int64_t block, const float* x, const Geometry& g, const Weights& w,
                     const float* bias, const float* z, float lo, float hi, float* y,
                     const sgemm::ParallelFor& parallel_for);

}  // namespace kiln::winograd
