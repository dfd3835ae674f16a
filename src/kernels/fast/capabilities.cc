#include "kernels/capabilities.h"

#include <cmath>

#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::cpu {

// oneDNN fixes its instruction set the first time it is asked: a process that optimizes a graph before it makes
// a session (`kiln optimize --print-kernels`) applies KILN_MAX_ISA first, as Session::create would.
int preferred_nchwc_block() {
  dnnl_kernels::cap_isa(default_isa());
  return dnnl_kernels::preferred_channel_block();
}

bool has_exact_int8_products() {
  const CpuFeatures& f = cpu_features();
  return default_isa() == Isa::kAvx512 && (f.avx512_vnni || f.amx_int8);
}

bool fused_residual_sum_fits(float y_scale, float c_scale) {
  return std::isfinite(y_scale) && y_scale > 0 && std::isfinite(c_scale) && y_scale <= 1.9f * c_scale;
}

void cap_library_isa(Isa isa) { dnnl_kernels::cap_isa(isa); }

}  // namespace kiln::cpu
