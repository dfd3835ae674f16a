#include "kernels/capabilities.h"

#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::cpu {

int preferred_nchwc_block() { return dnnl_kernels::preferred_channel_block(); }

void cap_library_isa(Isa isa) { dnnl_kernels::cap_isa(isa); }

}  // namespace kiln::cpu
