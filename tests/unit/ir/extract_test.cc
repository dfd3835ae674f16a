#include "kiln/ir/extract.h"

#include <gtest/gtest.h>

#include "test_graphs.h"

namespace kiln::ir {
namespace {

Model typed_linear_func() {
  Model m = testing::linear_func();
  m.graph.value_info.push_back(
      helper::make_tensor_value_info("c", DType::kFloat32, std::vector<helper::DimArg>{10, 10}));
  return m;
}

TEST(Extract, CutsAtAnIntermediateValue) {
  auto sub = extract_model(typed_linear_func(), {"a", "x"}, {"c"});
  ASSERT_TRUE(sub.is_ok()) << sub.status().message();
  ASSERT_EQ(sub->graph.nodes.size(), 1u);
  EXPECT_EQ(sub->graph.nodes[0].op_type, "Mul");
  EXPECT_EQ(sub->graph.name, "Extracted from {linear_func}");
  EXPECT_EQ(sub->producer_name, "onnx.utils.extract_model");
  ASSERT_EQ(sub->graph.outputs.size(), 1u);
  EXPECT_EQ(sub->graph.outputs[0].type.to_string(), "tensor(float)[10,10]");

  auto tail = extract_model(typed_linear_func(), {"c", "b"}, {"output"});
  ASSERT_TRUE(tail.is_ok()) << tail.status().message();
  EXPECT_EQ(tail->graph.nodes[0].op_type, "Add");
}

TEST(Extract, ErrorsNameTheValue) {
  auto bad = extract_model(typed_linear_func(), {"a", "x"}, {"nope"});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("'nope'"), std::string::npos);
  // Cutting at c but not listing b leaves Add reading b from outside... b is a graph input here, so list only c.
  auto open = extract_model(typed_linear_func(), {"c"}, {"output"});
  ASSERT_FALSE(open.is_ok());
  EXPECT_NE(open.status().message().find("'b'"), std::string::npos) << open.status().message();
}

TEST(Extract, AddOutputs) {
  Model m = testing::linear_func();
  ASSERT_TRUE(add_outputs(m, typed_linear_func(), {"c"}).is_ok());
  ASSERT_EQ(m.graph.outputs.size(), 2u);
  EXPECT_EQ(m.graph.outputs[1].name, "c");
  EXPECT_FALSE(add_outputs(m, typed_linear_func(), {"zzz"}).is_ok());
}

}  // namespace
}  // namespace kiln::ir
