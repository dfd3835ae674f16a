// What the fast kernels can do on this machine, asked by code outside the kernels (the optimizer's layout pass,
// tests) so that it includes no kernel header.
#pragma once

namespace kiln::cpu {

// The channel block the blocked (NCHWc) convolution kernels prefer on this CPU: 16 with AVX-512, else 8.
int preferred_nchwc_block();

}  // namespace kiln::cpu
