#include "kernels/capabilities.h"

#include "kernels/dnnl/dnnl_kernels.h"

namespace kiln::cpu {

int preferred_nchwc_block() { return dnnl_kernels::preferred_channel_block(); }

}  // namespace kiln::cpu
