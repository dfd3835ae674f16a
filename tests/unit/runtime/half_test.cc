// Models stored in float16 or bfloat16: Conv, ConvTranspose, MatMul and Gemm run as float32 on the kernel a float32
// node of the same shapes gets (conv.half_as_float and the like, fast/half.cc), against the reference kernels,
// each test asserting the kernel that ran.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../test_util.h"
#include "kernels/isa.h"
#include "kiln/ir/builder.h"
#include "kiln/runtime/session.h"
#include "reference.h"

namespace kiln {
namespace {

using namespace ir::helper;

bool f16c_here() { return cpu::default_isa() >= cpu::Isa::kAvx2 && cpu::cpu_features().f16c; }

// A random tensor of `dt` (float16 or bfloat16), values rounded from uniform [-1, 1).
Tensor random_half(DType dt, const std::vector<int64_t>& dims, std::mt19937& rng) {
  const Tensor f = testing::random_tensor(dims, rng);
  Tensor t = std::move(Tensor::allocate(dt, dims)).value();
  for (int64_t i = 0; i < f.num_elements(); ++i) {
    const float v = f.data<float>()[i];
    t.data<uint16_t>()[i] = dt == DType::kFloat16 ? float_to_half(v) : float_to_bfloat16(v);
  }
  return t;
}

float value(const Tensor& t, int64_t i) {
  const uint16_t b = t.data<uint16_t>()[i];
  return t.dtype() == DType::kFloat16 ? half_to_float(b) : bfloat16_to_float(b);
}

struct Case {
  std::string name, op;
  std::vector<std::string> inputs;  // "x" and "y2" are fed; the others are initializers
  std::vector<std::vector<int64_t>> dims;
  std::vector<ir::Attribute> attrs;
};

// Runs `c` in `dt` on the fast kernels (twice: the second run reads the widened constants from the node's cache)
// and on the reference kernels. Both sides sum in float32 and round once to nearest even; only the order of the
// sums differs, so an output differs by at most a unit in the last place of `dt`, and only where the two float32
// sums straddle a rounding boundary: at least 99% of the outputs must be equal bit for bit (a truncating
// conversion would miss half of them).
void expect_half_matches_reference(const Case& c, DType dt, std::mt19937& rng) {
  SCOPED_TRACE(c.name + (dt == DType::kFloat16 ? " float16" : " bfloat16"));
  std::vector<ir::NamedTensor> inits;
  std::vector<ir::ValueInfo> graph_inputs;
  NamedTensors feeds;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor t = random_half(dt, c.dims[i], rng);
    if (c.inputs[i] == "v") {  // a variance: not negative
      for (int64_t k = 0; k < t.num_elements(); ++k) t.data<uint16_t>()[k] &= 0x7fff;
    }
    if (c.inputs[i] == "x" || c.inputs[i] == "y2") {
      graph_inputs.push_back(
          make_tensor_value_info(c.inputs[i], dt, std::vector<DimArg>(c.dims[i].begin(), c.dims[i].end())));
      feeds.emplace_back(c.inputs[i], std::move(t));
    } else {
      inits.push_back(make_tensor(c.inputs[i], std::move(t)));
    }
  }
  const ir::Model model = make_model(make_graph({make_node(c.op, c.inputs, {"y"}, "node", c.attrs)}, "g", graph_inputs,
                                                {make_tensor_value_info("y", dt, std::nullopt)}, std::move(inits)),
                                     {{"", 17}});
  auto want = testing::reference_outputs(model, feeds);
  ASSERT_TRUE(want.is_ok()) << want.status().message();
  SessionOptions fast_opts;
  fast_opts.tune = false;
  auto fast = std::move(Session::create(model, fast_opts)).value();
  for (int round = 0; round < 2; ++round) {
    auto got = fast->run(feeds);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    const Tensor& g = (*got)[0];
    const Tensor& w = (*want)[0];
    ASSERT_EQ(g.dtype(), dt);
    ASSERT_EQ(g.dims(), w.dims());
    const float ulp = dt == DType::kFloat16 ? 1.0f / 1024 : 1.0f / 128;
    int64_t equal = 0;
    for (int64_t i = 0; i < w.num_elements(); ++i) {
      ASSERT_LE(std::abs(value(g, i) - value(w, i)), ulp * std::abs(value(w, i)) + 1e-7f) << "element " << i;
      equal += g.data<uint16_t>()[i] == w.data<uint16_t>()[i];
    }
    EXPECT_GE(equal * 100, w.num_elements() * 99) << equal << " of " << w.num_elements() << " equal";
  }
  std::string ran;
  for (const KernelChoice& k : fast->kernel_choices()) ran += k.kernel + " (" + k.detail + ") ";
  const std::string expected = f16c_here() ? c.name.substr(0, c.name.find(' ')) + ".half_as_float" : "ref";
  EXPECT_NE(ran.find(expected), std::string::npos) << "expected " << expected << "; ran " << ran;
  if (f16c_here()) {
    EXPECT_NE(ran.find(dt == DType::kFloat16 ? "(float16 as float32: " : "(bfloat16 as float32: "), std::string::npos)
        << ran;
  }
}

TEST(HalfModels, RunAsFloat32OnFastKernels) {
  std::mt19937 rng(11);
  using V = std::vector<int64_t>;
  const std::vector<Case> cases = {
      {"conv grouped, strided, padded",
       "Conv",
       {"x", "w", "b"},
       {{1, 8, 9, 11}, {12, 4, 3, 3}, {12}},
       {make_attribute("group", int64_t{2}), make_attribute("strides", V{2, 1}),
        make_attribute("pads", V{1, 0, 2, 1})}},
      {"conv 1x1 batch 2", "Conv", {"x", "w"}, {{2, 16, 5, 7}, {24, 16, 1, 1}}, {}},
      {"convtranspose stride 2",
       "ConvTranspose",
       {"x", "w", "b"},
       {{1, 6, 5, 5}, {6, 4, 3, 3}, {4}},
       {make_attribute("strides", V{2, 2}), make_attribute("pads", V{1, 1, 1, 1})}},
      {"matmul by a constant", "MatMul", {"x", "b"}, {{2, 3, 5, 16}, {16, 24}}, {}},
      {"matmul of two fed", "MatMul", {"x", "y2"}, {{3, 7, 9}, {3, 9, 5}}, {}},
      {"gemm transB with C",
       "Gemm",
       {"x", "b", "c"},
       {{6, 20}, {12, 20}, {12}},
       {make_attribute("transB", int64_t{1}), make_attribute("alpha", 0.5f), make_attribute("beta", 2.0f)}},
  };
  for (const Case& c : cases) {
    for (const DType dt : {DType::kFloat16, DType::kBFloat16}) expect_half_matches_reference(c, dt, rng);
  }
}

// The ops between the products in a half-precision network: element-wise, pooling, normalization, Concat.
TEST(HalfModels, ElementwisePoolingAndNormalizationRunAsFloat32) {
  std::mt19937 rng(12);
  using V = std::vector<int64_t>;
  const std::vector<Case> cases = {
      {"relu", "Relu", {"x"}, {{2, 3, 17, 5}}, {}},
      {"add broadcast", "Add", {"x", "b"}, {{1, 8, 6, 6}, {8, 1, 1}}, {}},
      {"mul of two fed", "Mul", {"x", "y2"}, {{4, 33}, {4, 33}}, {}},
      {"clip", "Clip", {"x", "lo", "hi"}, {{3, 40}, {}, {}}, {}},
      {"sigmoid", "Sigmoid", {"x"}, {{5, 31}}, {}},
      {"maxpool",
       "MaxPool",
       {"x"},
       {{1, 4, 9, 9}},
       {make_attribute("kernel_shape", V{3, 3}), make_attribute("strides", V{2, 2}),
        make_attribute("pads", V{1, 1, 1, 1})}},
      {"averagepool", "AveragePool", {"x"}, {{1, 4, 8, 8}}, {make_attribute("kernel_shape", V{2, 2})}},
      {"globalaveragepool", "GlobalAveragePool", {"x"}, {{2, 16, 7, 7}}, {}},
      {"softmax", "Softmax", {"x"}, {{6, 50}}, {make_attribute("axis", int64_t{-1})}},
      {"batchnormalization", "BatchNormalization", {"x", "s", "b", "m", "v"}, {{1, 6, 4, 4}, {6}, {6}, {6}, {6}}, {}},
      {"layernormalization", "LayerNormalization", {"x", "s", "b"}, {{4, 10, 48}, {48}, {48}}, {}},
      {"concat", "Concat", {"x", "y2"}, {{2, 3, 4}, {2, 5, 4}}, {make_attribute("axis", int64_t{1})}},
  };
  for (const Case& c : cases) {
    for (const DType dt : {DType::kFloat16, DType::kBFloat16}) expect_half_matches_reference(c, dt, rng);
  }
}

}  // namespace
}  // namespace kiln
