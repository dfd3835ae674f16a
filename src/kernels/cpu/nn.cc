// Neural-network operators: convolution, pooling, normalization, matrix products, resize.
#include "kernels/cpu/kernel.h"

namespace kiln::cpu {}  // namespace kiln::cpu
