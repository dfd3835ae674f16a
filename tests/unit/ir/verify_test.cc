#include "kiln/ir/verify.h"

#include <gtest/gtest.h>

#include "test_graphs.h"

namespace kiln::ir {
namespace {

std::string all_messages(const Report& r) {
  std::string s;
  for (const auto& p : r.problems) s += p.to_string() + "\n";
  return s;
}

TEST(Verify, TutorialModelIsValid) {
  Report r;
  verify_model(testing::linear_func(), r);
  EXPECT_TRUE(r.valid()) << all_messages(r);
  EXPECT_TRUE(r.problems.empty()) << all_messages(r);
}

TEST(Verify, CycleNamesTheNodesOnIt) {
  auto m = testing::linear_func();
  // c = Mul(a, output); output = Add(c, b): a cycle between the two nodes.
  m.graph.nodes[0].inputs[1] = "output";
  m.graph.nodes[0].name = "mul_node";
  m.graph.nodes[1].name = "add_node";
  Report r;
  verify_model(m, r);
  EXPECT_FALSE(r.valid());
  auto text = all_messages(r);
  EXPECT_NE(text.find("cycle"), std::string::npos) << text;
  EXPECT_NE(text.find("mul_node"), std::string::npos) << text;
  EXPECT_NE(text.find("add_node"), std::string::npos) << text;
}

TEST(Verify, DanglingInputDuplicateOutputAndOrder) {
  auto m = testing::linear_func();
  m.graph.nodes[1].inputs[1] = "nowhere";
  Report r;
  verify_model(m, r);
  auto text = all_messages(r);
  EXPECT_NE(text.find("input 1 'nowhere' is not produced"), std::string::npos) << text;

  m = testing::linear_func();
  m.graph.nodes[1].outputs[0] = "c";  // c defined twice
  Report r2;
  verify_model(m, r2);
  EXPECT_NE(all_messages(r2).find("defines value 'c'"), std::string::npos) << all_messages(r2);

  m = testing::linear_func();
  std::swap(m.graph.nodes[0], m.graph.nodes[1]);
  Report r3;
  verify_model(m, r3);
  EXPECT_NE(all_messages(r3).find("topological order"), std::string::npos) << all_messages(r3);
  EXPECT_EQ(all_messages(r3).find("cycle"), std::string::npos) << all_messages(r3);
}

TEST(Verify, InitializerConflictingWithDeclaration) {
  auto m = testing::linear_func();
  m.graph.initializers.push_back(helper::make_tensor<int64_t>("b", {2}, {1, 2}));
  Report r;
  verify_model(m, r);
  auto text = all_messages(r);
  EXPECT_NE(text.find("holds int64 but is declared as float"), std::string::npos) << text;
  EXPECT_NE(text.find("has shape [2] but is declared with shape [10,10]"), std::string::npos) << text;
}

TEST(Verify, MissingOpsetAndSubgraphOuterScope) {
  using namespace helper;
  auto m = testing::linear_func();
  m.graph.nodes[0].domain = "com.example";
  Report r;
  verify_model(m, r);
  EXPECT_NE(all_messages(r).find("imports no opset"), std::string::npos);

  // A subgraph may read values of the enclosing graph.
  auto then_out = make_tensor_value_info("t", DType::kFloat32, std::nullopt);
  auto body = make_graph({make_node("Identity", {"c"}, {"t"})}, "then", {}, {then_out});
  auto cond = make_tensor_value_info("cond", DType::kBool, std::vector<DimArg>{});
  auto m2 = testing::linear_func();
  m2.graph.inputs.push_back(cond);
  m2.graph.nodes.push_back(make_node("If", {"cond"}, {"y"}, "if",
                                     {make_attribute("then_branch", body), make_attribute("else_branch", body)}));
  Report r2;
  verify_model(m2, r2);
  EXPECT_TRUE(r2.valid()) << all_messages(r2);
  m2.graph.nodes.back().attributes[0].g->nodes[0].inputs[0] = "ghost";
  Report r3;
  verify_model(m2, r3);
  EXPECT_NE(all_messages(r3).find("'ghost' is not produced"), std::string::npos) << all_messages(r3);
}

}  // namespace
}  // namespace kiln::ir
