// One test per optimizer pass: the graph before and after, and the same outputs from both (reference
// kernels, no other optimization).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <tuple>

#include "kiln/ir/builder.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/session.h"

#include "../test_util.h"

namespace kiln {
namespace {

using namespace ir::helper;

using testing::random_tensor;

std::vector<std::string> op_types(const ir::Model& m) {
  std::vector<std::string> out;
  for (const auto& n : m.graph.nodes) out.push_back(n.op_type);
  return out;
}

Tensor run_reference(const ir::Model& m, const NamedTensors& feeds) {
  SessionOptions o;
  o.optimization_level = 0;
  o.reference_kernels = true;
  auto s = Session::create(m, o);
  EXPECT_TRUE(s.is_ok()) << s.status().message();
  auto out = (*s)->run(feeds);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return (*out)[0];
}

// Runs `pass` on a copy of `model`, checks the op types after it, and that both graphs give the same output.
ir::Model check_pass(const ir::Model& model, const std::string& pass, const std::vector<std::string>& ops_after,
                     const NamedTensors& feeds, float tol = 1e-5f) {
  ir::Model after = model;
  auto n = opt::run_pass(after, pass);
  EXPECT_TRUE(n.is_ok()) << n.status().message();
  EXPECT_GT(*n, 0) << pass << " changed nothing";
  EXPECT_EQ(op_types(after), ops_after);
  const Tensor want = run_reference(model, feeds);
  const Tensor got = run_reference(after, feeds);
  EXPECT_EQ(got.dims(), want.dims());
  if (got.dims() == want.dims()) {
    for (int64_t i = 0; i < want.num_elements(); ++i) {
      const float w = want.data<float>()[i], g = got.data<float>()[i];
      EXPECT_LE(std::abs(g - w), tol + tol * std::abs(w)) << pass << ": element " << i;
    }
  }
  return after;
}

ir::Model model_of(std::vector<ir::Node> nodes, std::vector<ir::ValueInfo> inputs, std::vector<ir::NamedTensor> inits,
                   int64_t opset = 14, std::vector<std::string> outputs = {"y"}) {
  std::vector<ir::ValueInfo> outs;
  for (const auto& o : outputs) outs.push_back(make_tensor_value_info(o, DType::kFloat32, std::nullopt));
  return make_model(make_graph(std::move(nodes), "g", std::move(inputs), outs, std::move(inits)), {{"", opset}});
}

ir::NamedTensor scalar(const std::string& name, float v) { return make_tensor<float>(name, {}, {v}); }
ir::NamedTensor ints(const std::string& name, std::vector<int64_t> v) {
  return make_tensor<int64_t>(name, {static_cast<int64_t>(v.size())}, v);
}

TEST(Passes, FoldConstantsFoldsShapeSubgraphsAndConstantNodes) {
  std::mt19937 rng(1);
  // y = Reshape(x, Concat([-1], Unsqueeze(Gather(Shape(x), 1)))): all but the Reshape fold (x's shape is known).
  auto model =
      model_of({make_node("Shape", {"x"}, {"s"}), make_node("Gather", {"s", "one"}, {"d"}),
                make_node("Unsqueeze", {"d", "zero_axis"}, {"u"}),
                make_node("Constant", {}, {"minus1"}, "", {make_attribute("value_ints", std::vector<int64_t>{-1})}),
                make_node("Concat", {"minus1", "u"}, {"shape"}, "", {make_attribute("axis", int64_t{0})}),
                make_node("Reshape", {"x", "shape"}, {"y"})},
               {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3, 4})},
               {make_tensor<int64_t>("one", {}, {1}), ints("zero_axis", {0})});
  auto after = check_pass(model, "fold_constants", {"Reshape"}, {{"x", random_tensor({2, 3, 4}, rng)}});
  const auto* shape = after.graph.find_initializer("shape");
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->tensor.to_vector<int64_t>(), (std::vector<int64_t>{-1, 3}));
}

TEST(Passes, FoldConstantsLeavesSymbolicShapes) {
  auto model = model_of(
      {make_node("Shape", {"x"}, {"s"}), make_node("Cast", {"s"}, {"y"}, "", {make_attribute("to", int64_t{1})})},
      {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{"n", 3})}, {});
  ir::Model after = model;
  EXPECT_EQ(*opt::run_pass(after, "fold_constants"), 0);
  EXPECT_EQ(op_types(after), op_types(model));
}

TEST(Passes, EliminateIdentityRemovesIdentityAndInferenceDropout) {
  std::mt19937 rng(2);
  auto model =
      model_of({make_node("Identity", {"x"}, {"a"}), make_node("Relu", {"a"}, {"b"}),
                make_node("Dropout", {"b", "ratio"}, {"c"}), make_node("Identity", {"c"}, {"y"})},
               {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{3, 4})}, {scalar("ratio", 0.5f)});
  // The last Identity writes the graph output, so it stays.
  check_pass(model, "eliminate_identity", {"Relu", "Identity"}, {{"x", random_tensor({3, 4}, rng)}});
}

TEST(Passes, EliminateDeadNodesRemovesUnreadNodesAndInitializers) {
  std::mt19937 rng(3);
  auto model = model_of({make_node("Relu", {"x"}, {"y"}), make_node("Sigmoid", {"x"}, {"unused"}),
                         make_node("Add", {"unused", "w"}, {"unused2"})},
                        {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{5})}, {scalar("w", 1.0f)});
  auto after = check_pass(model, "eliminate_dead_nodes", {"Relu"}, {{"x", random_tensor({5}, rng)}});
  EXPECT_TRUE(after.graph.initializers.empty());
}

TEST(Passes, FoldConvBnFoldsTheNormalizationIntoTheWeights) {
  std::mt19937 rng(4);
  auto model = model_of(
      {make_node("Conv", {"x", "w", "b"}, {"c"}, "", {make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1})}),
       make_node("BatchNormalization", {"c", "scale", "beta", "mean", "var"}, {"y"}, "",
                 {make_attribute("epsilon", 1e-3f)})},
      {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 3, 6, 6})},
      {make_tensor("w", random_tensor({4, 3, 3, 3}, rng)), make_tensor("b", random_tensor({4}, rng)),
       make_tensor("scale", random_tensor({4}, rng)), make_tensor("beta", random_tensor({4}, rng)),
       make_tensor("mean", random_tensor({4}, rng)), make_tensor("var", random_tensor({4}, rng, 0.5f, 2))});
  check_pass(model, "fold_conv_bn", {"Conv"}, {{"x", random_tensor({1, 3, 6, 6}, rng)}}, 1e-4f);
}

TEST(Passes, FoldTransposeReshapeMergesChains) {
  std::mt19937 rng(5);
  auto perm = [](std::vector<int64_t> p) { return make_attribute("perm", p); };
  // Two transposes that cancel, then two that compose into one, then two reshapes.
  auto model = model_of({make_node("Transpose", {"x"}, {"t1"}, "", {perm({0, 2, 1})}),
                         make_node("Transpose", {"t1"}, {"t2"}, "", {perm({0, 2, 1})}),
                         make_node("Transpose", {"t2"}, {"t3"}, "", {perm({1, 0, 2})}),
                         make_node("Transpose", {"t3"}, {"t4"}, "", {perm({0, 2, 1})}),
                         make_node("Reshape", {"t4", "s1"}, {"r1"}), make_node("Reshape", {"r1", "s2"}, {"y"})},
                        {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3, 4})},
                        {ints("s1", {4, -1}), ints("s2", {6, 4})});
  check_pass(model, "fold_transpose_reshape", {"Transpose", "Reshape"}, {{"x", random_tensor({2, 3, 4}, rng)}});
}

TEST(Passes, FuseMatMulAddMakesFusedMatMulOrGemm) {
  std::mt19937 rng(6);
  auto nodes = [] {
    return std::vector<ir::Node>{make_node("MatMul", {"x", "w"}, {"m"}), make_node("Add", {"b", "m"}, {"y"})};
  };
  auto inits = [&] {
    return std::vector<ir::NamedTensor>{make_tensor("w", random_tensor({4, 3}, rng)),
                                        make_tensor("b", random_tensor({3}, rng))};
  };
  auto rank3 = model_of(nodes(), {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 5, 4})}, inits());
  check_pass(rank3, "fuse_matmul_add", {"FusedMatMul"}, {{"x", random_tensor({2, 5, 4}, rng)}});
  auto rank2 = model_of(nodes(), {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{5, 4})}, inits());
  check_pass(rank2, "fuse_matmul_add", {"Gemm"}, {{"x", random_tensor({5, 4}, rng)}});
}

TEST(Passes, FuseGeluFindsTheErfForm) {
  std::mt19937 rng(7);
  // torch's export: x * (1 + erf(x / sqrt(2))) * 0.5
  auto model = model_of(
      {make_node("Div", {"x", "sqrt2"}, {"d"}), make_node("Erf", {"d"}, {"e"}), make_node("Add", {"e", "one"}, {"a"}),
       make_node("Mul", {"x", "a"}, {"m"}), make_node("Mul", {"m", "half"}, {"y"})},
      {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{4, 6})},
      {scalar("sqrt2", 1.4142135f), scalar("one", 1.0f), scalar("half", 0.5f)});
  check_pass(model, "fuse_gelu", {"Gelu"}, {{"x", random_tensor({4, 6}, rng, -3, 3)}});
}

TEST(Passes, FuseLayerNormFindsTheDecomposedForm) {
  std::mt19937 rng(8);
  auto axes = make_attribute("axes", std::vector<int64_t>{-1});
  auto model = model_of({make_node("ReduceMean", {"x"}, {"mean"}, "", {axes}), make_node("Sub", {"x", "mean"}, {"d"}),
                         make_node("Pow", {"d", "two"}, {"p"}), make_node("ReduceMean", {"p"}, {"var"}, "", {axes}),
                         make_node("Add", {"var", "eps"}, {"ve"}), make_node("Sqrt", {"ve"}, {"sd"}),
                         make_node("Div", {"d", "sd"}, {"n"}), make_node("Mul", {"n", "gamma"}, {"g"}),
                         make_node("Add", {"g", "beta"}, {"y"})},
                        {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3, 8})},
                        {scalar("two", 2.0f), scalar("eps", 1e-5f), make_tensor("gamma", random_tensor({8}, rng)),
                         make_tensor("beta", random_tensor({8}, rng))});
  check_pass(model, "fuse_layernorm", {"LayerNormalization"}, {{"x", random_tensor({2, 3, 8}, rng)}}, 1e-4f);

  // After a residual Add that nothing else reads: the Add becomes the Skip input.
  auto nodes = model.graph.nodes;
  nodes.insert(nodes.begin(), make_node("Add", {"r", "s"}, {"x"}));
  auto residual = model_of(nodes,
                           {make_tensor_value_info("r", DType::kFloat32, std::vector<DimArg>{2, 3, 8}),
                            make_tensor_value_info("s", DType::kFloat32, std::vector<DimArg>{2, 3, 8})},
                           model.graph.initializers);
  auto fused = check_pass(residual, "fuse_layernorm", {"LayerNormalization"},
                          {{"r", random_tensor({2, 3, 8}, rng)}, {"s", random_tensor({2, 3, 8}, rng)}}, 1e-4f);
  EXPECT_EQ(fused.graph.nodes[0].inputs, (std::vector<std::string>{"r", "gamma", "beta", "s"}));
}

// torch's MultiheadAttention export, sequence first: q, k, v [S, heads, D] -> heads first, q / sqrt(D),
// q @ k^T, Softmax, @ v, back to sequence first.
std::vector<ir::Node> attention_nodes(const std::string& scale_op, bool scale_scores) {
  auto perm = [](std::vector<int64_t> p) { return make_attribute("perm", p); };
  std::vector<ir::Node> n{make_node("Transpose", {"q"}, {"qt"}, "", {perm({1, 0, 2})}),
                          make_node("Transpose", {"k"}, {"kt"}, "", {perm({1, 2, 0})}),
                          make_node("Transpose", {"v"}, {"vt"}, "", {perm({1, 0, 2})})};
  if (scale_scores) {
    n.push_back(make_node("MatMul", {"qt", "kt"}, {"s0"}));
    n.push_back(make_node(scale_op, {"s0", "c"}, {"s"}));
  } else {
    n.push_back(make_node(scale_op, {"qt", "c"}, {"qs"}));
    n.push_back(make_node("MatMul", {"qs", "kt"}, {"s"}));
  }
  n.push_back(make_node("Softmax", {"s"}, {"p"}, "", {make_attribute("axis", int64_t{-1})}));
  n.push_back(make_node("MatMul", {"p", "vt"}, {"o"}));
  n.push_back(make_node("Transpose", {"o"}, {"y"}, "", {perm({1, 0, 2})}));
  return n;
}

TEST(Passes, FuseAttentionFindsScaledDotProductAttention) {
  std::mt19937 rng(12);
  std::vector<ir::ValueInfo> inputs;
  for (const char* name : {"q", "k", "v"}) {
    inputs.push_back(make_tensor_value_info(name, DType::kFloat32, std::vector<DimArg>{7, 3, 5}));
  }
  NamedTensors feeds{{"q", random_tensor({7, 3, 5}, rng, -2, 2)},
                     {"k", random_tensor({7, 3, 5}, rng, -2, 2)},
                     {"v", random_tensor({7, 3, 5}, rng)}};
  for (auto [op, c, after_product] : std::vector<std::tuple<std::string, float, bool>>{
           {"Div", 2.236068f, false}, {"Mul", 0.5f, false}, {"Div", 3.0f, true}}) {
    SCOPED_TRACE(op + (after_product ? " after the product" : " on Q"));
    auto model = model_of(attention_nodes(op, after_product), inputs, {scalar("c", c)});
    auto after = check_pass(model, "fuse_attention", {"Attention"}, feeds, 1e-5f);
    const ir::Node& att = after.graph.nodes[0];
    EXPECT_EQ(att.domain, opt::kKilnDomain);
    EXPECT_EQ(att.inputs, (std::vector<std::string>{"q", "k", "v"}));
    EXPECT_FLOAT_EQ(att.attr("scale")->f, op == "Mul" ? c : 1.0f / c);
    EXPECT_EQ(att.attr("k_perm")->ints, (std::vector<int64_t>{1, 2, 0}));
    EXPECT_EQ(att.attr("out_perm")->ints, (std::vector<int64_t>{1, 0, 2}));
  }
  // Not fused: a scores tensor read twice, or a Softmax over another axis.
  auto nodes = attention_nodes("Div", false);
  auto read_twice = model_of(nodes, inputs, {scalar("c", 2.0f)}, 14, {"y", "s"});
  EXPECT_EQ(*opt::run_pass(read_twice, "fuse_attention"), 0);
  nodes[5] = make_node("Softmax", {"s"}, {"p"}, "", {make_attribute("axis", int64_t{1})});
  auto other_axis = model_of(nodes, inputs, {scalar("c", 2.0f)});
  EXPECT_EQ(*opt::run_pass(other_axis, "fuse_attention"), 0);
}

TEST(Passes, FuseConvAddThenActivationMakesOneFusedConv) {
  std::mt19937 rng(9);
  auto pads = make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1});
  auto model = model_of({make_node("Conv", {"x", "w"}, {"c"}, "", {pads}), make_node("Add", {"z", "c"}, {"a"}),
                         make_node("Relu", {"a"}, {"y"})},
                        {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 3, 5, 5}),
                         make_tensor_value_info("z", DType::kFloat32, std::vector<DimArg>{1, 4, 5, 5})},
                        {make_tensor("w", random_tensor({4, 3, 3, 3}, rng))});
  NamedTensors feeds{{"x", random_tensor({1, 3, 5, 5}, rng)}, {"z", random_tensor({1, 4, 5, 5}, rng)}};
  auto added = check_pass(model, "fuse_conv_add", {"FusedConv", "Relu"}, feeds, 1e-5f);
  auto fused = check_pass(added, "fuse_activation", {"FusedConv"}, feeds, 1e-5f);
  EXPECT_EQ(fused.graph.nodes[0].attr("activation")->s, "Relu");
  EXPECT_EQ(fused.graph.nodes[0].inputs[3], "z");
}

TEST(Passes, FuseActivationTakesClipSiluAndGelu) {
  std::mt19937 rng(10);
  auto w = [&] { return make_tensor("w", random_tensor({2, 2, 1, 1}, rng)); };
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 2, 3, 3});
  NamedTensors feeds{{"x", random_tensor({1, 2, 3, 3}, rng, -4, 4)}};
  auto clip = model_of({make_node("Conv", {"x", "w"}, {"c"}), make_node("Clip", {"c", "lo", "hi"}, {"y"})}, {x},
                       {w(), scalar("lo", 0.0f), scalar("hi", 6.0f)});
  check_pass(clip, "fuse_activation", {"FusedConv"}, feeds);
  auto silu = model_of(
      {make_node("Conv", {"x", "w"}, {"c"}), make_node("Sigmoid", {"c"}, {"s"}), make_node("Mul", {"c", "s"}, {"y"})},
      {x}, {w()});
  check_pass(silu, "fuse_activation", {"FusedConv"}, feeds);
  auto mm = make_model(make_graph({make_node("FusedMatMul", {"x2", "w2"}, {"m"}, "", {}, "ai.kiln"),
                                   make_node("Gelu", {"m"}, {"y"}, "", {}, "ai.kiln")},
                                  "g", {make_tensor_value_info("x2", DType::kFloat32, std::vector<DimArg>{3, 4})},
                                  {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                                  {make_tensor("w2", random_tensor({4, 5}, rng))}),
                       {{"", 14}, {"ai.kiln", 1}});
  check_pass(mm, "fuse_activation", {"FusedMatMul"}, {{"x2", random_tensor({3, 4}, rng)}});
  for (int64_t trans_b : {0, 1}) {
    SCOPED_TRACE("Gemm transB " + std::to_string(trans_b));
    auto gemm = model_of(
        {make_node("Gemm", {"x2", "w2", "c2"}, {"g"}, "", {make_attribute("transB", trans_b)}),
         make_node("Relu", {"g"}, {"y"})},
        {make_tensor_value_info("x2", DType::kFloat32, std::vector<DimArg>{3, 4})},
        {make_tensor("w2", random_tensor(trans_b ? std::vector<int64_t>{5, 4} : std::vector<int64_t>{4, 5}, rng)),
         make_tensor("c2", random_tensor({5}, rng))});
    check_pass(gemm, "fuse_activation", {"FusedMatMul"}, {{"x2", random_tensor({3, 4}, rng)}});
  }
}

TEST(Passes, LayoutNchwcKeepsConvolutionChainsBlocked) {
  std::mt19937 rng(12);
  auto pads = make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1});
  // conv (3 -> 12 channels, plain input) -> max pool -> conv + residual (the pool's result) -> global pool, and
  // a plain consumer (Sigmoid) of the first conv's result. 12 channels are not a multiple of the block.
  auto model = model_of(
      {make_node("FusedConv", {"x", "w1", "b1"}, {"c1"}, "", {pads, make_attribute("activation", "Relu")}, "ai.kiln"),
       make_node("MaxPool", {"c1"}, {"p"}, "",
                 {make_attribute("kernel_shape", std::vector<int64_t>{3, 3}),
                  make_attribute("strides", std::vector<int64_t>{2, 2}), pads}),
       make_node("FusedConv", {"p", "w2", "", "p"}, {"c2"}, "", {pads}, "ai.kiln"),
       make_node("GlobalAveragePool", {"c2"}, {"g"}), make_node("Sigmoid", {"c1"}, {"s"}),
       make_node("ReduceSum", {"s"}, {"r"}, "", {make_attribute("keepdims", int64_t{1})}),
       make_node("Add", {"g", "r"}, {"y"})},
      {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3, 9, 9})},
      {make_tensor("w1", random_tensor({12, 3, 3, 3}, rng)), make_tensor("b1", random_tensor({12}, rng)),
       make_tensor("w2", random_tensor({12, 12, 3, 3}, rng))});
  model.opset_import.push_back({"ai.kiln", 1});
  check_pass(model, "layout_nchwc",
             {"NchwcConv", "NchwcMaxPool", "NchwcConv", "NchwcGlobalAveragePool", "ReorderOutput", "Sigmoid",
              "ReduceSum", "Add"},
             {{"x", random_tensor({2, 3, 9, 9}, rng)}}, 1e-4f);
}

TEST(Optimizer, LevelsRunTheirPassesAndNamesParse) {
  std::mt19937 rng(11);
  auto model = model_of(
      {make_node("Identity", {"x"}, {"i"}), make_node("Conv", {"i", "w"}, {"c"}), make_node("Relu", {"c"}, {"y"})},
      {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 2, 3, 3})},
      {make_tensor("w", random_tensor({2, 2, 1, 1}, rng))});
  for (auto [level, ops] :
       std::vector<std::pair<int, std::vector<std::string>>>{{0, {"Identity", "Conv", "Relu"}},
                                                             {1, {"Conv", "Relu"}},
                                                             {2, {"FusedConv"}},
                                                             {99, {"NchwcConv", "ReorderOutput"}}}) {
    ir::Model m = model;
    ASSERT_TRUE(opt::optimize(m, level).is_ok());
    EXPECT_EQ(op_types(m), ops) << "level " << level;
  }
  EXPECT_EQ(*opt::parse_level("extended"), 2);
  EXPECT_EQ(*opt::parse_level("99"), 99);
  auto bad = opt::parse_level("fast");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("expected disabled, basic, extended or all"), std::string::npos);
  ir::Model m = model;
  auto unknown = opt::run_pass(m, "no_such_pass");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().message().find("fold_conv_bn"), std::string::npos);
}

}  // namespace
}  // namespace kiln
