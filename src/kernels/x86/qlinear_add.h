// ai.kiln QLinearAdd on 8-bit tensors of one shape with scalar scales and zero points (the residual sums of an int8
// ResNet): each side dequantized in float32, the float32 sum (and Relu), divided by C's scale, rounded half to even
// and saturated, as the reference kernel computes it, so bit for bit equal to it (tests/unit/runtime/int8_test.cc).
// 8 lanes with AVX2, 16 with AVX-512: the widening is one vpmovzx/vpmovsx per vector where SSE2 took six unpacks, and
// the division keeps its per-lane rate. (A product by the reciprocal, dividing only where a half-integer is near, was
// measured: no faster on int8 ResNet-50, whose sums are bound by moving the bytes.)
#pragma once

#include <cstdint>

#include "kernels/isa.h"

namespace kiln::qlinear_add {

struct Params {
  float a_scale = 1, b_scale = 1, c_scale = 1;
  int32_t a_zero_point = 0, b_zero_point = 0, c_zero_point = 0;
  bool a_signed = false, b_signed = false, c_signed = false;  // int8 (else uint8)
  bool relu = false;
};

// Whether add() has a form for `isa` (AVX2 or AVX-512).
bool supports(cpu::Isa isa);

// c[i] for i in [begin, end), supports(isa) holding.
void add(cpu::Isa isa, const Params& p, const uint8_t* a, const uint8_t* b, uint8_t* c, int64_t begin, int64_t end);

}  // namespace kiln::qlinear_add
