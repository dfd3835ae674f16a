// The oracle the fast kernels are tested against: a model's outputs on the plain reference kernels, unoptimized.
#pragma once

#include <utility>
#include <vector>

#include "kiln/runtime/session.h"

namespace kiln::testing {

inline StatusOr<std::vector<Tensor>> reference_outputs(const ir::Model& model, const NamedTensors& feeds) {
  SessionOptions options;
  options.reference_kernels = true;
  options.optimization_level = 0;
  KILN_ASSIGN_OR_RETURN(auto session, Session::create(model, options));
  return session->run(feeds);
}

}  // namespace kiln::testing
