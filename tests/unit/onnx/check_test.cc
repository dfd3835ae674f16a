#include "kiln/onnx/check.h"

#include <gtest/gtest.h>

#include "../ir/test_graphs.h"
#include "kiln/ir/builder.h"
#include "kiln/onnx/model_io.h"

namespace kiln::onnx {
namespace {

std::string text(const ir::Report& r) {
  std::string s;
  for (const auto& p : r.problems) s += p.to_string() + "\n";
  return s;
}

TEST(Check, TutorialModelIsValidAndInfersShapes) {
  auto m = ir::testing::linear_func();
  auto r = check_model(m);
  EXPECT_TRUE(r.valid()) << text(r);
  ASSERT_TRUE(infer_shapes(m).is_ok());
  auto* c = m.graph.find_value_info("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type.to_string(), "tensor(float)[10,10]");
}

TEST(Check, UnknownOpNamesNodeOpAndOpset) {
  auto m = ir::testing::linear_func();
  m.graph.nodes[0].op_type = "FooBarOp";
  m.graph.nodes[0].name = "mystery";
  auto r = check_model(m);
  EXPECT_FALSE(r.valid());
  auto t = text(r);
  EXPECT_NE(t.find("node 'mystery' (FooBarOp): no operator 'FooBarOp' in domain 'ai.onnx' at opset 17"),
            std::string::npos)
      << t;
}

TEST(Check, OpFromALaterOpsetIsFlagged) {
  auto m = ir::testing::linear_func();
  m.opset_import[0].version = 13;
  m.graph.nodes[0].op_type = "LayerNormalization";  // since opset 17
  auto t = text(check_model(m));
  EXPECT_NE(t.find("exists only in later opsets"), std::string::npos) << t;
}

TEST(Check, LibOnnxCatchesAttributeAndTypeErrors) {
  using namespace ir::helper;
  auto m = ir::testing::linear_func();
  // Declared output type conflicts with what Add produces from floats.
  m.graph.outputs[0].type.elem_type = DType::kInt64;
  auto r = check_model(m);
  EXPECT_FALSE(r.valid()) << text(r);
  EXPECT_NE(text(r).find("shape inference"), std::string::npos) << text(r);
}

TEST(Check, NewerOpsetsAreCheckedStructurallyWithANote) {
  using namespace ir::helper;
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3});
  auto axes = make_tensor<int64_t>("axes", {1}, {1});
  auto y = make_tensor_value_info("y", DType::kFloat32, std::vector<DimArg>{2, 1});
  auto g = make_graph({make_node("ReduceMean", {"x", "axes"}, {"y"})}, "g", {x}, {y}, {axes});
  auto m = make_model(std::move(g), {{"", 18}});
  auto r = check_model(m);
  EXPECT_TRUE(r.valid()) << text(r);
  EXPECT_NE(text(r).find("note: model: opset 18 is newer"), std::string::npos) << text(r);
  // Structural errors are still found.
  m.graph.nodes[0].inputs[0] = "ghost";
  EXPECT_FALSE(check_model(m).valid());
  // Ops added after opset 17 are known at their opsets.
  m = make_model(make_graph({make_node("Mish", {"x"}, {"y"})}, "g", {x}, {x}), {{"", 18}});
  m.graph.outputs[0].name = "y";
  EXPECT_TRUE(check_model(m).valid()) << text(check_model(m));
}

// Found by fuzzing: ONNX 1.12's STFT shape inference reads dims 0 and 1 of the signal at any rank. kiln rejects the
// model with the node, input and rank named before libonnx sees it; a rank-3 signal is still inferred.
TEST(Check, StftSignalOfWrongRankIsAnErrorNotACrash) {
  using namespace ir::helper;
  auto step = make_tensor<int64_t>("step", {}, {8});
  auto len = make_tensor<int64_t>("len", {}, {16});
  auto out = make_tensor_value_info("y", DType::kFloat32, std::vector<DimArg>{1, 15, 9, 2});
  for (int64_t rank : {1, 2, 3}) {
    std::vector<DimArg> dims;
    for (int64_t d : {int64_t{1}, int64_t{128}, int64_t{1}}) {
      if (static_cast<int64_t>(dims.size()) < rank) dims.emplace_back(d);
    }
    auto sig = make_tensor_value_info("signal", DType::kFloat32, dims);
    auto m = make_model(
        make_graph({make_node("STFT", {"signal", "step", "", "len"}, {"y"}, "spec", {make_attribute("onesided", 1)})},
                   "g", {sig}, {out}, {step, len}),
        {{"", 17}});
    auto r = check_model(m);
    if (rank == 3) {
      EXPECT_TRUE(r.valid()) << text(r);
      EXPECT_TRUE(infer_shapes(m).is_ok());
    } else {
      EXPECT_FALSE(r.valid());
      EXPECT_NE(text(r).find("node 'spec' (STFT): input 0 (signal) has rank " + std::to_string(rank)),
                std::string::npos)
          << text(r);
      EXPECT_FALSE(infer_shapes(m).is_ok());
    }
  }
}

// Found by fuzzing: ONNX 1.12's LayerNormalization inference writes dim `axis` of Mean's shape unchecked.
TEST(Check, LayerNormalizationAxisOutsideTheRankIsAnErrorNotACrash) {
  using namespace ir::helper;
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{3, 4});
  auto scale = make_tensor<float>("scale", {4}, {1, 1, 1, 1});
  auto y = make_tensor_value_info("y", DType::kFloat32, std::vector<DimArg>{3, 4});
  auto mean = make_tensor_value_info("mean", DType::kFloat32, std::vector<DimArg>{3, 1});
  for (int64_t axis : {-3, -1, 1, 2}) {
    auto node = make_node("LayerNormalization", {"x", "scale"}, {"y", "mean"}, "ln", {make_attribute("axis", axis)});
    auto m = make_model(make_graph({node}, "g", {x}, {y, mean}, {scale}), {{"", 17}});
    auto r = check_model(m);
    if (axis == -1 || axis == 1) {
      EXPECT_TRUE(r.valid()) << text(r);
    } else {
      EXPECT_NE(text(r).find("node 'ln' (LayerNormalization): attribute 'axis' is " + std::to_string(axis) +
                             " but input 0 (X) has rank 2: expected an axis in [-2, 2)"),
                std::string::npos)
          << text(r);
    }
  }
}

// Every model the fixture generates that is meant to be valid passes; the broken ones fail as expected.
TEST(Check, FixtureModels) {
  const std::string dir = KILN_TEST_MODELS;
  for (const char* name :
       {"srcnn.onnx", "resnet18.onnx", "mobilenet_v2.onnx", "squeezenet.onnx", "transformer.onnx", "dynamic_conv.onnx",
        "if_loop.onnx", "with_function.onnx", "external.onnx", "attrs.onnx", "linear_func.onnx"}) {
    auto m = load_model(dir + "/" + name);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    auto r = check_model(*m);
    EXPECT_TRUE(r.valid()) << name << "\n" << text(r);
  }
  auto cycle = load_model(dir + "/bad_cycle.onnx");
  ASSERT_TRUE(cycle.is_ok());
  EXPECT_NE(text(check_model(*cycle)).find("cycle"), std::string::npos);
  auto unknown = load_model(dir + "/bad_unknown_op.onnx");
  ASSERT_TRUE(unknown.is_ok());
  EXPECT_NE(text(check_model(*unknown)).find("'mystery'"), std::string::npos);
  for (const char* bad :
       {"bad_empty.onnx", "bad_truncated.onnx", "bad_random.onnx", "bad_not_model.onnx", "bad_missing_external.onnx"}) {
    auto m = load_model(dir + "/" + bad);
    ASSERT_FALSE(m.is_ok()) << bad;
    EXPECT_NE(m.status().message().find(bad), std::string::npos) << m.status().message();
  }
}

}  // namespace
}  // namespace kiln::onnx
