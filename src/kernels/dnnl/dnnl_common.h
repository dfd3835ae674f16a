// What the oneDNN kernels share: the one CPU engine of the process.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace kiln::dnnl_kernels {

inline dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

}  // namespace kiln::dnnl_kernels
