// layout_nhwc_bf16 and the ops it writes: ai.kiln NhwcConv, ToNhwc, FromNhwc, NhwcGlobalAveragePool and NhwcMaxPool
// on bfloat16. The pass (no bfloat16 hardware needed), the reference kernels against their plain forms, and the
// fast kernels against the reference on each ISA the CPU has, each test asserting the kernel that ran.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../test_util.h"
#include "kernels/isa.h"
#include "kiln/ir/builder.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/session.h"

namespace kiln {
namespace {

using namespace ir::helper;

using testing::random_tensor;

bool bf16_here() { return cpu::default_isa() == cpu::Isa::kAvx512 && cpu::has_bf16(); }
bool avx2_here() { return cpu::default_isa() >= cpu::Isa::kAvx2; }

constexpr int64_t kFloat = static_cast<int64_t>(DType::kFloat32);
constexpr int64_t kBf16 = static_cast<int64_t>(DType::kBFloat16);

ir::Model model_of(std::vector<ir::Node> nodes, const std::vector<int64_t>& x, std::vector<ir::NamedTensor> inits) {
  return make_model(make_graph(std::move(nodes), "g",
                               {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>(x.begin(), x.end()))},
                               {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, std::move(inits)),
                    {{"", 17}, {"ai.kiln", 1}});
}

std::vector<std::string> op_types(const ir::Model& m) {
  std::vector<std::string> out;
  for (const auto& n : m.graph.nodes) out.push_back(n.op_type);
  return out;
}

Tensor run(const ir::Model& m, const NamedTensors& feeds, bool reference, std::vector<KernelChoice>* ran = nullptr,
           int threads = 0, std::vector<std::string> disabled = {}) {
  SessionOptions o;
  o.reference_kernels = reference;
  o.intra_op_threads = threads;
  o.disabled_kernels = std::move(disabled);
  o.optimization_level = 0;  // the nodes as written
  o.tune = false;
  auto s = std::move(Session::create(m, o)).value();
  auto out = s->run(feeds);
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  if (ran) *ran = s->kernel_choices();
  return out.is_ok() ? std::move((*out)[0]) : Tensor();
}

// |got - want| <= tol * the largest |want|, element by element.
void expect_close(const Tensor& got, const Tensor& want, float tol) {
  ASSERT_EQ(got.dims(), want.dims());
  float largest = 0.0f;
  for (int64_t i = 0; i < want.num_elements(); ++i) largest = std::max(largest, std::abs(want.data<float>()[i]));
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    ASSERT_LE(std::abs(got.data<float>()[i] - want.data<float>()[i]), tol * largest) << "element " << i;
  }
}

void expect_ran(const std::vector<KernelChoice>& ran, const std::string& kernel, bool expected) {
  bool found = false;
  std::string all;
  for (const KernelChoice& c : ran) {
    found = found || c.kernel == kernel;
    all += " " + c.kernel;
  }
  EXPECT_EQ(found, expected) << kernel << "; ran" << all;
}

ir::Attribute ints(const std::string& name, std::vector<int64_t> v) { return make_attribute(name, std::move(v)); }

// Conv + Relu, MaxPool, a 1x1 Conv whose result is added to the pooled value, GlobalAveragePool.
ir::Model small_cnn(std::mt19937& rng) {
  return model_of(
      {make_node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1", {ints("pads", {1, 1, 1, 1})}),
       make_node("Relu", {"c1"}, {"r1"}),
       make_node("MaxPool", {"r1"}, {"p1"}, "pool", {ints("kernel_shape", {2, 2}), ints("strides", {2, 2})}),
       make_node("Conv", {"p1", "w2"}, {"c2"}, "conv2"), make_node("Add", {"c2", "p1"}, {"s"}),
       make_node("GlobalAveragePool", {"s"}, {"y"})},
      {1, 8, 12, 12},
      {make_tensor("w1", random_tensor({16, 8, 3, 3}, rng)), make_tensor("b1", random_tensor({16}, rng)),
       make_tensor("w2", random_tensor({16, 16, 1, 1}, rng))});
}

TEST(NhwcBf16, PassKeepsConvolutionsAndPoolingInBfloat16ChannelsLast) {
  std::mt19937 rng(1);
  const ir::Model model = small_cnn(rng);
  ir::Model plain = model;
  ASSERT_EQ(*opt::run_pass(plain, "layout_nhwc_bf16"), 0);  // not a bf16 session: nothing to do
  ir::Model after = model;
  opt::Options bf16;
  bf16.bf16 = true;
  ASSERT_TRUE(opt::optimize(after, opt::kAll, bf16).is_ok());
  EXPECT_EQ(op_types(after),
            (std::vector<std::string>{"ToNhwc", "NhwcConv", "NhwcMaxPool", "NhwcConv", "NhwcGlobalAveragePool"}));
  EXPECT_EQ(after.graph.nodes[0].attr("to")->i, kBf16);
  // On the reference kernels too, the rewritten graph computes what the model does, within bfloat16's rounding.
  const NamedTensors feeds{{"x", random_tensor({1, 8, 12, 12}, rng)}};
  expect_close(run(after, feeds, true), run(model, feeds, true), 2e-2f);
  // A value a plain consumer reads goes back to float32 NCHW once (FromNhwc), wherever it is read.
  ir::Model two = model_of({make_node("Conv", {"x", "w"}, {"c"}, "conv"), make_node("Sigmoid", {"c"}, {"a"}),
                            make_node("Add", {"a", "c"}, {"y"})},
                           {1, 4, 5, 5}, {make_tensor("w", random_tensor({4, 4, 3, 3}, rng))});
  ASSERT_EQ(*opt::run_pass(two, "layout_nhwc_bf16", bf16), 1);
  EXPECT_EQ(op_types(two), (std::vector<std::string>{"ToNhwc", "NhwcConv", "FromNhwc", "Sigmoid", "Add"}));
  EXPECT_EQ(two.graph.nodes[2].attr("to")->i, kFloat);
}

// The float32 forms: ToNhwc and FromNhwc to float32 are permutations, and NhwcConv, NhwcMaxPool and
// NhwcGlobalAveragePool compute exactly what Conv (FusedConv), MaxPool and GlobalAveragePool compute.
TEST(NhwcBf16, ReferenceKernelsEqualTheirPlainForms) {
  std::mt19937 rng(2);
  const std::vector<ir::NamedTensor> inits{make_tensor("w", random_tensor({6, 3, 3, 3}, rng)),
                                           make_tensor("b", random_tensor({6}, rng))};
  const std::vector<ir::Attribute> conv_attrs{ints("pads", {1, 0, 1, 2}), ints("strides", {2, 1}),
                                              make_attribute("group", int64_t{2})};
  const NamedTensors feeds{{"x", random_tensor({2, 6, 9, 8}, rng)}};
  auto to_float = [](const std::string& from, const std::string& to, const std::string& op) {
    return make_node(op, {from}, {to}, "", {make_attribute("to", kFloat)}, "ai.kiln");
  };
  std::vector<ir::Attribute> fused = conv_attrs;
  fused.push_back(make_attribute("activation", "Clip"));
  fused.push_back(make_attribute("activation_params", std::vector<float>{-0.5f, 0.5f}));
  const ir::Model plain =
      model_of({make_node("Conv", {"x", "w", "b"}, {"c"}, "conv", conv_attrs), make_node("Add", {"c", "c"}, {"z"}),
                make_node("FusedConv", {"x", "w", "b", "z"}, {"f"}, "fused", fused, "ai.kiln"),
                make_node("MaxPool", {"f"}, {"p"}, "pool", {ints("kernel_shape", {3, 2}), ints("pads", {1, 1, 1, 0})}),
                make_node("GlobalAveragePool", {"p"}, {"y"})},
               {2, 6, 9, 8}, inits);
  const ir::Model nhwc = model_of(
      {to_float("x", "xl", "ToNhwc"), make_node("NhwcConv", {"xl", "w", "b"}, {"cl"}, "conv", conv_attrs, "ai.kiln"),
       make_node("Add", {"cl", "cl"}, {"zl"}),
       make_node("NhwcConv", {"xl", "w", "b", "zl"}, {"fl"}, "fused", fused, "ai.kiln"),
       make_node("NhwcMaxPool", {"fl"}, {"pl"}, "pool", {ints("kernel_shape", {3, 2}), ints("pads", {1, 1, 1, 0})},
                 "ai.kiln"),
       make_node("NhwcGlobalAveragePool", {"pl"}, {"y"}, "gap", {}, "ai.kiln")},
      {2, 6, 9, 8}, inits);
  const Tensor want = run(plain, feeds, true), got = run(nhwc, feeds, true);
  ASSERT_EQ(got.dims(), want.dims());
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
  // FromNhwc undoes ToNhwc.
  const ir::Model round_trip =
      model_of({to_float("x", "xl", "ToNhwc"), to_float("xl", "y", "FromNhwc")}, {2, 6, 9, 8}, {});
  const Tensor back = run(round_trip, feeds, true);
  EXPECT_EQ(std::memcmp(back.raw_data(), feeds[0].second.raw_data(), back.nbytes()), 0);
}

struct ConvCase {
  std::string name;
  std::vector<int64_t> x, w;
  int64_t group;
  std::vector<int64_t> strides, pads;
  std::string activation;
  bool residual;
};

// x (float32 NCHW) -> ToNhwc(dt) -> NhwcConv (-> + a residual) -> FromNhwc(float32) -> y.
ir::Model nhwc_conv_model(const ConvCase& c, int64_t dt, std::mt19937& rng) {
  std::vector<ir::Attribute> attrs{make_attribute("group", c.group), ints("strides", c.strides), ints("pads", c.pads)};
  if (!c.activation.empty()) attrs.push_back(make_attribute("activation", c.activation));
  if (c.activation == "Clip") attrs.push_back(make_attribute("activation_params", std::vector<float>{0.0f, 1.5f}));
  std::vector<ir::Node> nodes{make_node("ToNhwc", {"x"}, {"xl"}, "to", {make_attribute("to", dt)}, "ai.kiln")};
  std::vector<std::string> inputs{"xl", "w", "b"};
  if (c.residual) {
    // A residual of the output's shape: the same convolution without activation, then its own.
    std::vector<ir::Attribute> plain(attrs.begin(), attrs.begin() + 3);
    nodes.push_back(make_node("NhwcConv", {"xl", "w", "b"}, {"zl"}, "z", plain, "ai.kiln"));
    inputs.push_back("zl");
  }
  nodes.push_back(make_node("NhwcConv", inputs, {"yl"}, "conv", attrs, "ai.kiln"));
  nodes.push_back(make_node("FromNhwc", {"yl"}, {"y"}, "from", {make_attribute("to", kFloat)}, "ai.kiln"));
  return model_of(std::move(nodes), c.x,
                  {make_tensor("w", random_tensor(c.w, rng)), make_tensor("b", random_tensor({c.w[0]}, rng))});
}

TEST(NhwcBf16, FastKernelsMatchReference) {
  std::mt19937 rng(3);
  const std::vector<ConvCase> cases = {
      {"3x3", {1, 32, 14, 14}, {48, 32, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}, "Relu", false},
      {"1x1 with a residual", {2, 64, 7, 9}, {64, 64, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}, "Relu", true},
      {"first layer 7x7 stride 2", {1, 3, 33, 35}, {16, 3, 7, 7}, 1, {2, 2}, {3, 3, 3, 3}, "", false},
      {"odd channels", {1, 5, 9, 9}, {7, 5, 3, 3}, 1, {1, 1}, {1, 0, 1, 0}, "Clip", false},
      {"grouped", {1, 16, 10, 10}, {16, 4, 3, 3}, 4, {1, 1}, {1, 1, 1, 1}, "", true},
      {"depthwise stride 2", {1, 40, 15, 15}, {40, 1, 3, 3}, 40, {2, 2}, {1, 1, 1, 1}, "Clip", false},
  };
  for (const ConvCase& c : cases) {
    for (const int64_t dt : {kFloat, kBf16}) {
      SCOPED_TRACE(c.name + (dt == kBf16 ? " bfloat16" : " float32"));
      const ir::Model model = nhwc_conv_model(c, dt, rng);
      const NamedTensors feeds{{"x", random_tensor(c.x, rng)}};
      std::vector<KernelChoice> ran;
      const Tensor got = run(model, feeds, false, &ran), want = run(model, feeds, true);
      // Both sides read the same bfloat16 inputs; the fast side sums in float32 and rounds its output once.
      expect_close(got, want, dt == kBf16 ? 1e-2f : 1e-5f);
      const bool fast = dt == kBf16 ? bf16_here() : avx2_here();
      // A depthwise convolution on bfloat16 runs on kiln's kernel (below); every other one on oneDNN's.
      const bool depthwise = c.group == c.x[1] && c.w[0] == c.x[1] && dt == kBf16 && !c.residual;
      expect_ran(ran, "nhwc_conv.dnnl", fast && !depthwise);
      expect_ran(ran, "nhwc_conv.depthwise_bf16", fast && depthwise);
      // An image's three channels to bfloat16: kiln's permutes; the rest oneDNN's reorder.
      const bool image = dt == kBf16 && (c.x[1] == 1 || c.x[1] == 3);
      expect_ran(ran, "to_nhwc.simd", fast && image);
      expect_ran(ran, "to_nhwc.dnnl", fast && !image);
      expect_ran(ran, "from_nhwc.dnnl", fast);
    }
  }
  // The conversions alone: bit for bit the reference's (rounding to nearest even, both ways).
  for (const int64_t dt : {kFloat, kBf16}) {
    const ir::Model round_trip =
        model_of({make_node("ToNhwc", {"x"}, {"xl"}, "to", {make_attribute("to", dt)}, "ai.kiln"),
                  make_node("FromNhwc", {"xl"}, {"y"}, "from", {make_attribute("to", kFloat)}, "ai.kiln")},
                 {2, 19, 5, 7}, {});
    const NamedTensors feeds{{"x", random_tensor({2, 19, 5, 7}, rng, -1e3f, 1e3f)}};
    const Tensor got = run(round_trip, feeds, false), want = run(round_trip, feeds, true);
    EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
  }
}

// nhwc_conv.depthwise_bf16 (group = C = M on bfloat16, kernels/x86/depthwise_bf16.h) against the reference on random
// shapes: chunk tails (C not a multiple of 32), kernels 1x1 to 7x7 and uneven ones, strides 1 and 2, uneven and wide
// padding, several images, each activation it takes; on one, two and three threads (rows shared out, or on a small
// map the chunks). Both sides read the same bfloat16 values; the kernel sums in float32 and rounds once, as the
// reference does, so they differ by at most a rounding step. With the kernel disabled oneDNN's runs instead.
TEST(NhwcBf16, DepthwiseKernelMatchesReference) {
  std::mt19937 rng(7);
  struct Case {
    std::vector<int64_t> x, kernel, strides, pads;
    std::string activation;
  };
  const std::vector<Case> cases = {
      {{1, 32, 20, 20}, {3, 3}, {1, 1}, {1, 1, 1, 1}, "Clip"}, {{1, 144, 13, 11}, {3, 3}, {2, 2}, {1, 1, 1, 1}, "Relu"},
      {{2, 40, 9, 16}, {3, 3}, {1, 1}, {0, 2, 1, 0}, ""},      {{1, 96, 7, 7}, {3, 3}, {1, 1}, {1, 1, 1, 1}, "Clip"},
      {{1, 64, 4, 5}, {5, 5}, {2, 1}, {2, 2, 2, 2}, "Relu"},   {{3, 16, 6, 9}, {1, 1}, {1, 1}, {0, 0, 0, 0}, ""},
      {{1, 33, 15, 12}, {3, 5}, {1, 2}, {1, 2, 1, 2}, "Clip"}, {{1, 8, 11, 10}, {7, 7}, {1, 1}, {3, 3, 3, 3}, "Relu"},
      {{1, 200, 3, 3}, {3, 3}, {1, 1}, {4, 4, 4, 4}, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.x) + " kernel " + ::testing::PrintToString(c.kernel) + " " + c.activation);
    const int64_t C = c.x[1];
    std::vector<ir::Attribute> attrs{make_attribute("group", C), ints("kernel_shape", c.kernel),
                                     ints("strides", c.strides), ints("pads", c.pads)};
    if (!c.activation.empty()) attrs.push_back(make_attribute("activation", c.activation));
    if (c.activation == "Clip") attrs.push_back(make_attribute("activation_params", std::vector<float>{-0.25f, 0.5f}));
    const ir::Model model =
        model_of({make_node("ToNhwc", {"x"}, {"xl"}, "to", {make_attribute("to", kBf16)}, "ai.kiln"),
                  make_node("NhwcConv", {"xl", "w", "b"}, {"yl"}, "dw", attrs, "ai.kiln"),
                  make_node("FromNhwc", {"yl"}, {"y"}, "from", {make_attribute("to", kFloat)}, "ai.kiln")},
                 c.x,
                 {make_tensor("w", random_tensor({C, 1, c.kernel[0], c.kernel[1]}, rng)),
                  make_tensor("b", random_tensor({C}, rng))});
    Tensor x = random_tensor(c.x, rng);
    x.data<float>()[5] = std::nanf("");  // a NaN sum: 0 after Relu, NaN otherwise, on both sides
    const NamedTensors feeds{{"x", x}};
    const Tensor want = run(model, feeds, true);
    for (const int threads : {1, 2, 3}) {
      SCOPED_TRACE(std::to_string(threads) + " threads");
      std::vector<KernelChoice> ran;
      const Tensor got = run(model, feeds, false, &ran, threads);
      ASSERT_EQ(got.dims(), want.dims());
      float largest = 0.0f;
      for (int64_t i = 0; i < want.num_elements(); ++i) {
        if (!std::isnan(want.data<float>()[i])) largest = std::max(largest, std::abs(want.data<float>()[i]));
      }
      for (int64_t i = 0; i < want.num_elements(); ++i) {
        const float g = got.data<float>()[i], w = want.data<float>()[i];
        ASSERT_EQ(std::isnan(g), std::isnan(w)) << "element " << i;
        if (!std::isnan(w)) {
          ASSERT_LE(std::abs(g - w), std::abs(w) / 64 + 1e-3f * largest) << "element " << i;
        }
      }
      expect_ran(ran, "nhwc_conv.depthwise_bf16", bf16_here());
    }
    std::vector<KernelChoice> ran;
    run(model, feeds, false, &ran, 2, {"nhwc_conv.depthwise_bf16"});
    expect_ran(ran, "nhwc_conv.depthwise_bf16", false);
    expect_ran(ran, "nhwc_conv.dnnl", bf16_here());
  }
}

// NhwcMaxPool (exact: the maximum of bfloat16 values is one of them) and NhwcGlobalAveragePool on bfloat16.
TEST(NhwcBf16, PoolingOnBfloat16MatchesReference) {
  std::mt19937 rng(4);
  struct Case {
    std::vector<int64_t> x, kernel, strides, pads;
  };
  const std::vector<Case> cases = {{{1, 64, 12, 12}, {3, 3}, {2, 2}, {1, 1, 1, 1}},
                                   {{2, 21, 7, 9}, {2, 3}, {1, 2}, {0, 1, 1, 0}},
                                   {{1, 8, 5, 5}, {2, 2}, {2, 2}, {0, 0, 0, 0}},
                                   {{1, 44, 9, 10}, {3, 3}, {1, 1}, {1, 1, 1, 1}}};
  auto to_bf16 = make_node("ToNhwc", {"x"}, {"xl"}, "to", {make_attribute("to", kBf16)}, "ai.kiln");
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.x));
    const NamedTensors feeds{{"x", random_tensor(c.x, rng)}};
    const ir::Model pool = model_of(
        {to_bf16,
         make_node("NhwcMaxPool", {"xl"}, {"pl"}, "pool",
                   {ints("kernel_shape", c.kernel), ints("strides", c.strides), ints("pads", c.pads)}, "ai.kiln"),
         make_node("FromNhwc", {"pl"}, {"y"}, "from", {make_attribute("to", kFloat)}, "ai.kiln")},
        c.x, {});
    std::vector<KernelChoice> ran;
    Tensor got = run(pool, feeds, false, &ran), want = run(pool, feeds, true);
    ASSERT_EQ(got.dims(), want.dims());
    EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
    expect_ran(ran, "nhwc_maxpool.sse2", avx2_here());  // SSE2 integer maxima: any bfloat16 tensor
    const ir::Model gap =
        model_of({to_bf16, make_node("NhwcGlobalAveragePool", {"xl"}, {"y"}, "gap", {}, "ai.kiln")}, c.x, {});
    got = run(gap, feeds, false, &ran);
    want = run(gap, feeds, true);
    expect_close(got, want, 1e-6f);
    // It widens bfloat16 bits with AVX-512 integer shifts: no bfloat16 instructions needed (an AVX-512 CPU without
    // them, an Ice Lake Xeon, runs it too).
    expect_ran(ran, "nhwc_global_avgpool.simd", cpu::default_isa() == cpu::Isa::kAvx512);
  }
}

// ToNhwc of an image to bfloat16 (to_nhwc.simd: 1 or 3 channels, 32 pixels at a time, then a tail): the reference's
// bits, rounding ties, NaN, infinities, subnormals and overflow included. Other channel counts stay on oneDNN's
// reorder, which flushes subnormals to zero as the bfloat16 instructions do: the same bits for every other value.
TEST(NhwcBf16, ImagesToBfloat16MatchReferenceBitForBit) {
  std::mt19937 rng(6);
  const float specials[] = {std::nanf(""),
                            -std::nanf(""),
                            std::numeric_limits<float>::signaling_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::denorm_min(),
                            -1e-39f,
                            0.0f,
                            -0.0f};
  const uint32_t ties[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f80ffffu, 0x3f807fffu};
  for (const std::vector<int64_t>& x : {std::vector<int64_t>{2, 3, 7, 45}, std::vector<int64_t>{1, 1, 5, 13},
                                        std::vector<int64_t>{1, 3, 70, 70}, std::vector<int64_t>{1, 6, 4, 9}}) {
    SCOPED_TRACE(::testing::PrintToString(x));
    Tensor in = random_tensor(x, rng);
    float* v = in.data<float>();
    const bool simd = x[1] == 1 || x[1] == 3;
    for (size_t i = 0; i < std::size(specials); ++i) {
      if (!simd && std::fpclassify(specials[i]) == FP_SUBNORMAL) continue;
      v[(i * 37) % static_cast<size_t>(in.num_elements())] = specials[i];
    }
    for (size_t i = 0; i < std::size(ties); ++i) {
      std::memcpy(&v[(i * 53 + 11) % static_cast<size_t>(in.num_elements())], &ties[i], sizeof(float));
    }
    const ir::Model m =
        model_of({make_node("ToNhwc", {"x"}, {"xl"}, "to", {make_attribute("to", kBf16)}, "ai.kiln"),
                  make_node("FromNhwc", {"xl"}, {"y"}, "from", {make_attribute("to", kFloat)}, "ai.kiln")},
                 x, {});
    std::vector<KernelChoice> ran;
    const Tensor got = run(m, {{"x", in}}, false, &ran), want = run(m, {{"x", in}}, true);
    ASSERT_EQ(got.dims(), want.dims());
    EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.nbytes()), 0);
    expect_ran(ran, "to_nhwc.simd", bf16_here() && simd);
    expect_ran(ran, "to_nhwc.dnnl", bf16_here() && !simd);
  }
}

}  // namespace
}  // namespace kiln
