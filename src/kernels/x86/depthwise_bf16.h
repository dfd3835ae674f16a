// Depthwise 2-D convolutions (one filter per channel, group = C = M) on bfloat16 channels-last tensors with float32
// sums, for bf16 sessions on CPUs with AVX512-BF16 (layout_nhwc_bf16's NhwcConv). Such a convolution does about
// 2 * KH * KW flops per value it reads and writes, so its time is that of widening bfloat16 to float32 and of the
// multiply-adds, not of the data. Channels go 32 at a time (a chunk): each input row a chunk needs is widened once
// into a ring of KH float32 rows on the thread (the even channels in one 16-lane half of a pixel, the odd ones in the
// other, two instructions for 32 values), with zero columns for the padding; every output pixel then sums its taps
// from the ring, four pixels at a time with the taps' weights held in registers, adds the bias, clamps (Relu, Clip or
// none) and rounds to bfloat16 once (to nearest even). Each output value is the same sum in the same order whatever
// the thread count. (Summing tap pairs with vdpbf16ps instead, from rows laid out as horizontal pairs, does 12
// instructions a pixel instead of 18 for 3x3, but ran 1.35 times as long on a Sapphire Rapids-class Xeon.) Tested
// against the reference NhwcConv (tests/unit/runtime/nhwc_bf16_test.cc).
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/x86/sgemm.h"

namespace kiln::depthwise_bf16 {

// The channels a chunk holds.
inline constexpr int64_t kChunk = 32;

// W [C, 1, KH, KW] and the bias as the kernel reads them, float32: chunk q's tap t at w + (q * KH * KW + t) * kChunk,
// the even channels first (lane j: channel 32q + 2j), then the odd ones (channel 32q + 2j + 1); bias likewise at
// bias + q * kChunk. Channels past C are zero.
struct Weights {
  int64_t C = 0, KH = 0, KW = 0;
  std::unique_ptr<float[]> w, bias;
};

// X [N, H, W, C] to Y [N, OH, OW, C]: strides, the top and left padding (bottom and right follow from OH and OW).
struct Geometry {
  int64_t N = 0, H = 0, W = 0, C = 0, OH = 0, OW = 0;
  int64_t stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0;
};

// Whether this CPU runs convolve(): AVX-512 (F, BW) with the AVX512-BF16 instructions.
bool supported();

// Whether convolve() takes the kernel size: 1 to 16 taps a side.
bool takes(int64_t KH, int64_t KW);

// w [C, 1, KH, KW] and bias [C] (nullptr: zero), float32.
std::shared_ptr<Weights> pack(const float* w, const float* bias, int64_t C, int64_t KH, int64_t KW);

// The activation as a clamp, y = min(max(s, lo), hi): Relu (lo 0, a NaN sum gives 0 as act::relu does), Clip
// (a NaN sum stays NaN) or none (lo -inf, hi inf).
struct Clamp {
  float lo, hi;
  bool nan_is_lo = false;
};

// y = clamp(conv(x) + bias), x and y bfloat16 bits; w packed for g.C channels. parallel_for must split [0, n)
// into one contiguous range per thread (of `threads`) in thread order, the partition oneDNN's primitives use
// (ParallelRunner::parallel_for_static): each core then reads the rows the convolution before wrote there and
// writes those the one after reads there. (With ranges handed out as threads come free, MobileNetV2 in bfloat16
// ran about 1.1 times as long on a 2-vCPU VM, though each convolution alone was as fast.)
void convolve(const Geometry& g, const uint16_t* x, const Weights& w, const Clamp& clamp, uint16_t* y, int threads,
              const sgemm::ParallelFor& parallel_for);

}  // namespace kiln::depthwise_bf16
