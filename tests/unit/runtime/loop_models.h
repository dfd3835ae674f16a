// Models the runtime tests share.
#pragma once

#include "kiln/ir/builder.h"

namespace kiln::testing {

// A Loop of 10^9 iterations adding 1 to a counter: only cancellation (RunOptions) ends it.
inline ir::Model endless_loop() {
  using namespace ir::helper;
  auto body =
      make_graph({make_node("Add", {"v_in", "one"}, {"v_out"}), make_node("Identity", {"c_in"}, {"c_out"})}, "body",
                 {make_tensor_value_info("i", DType::kInt64, std::vector<DimArg>{}),
                  make_tensor_value_info("c_in", DType::kBool, std::vector<DimArg>{}),
                  make_tensor_value_info("v_in", DType::kFloat32, std::vector<DimArg>{1})},
                 {make_tensor_value_info("c_out", DType::kBool, std::vector<DimArg>{}),
                  make_tensor_value_info("v_out", DType::kFloat32, std::vector<DimArg>{1})},
                 {make_tensor<float>("one", {1}, {1.0f})});
  return make_model(make_graph({make_node("Loop", {"n", "c", "v0"}, {"v"}, "loop", {make_attribute("body", body)})},
                               "g", {}, {make_tensor_value_info("v", DType::kFloat32, std::nullopt)},
                               {make_tensor<int64_t>("n", {}, {1'000'000'000}), make_tensor<bool>("c", {}, {true}),
                                make_tensor<float>("v0", {1}, {0.0f})}),
                    {{"", 13}});
}

}  // namespace kiln::testing
