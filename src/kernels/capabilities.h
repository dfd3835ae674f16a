// What the fast kernels can do on this machine, asked by code outside the kernels (the session, the optimizer's
// layout pass, tests) so that it includes no kernel header.
#pragma once

#include "kernels/isa.h"

namespace kiln::cpu {

// Caps the instruction set of the libraries the fast kernels run on (oneDNN) at `isa` for the rest of the
// process: only the first call counts, and only before a kernel has run (oneDNN's choice is process-wide).
void cap_library_isa(Isa isa);

// The channel block the blocked (NCHWc) convolution kernels prefer on this CPU: 16 with AVX-512, else 8.
int preferred_nchwc_block();

// Whether the int8 convolution kernels compute exact products for any int8 weights here (AVX512-VNNI or AMX, within
// KILN_MAX_ISA): the optimizer's channels-last int8 layout (layout_nhwc_int8) pays only where they run.
bool has_exact_int8_products();

// Whether a residual sum fused into an int8 convolution (NhwcQLinearConv with Z: one rounding where the unfused nodes
// round twice) stays within one step of the sum's scale: the convolution's own y_scale finite, positive and under 1.9
// times C_scale (kernels/fast/quantized.cc derives the bound). layout_nhwc_int8 fuses, and the kernel runs, only then.
bool fused_residual_sum_fits(float y_scale, float c_scale);

}  // namespace kiln::cpu
