// Custom ops (kiln/custom_op.h) as kernels: a KernelDef per op a session's libraries declare, whose fn calls the
// library's compute through a kiln_op_context over the KernelContext.
#pragma once

#include <memory>
#include <string>

#include "kernels/kernel.h"
#include "kiln/core/custom_ops.h"

namespace kiln {

// What a custom op's KernelDef::data points at.
struct CustomKernel {
  const kiln_custom_op* op = nullptr;
  std::string library;  // its path, for messages
  std::string name;     // "custom:<library file name>", the kernel's name in profiles and --print-kernels
  cpu::KernelDef def;
};

// A kernel for `found` (CustomOps::find), owning what its KernelDef points at.
std::unique_ptr<CustomKernel> make_custom_kernel(const CustomOps::Found& found);

}  // namespace kiln
