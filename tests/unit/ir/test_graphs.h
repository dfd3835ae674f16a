// Small graphs shared by the IR tests, built with the helper API.
#pragma once

#include "kiln/ir/builder.h"

namespace kiln::ir::testing {

// The tutorial's output = a*x + b on [10,10] floats.
inline Model linear_func() {
  using namespace helper;
  auto a = make_tensor_value_info("a", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto b = make_tensor_value_info("b", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto out = make_tensor_value_info("output", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto mul = make_node("Mul", {"a", "x"}, {"c"});
  auto add = make_node("Add", {"c", "b"}, {"output"});
  return make_model(make_graph({mul, add}, "linear_func", {a, x, b}, {out}));
}

}  // namespace kiln::ir::testing
