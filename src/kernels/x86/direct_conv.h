// Direct KxK convolutions (any stride, dilation 1) into the channel-blocked layout, from a blocked input or from a
// plain [N, C, H, W] one (a first layer with few channels), without an im2col: each call multiplies a tile of up to
// six neighbouring output pixels of one row by up to four blocks of output channels (AVX-512: 24 zmm accumulators;
// AVX2: two blocks of 8, 12 ymm), broadcasting one input value per pixel and tap and reading the weights of the
// tile's blocks one tap at a time, as pointwise.h does for 1x1 convolutions. Output pixels whose window leaves the
// input are computed one at a time over the taps inside it; rows whose window leaves it skip those rows of taps,
// so no padded copy of the input is made. The input channels are taken in passes whose weights stay in L1 for a run
// of tiles. Bias, residual and clamp are applied in registers before the last store. Every output is the sum over
// the input channels, taps in row-major order within each channel, started from the bias, whatever the thread
// count. One source for both widths (direct_conv_impl.inc); tested against the reference convolution
// (tests/unit/runtime/fast_kernels_test.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/x86/pointwise.h"
#include "kernels/x86/sgemm.h"

namespace kiln::direct_conv {

struct Geometry {
  int64_t N = 0, C = 0, H = 0, W = 0;                      // the input (C: its channels, without padding lanes)
  int64_t M = 0, KH = 0, KW = 0;                           // output channels, kernel
  int64_t OH = 0, OW = 0, SH = 1, SW = 1, PH = 0, PW = 0;  // output, strides, padding at the start
  bool blocked_in = true;  // x is [N, Cp/B, H, W, B] (padding lanes zero), else plain [N, C, H, W]
};

// The weights as one "pointwise" matrix [M, K] packed in blocks of B (pointwise::Weights: [Mp/B][Kp][B], zero past
// M), K running over (input channel block, kh, kw, lane) for a blocked input (Cp/B * KH * KW * B) and over
// (channel, kh, kw) for a plain one (C * KH * KW). w: ONNX's [M, C, KH, KW]. nullptr when out of memory.
std::shared_ptr<pointwise::Weights> pack_weights(const float* w, const Geometry& g, int64_t block);
// K of pack_weights' matrix.
int64_t packed_k(const Geometry& g, int64_t block);

// Whether conv_blocked runs blocks of `block` with `isa`: 8 with AVX2, 16 with AVX-512.
bool supports(cpu::Isa isa, int64_t block);

// Neighbouring output pixels of one row that read the same taps: a tile of pixels whose windows lie inside the
// input's columns, or a single pixel at a column edge with the taps inside.
struct Span {
  int64_t oh = 0, ow = 0, count = 0;           // the first pixel; 1 to 12 pixels
  int64_t kh0 = 0, kh1 = 0, kw0 = 0, kw1 = 0;  // the taps that read the input (the others read padding)
};

// How a layer's work is cut, worked out once per shape: output blocks per work item (up to 4 of 16 or 2 of 8), and
// one image's spans, row by row, whose tiles hold up to 6 pixels (12 where a group has at most half those blocks).
struct Tiling {
  Geometry g;
  int64_t block = 0, group = 0;
  std::vector<Span> spans;
};
Tiling tiling(const Geometry& g, int64_t block);

// y [N, Mp/B, OH, OW, B] = conv(x, w) + bias[M] (nullptr: none) + z (nullptr: none; y's layout, may be y itself),
// clamped to [lo, hi], for B = w.block = t.block. Where M is not a multiple of B, lo <= 0 <= hi (the padding lanes
// stay zero). supports(isa, w.block) must hold. `threads`: how many threads parallel_for runs on.
void conv_blocked(cpu::Isa isa, const float* x, const Tiling& t, const pointwise::Weights& w, const float* bias,
                  const float* z, float lo, float hi, float* y, int threads, const sgemm::ParallelFor& parallel_for);

}  // namespace kiln::direct_conv
