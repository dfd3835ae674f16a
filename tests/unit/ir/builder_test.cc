#include "kiln/ir/builder.h"

#include <gtest/gtest.h>

#include "test_graphs.h"

namespace kiln::ir {
namespace {

TEST(Builder, MakesTheTutorialModel) {
  Model m = testing::linear_func();
  EXPECT_EQ(m.ir_version, 8);
  ASSERT_EQ(m.opset_import.size(), 1u);
  EXPECT_EQ(m.opset_import[0].version, 17);
  EXPECT_EQ(m.graph.name, "linear_func");
  ASSERT_EQ(m.graph.nodes.size(), 2u);
  EXPECT_EQ(m.graph.nodes[0].op_type, "Mul");
  EXPECT_EQ(m.graph.inputs[1].type.to_string(), "tensor(float)[10,10]");
}

TEST(Builder, TypedAttributesAndSymbolicDims) {
  using namespace helper;
  auto v = make_tensor_value_info("x", DType::kFloat16, std::vector<DimArg>{"batch", 3, Dim()});
  EXPECT_EQ(v.type.to_string(), "tensor(float16)[batch,3,?]");
  auto n = make_node(
      "Foo", {"x"}, {"y"}, "n",
      {make_attribute("f", 0.5f), make_attribute("i", 3), make_attribute("s", "abc"),
       make_attribute("ints", std::vector<int64_t>{1, 2}), make_attribute("t", make_tensor<float>("w", {2}, {1, 2}))});
  EXPECT_EQ(n.attr("f")->type, AttrType::kFloat);
  EXPECT_EQ(n.attr("i")->type, AttrType::kInt);
  EXPECT_EQ(n.attr("i")->i, 3);
  EXPECT_EQ(n.attr("s")->s, "abc");
  EXPECT_EQ(n.attr("ints")->ints.size(), 2u);
  EXPECT_EQ(n.attr("t")->t.tensor.to_vector<float>()[1], 2.0f);
  EXPECT_EQ(n.attr("missing"), nullptr);
}

}  // namespace
}  // namespace kiln::ir
