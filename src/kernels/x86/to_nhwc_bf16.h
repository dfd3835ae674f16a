// An image's float32 NCHW planes into bfloat16 NHWC (ai.kiln ToNhwc at the input of a bf16 network): 32 pixels at
// a time, each plane's values rounded to nearest even (NaN made quiet, as float_to_bfloat16 does) and interleaved
// pixel by pixel with AVX-512 word permutes, so that the 3-channel input of an image model costs one pass over
// it. Tested bit for bit against the reference (tests/unit/runtime/nhwc_bf16_test.cc).
#pragma once

#include <cstdint>

#include "kernels/x86/sgemm.h"

namespace kiln::to_nhwc_bf16 {

// Whether convert() takes C channels with `isa` (AVX-512; 1 or 3 channels).
bool supports(cpu::Isa isa, int64_t C);

// y [N, HW, C] (bfloat16 bits) = x [N, C, HW] (float32), supports(isa, C) holding.
void convert(const float* x, int64_t N, int64_t C, int64_t HW, uint16_t* y, const sgemm::ParallelFor& parallel_for);

}  // namespace kiln::to_nhwc_bf16
