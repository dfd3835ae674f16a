// 1x1 convolutions at stride 1 on the channel-blocked layout (a "pointwise" convolution: MobileNet's expand and
// project layers, ResNet's bottleneck ends), computed in place without an im2col: each call multiplies a tile of up
// to six neighbouring output pixels by up to four blocks of output channels (AVX-512: 24 zmm accumulators; AVX2:
// two blocks of 8, 12 ymm), broadcasting each input channel of a pixel from the blocked input and reading the
// weights of the tile's blocks one input channel at a time. Bias, residual and clamp are applied in registers before
// the single store. No packing of the input and no intermediate buffer: a layer with few pixels and many weights
// (the 7x7 and 14x14 stages) reads each weight from cache once per tile instead of going through a GEMM's
// im2col and scatter. One source for both widths (pointwise_impl.inc). Every output is the sum over the input
// channels in increasing order, started from the bias, whatever the thread count. Tested against the reference
// convolution (tests/unit/runtime/fast_kernels_test.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/x86/sgemm.h"

namespace kiln::pointwise {

// W [M, C, 1, 1] for blocks of B: [Mp / B][Cp][B] (Mp, Cp: M and C rounded up to B), zero past M and C.
struct Weights {
  int64_t M = 0, C = 0, Mp = 0, Cp = 0, block = 0;
  std::unique_ptr<float, void (*)(void*)> data{nullptr, nullptr};
};

// nullptr when out of memory.
std::shared_ptr<Weights> pack_weights(const float* w, int64_t M, int64_t C, int64_t block);

// Whether conv1x1_blocked runs blocks of `block` with `isa`: 8 with AVX2, 16 with AVX-512.
bool supports(cpu::Isa isa, int64_t block);

// y [N, Mp/B, HW, B] = x [N, Cp/B, HW, B] (padding lanes zero) by w, + bias[M] (nullptr: none) + z (nullptr: none;
// y's layout, may be y itself), clamped to [lo, hi], for B = w.block. Where M is not a multiple of B, lo <= 0 <= hi
// (the padding lanes stay zero). supports(isa, w.block) must hold. `threads`: how many threads parallel_for runs
// on (the work is cut into one or two equal parts for each).
void conv1x1_blocked(cpu::Isa isa, const float* x, int64_t N, int64_t HW, const Weights& w, const float* bias,
                     const float* z, float lo, float hi, float* y, int threads, const sgemm::ParallelFor& parallel_for);

// What this kernel and direct_conv.h share:
// Output blocks per work item: `most` (4 blocks of 16 with AVX-512, 2 of 8 with AVX2), or fewer where that splits MB
// into equal groups (6 blocks: two groups of 3 rather than 4 and 2).
int64_t blocks_per_group(int64_t MB, int64_t most);
// bias[M] with w's padding lanes (zero) in `storage` where w.M is not a multiple of the block; else bias itself.
const float* padded_bias(const float* bias, const Weights& w, std::vector<float>& storage);
// The work items (image, output group, tile), N x groups x tiles in that order, split into equal runs of items, one
// or two per thread (a thread reads the weights of the groups it has: the 7x7 stages' as good as once from memory;
// and no thread waits for one with a group more: five groups on two threads), each run handed to fn(n, group, i0, i1)
// in pieces of consecutive tiles [i0, i1) of one image and group.
void for_tile_runs(int64_t N, int64_t groups, int64_t tiles, int threads, const sgemm::ParallelFor& parallel_for,
                   const std::function<void(int64_t, int64_t, int64_t, int64_t)>& fn);

}  // namespace kiln::pointwise
