// control_flow operators.
#include "kernels/cpu/kernel.h"

namespace kiln::cpu {}  // namespace kiln::cpu
