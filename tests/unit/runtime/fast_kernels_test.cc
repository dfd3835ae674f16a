// Every fast kernel against its plain reference kernel (SessionOptions::reference_kernels) on random shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../test_util.h"
#include "kernels/capabilities.h"
#include "kernels/isa.h"
#include "kiln/ir/builder.h"
#include "kiln/runtime/session.h"

namespace kiln {
namespace {

using namespace ir::helper;

using testing::random_tensor;

// `fast` when the fast kernels may use AVX2 here (every fast kernel needs it), else "ref".
std::string with_avx2(const std::string& fast) { return cpu::default_isa() >= cpu::Isa::kAvx2 ? fast : "ref"; }

// The kernel a blocked convolution of the AVX2 kernels' kind runs: `avx2_kernel` with blocks of 8 (what the layout
// pass chooses on an AVX2 CPU), oneDNN's with blocks of 16 (AVX-512: the AVX2 kernels take blocks of 8 only).
std::string blocked(const std::string& avx2_kernel) {
  return with_avx2(cpu::preferred_nchwc_block() == 8 ? avx2_kernel : "nchwc_conv.dnnl");
}

// Any fast convolution kernel: Conv stays Conv (conv.dnnl) or becomes a blocked NchwcConv, whose kernel depends on
// the CPU.
const std::string kAnyConv =
    "conv.dnnl|nchwc_conv.im2col|nchwc_conv.winograd_f4|nchwc_conv.winograd_f2|nchwc_conv.gemm|nchwc_conv.pointwise|"
    "nchwc_conv.direct|nchwc_conv.dnnl|"
    "fusedconv.dnnl";

// Asserts that some node ran `kernel` (a fast kernel's name, or its name, a space and the detail it reported; or
// several such, separated by '|'), or with "ref" that every node ran its reference kernel.
void expect_kernel(const Session& session, const std::string& kernel) {
  std::string ran;
  bool found = false, all_ref = true;
  for (const KernelChoice& c : session.kernel_choices()) {
    ran += " " + c.op + ":" + c.kernel + (c.detail.empty() ? "" : "(" + c.detail + ")");
    size_t at = 0;
    while (at <= kernel.size()) {
      const size_t bar = std::min(kernel.find('|', at), kernel.size());
      const std::string one = kernel.substr(at, bar - at);
      found = found || c.kernel == one || c.kernel + " " + c.detail == one;
      at = bar + 1;
    }
    all_ref = all_ref && c.kernel == "ref";
  }
  if (kernel == "ref") {
    EXPECT_TRUE(all_ref) << "ran" << ran;
  } else {
    EXPECT_TRUE(found) << "expected " << kernel << "; ran" << ran;
  }
}

// Runs the model optimized on the fast kernels and unoptimized on the reference kernels
// (SessionOptions::reference_kernels) and compares output 0 element by element: |fast - ref| <= atol + tol |ref|,
// atol = tol, or tol max|ref| when `of_largest` (kernels whose rounding error scales with the sums' terms rather
// than with each result, such as Winograd F(4x4, 3x3): an output that cancels to near zero keeps the error of
// its terms). `kernel` (when given): the kernel the fast session must have chosen (expect_kernel).
void expect_fast_matches_reference(const ir::Model& model, const NamedTensors& feeds, float tol,
                                   bool of_largest = false, const std::string& kernel = "",
                                   const std::vector<std::string>& disabled = {}) {
  SessionOptions ref_opts;
  ref_opts.reference_kernels = true;
  ref_opts.optimization_level = 0;
  auto ref_session = std::move(Session::create(model, ref_opts)).value();
  auto ref = ref_session->run(feeds);
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  expect_kernel(*ref_session, "ref");
  // The first run records the memory plan, the second replays it (outputs in one arena, in-place sums). The
  // first guess, not the timed choice, so that the kernel under test is the one that runs (tuner_test times).
  SessionOptions fast_opts;
  fast_opts.tune = false;
  fast_opts.disabled_kernels = disabled;
  auto session = std::move(Session::create(model, fast_opts)).value();
  for (const char* run : {"recording run", "planned run"}) {
    SCOPED_TRACE(run);
    auto fast = session->run(feeds);
    ASSERT_TRUE(fast.is_ok()) << fast.status().message();
    const Tensor& r = (*ref)[0];
    const Tensor& f = (*fast)[0];
    ASSERT_EQ(f.dims(), r.dims());
    float largest = 0.0f;
    for (int64_t i = 0; i < r.num_elements(); ++i) largest = std::max(largest, std::abs(r.data<float>()[i]));
    const float atol = of_largest ? tol * largest : tol;
    for (int64_t i = 0; i < r.num_elements(); ++i) {
      const float want = r.data<float>()[i], got = f.data<float>()[i];
      ASSERT_LE(std::abs(got - want), atol + tol * std::abs(want)) << "element " << i;
    }
    if (!kernel.empty()) expect_kernel(*session, kernel);
  }
}

struct ConvCase {
  std::string name;
  std::vector<int64_t> x_dims;  // N, C, spatial...
  int64_t out_channels, group;
  std::vector<int64_t> kernel, strides, dilations, pads;
  bool bias = true;
  std::string auto_pad;
};

// Runs one Conv both ways and compares: |fast - ref| <= 1e-4 + 1e-4 |ref|.
void check_conv(const ConvCase& c, std::mt19937& rng) {
  SCOPED_TRACE(c.name);
  std::vector<int64_t> w_dims{c.out_channels, c.x_dims[1] / c.group};
  w_dims.insert(w_dims.end(), c.kernel.begin(), c.kernel.end());
  std::vector<ir::Attribute> attrs{make_attribute("group", c.group), make_attribute("strides", c.strides),
                                   make_attribute("dilations", c.dilations)};
  if (c.auto_pad.empty()) {
    attrs.push_back(make_attribute("pads", c.pads));
  } else {
    attrs.push_back(make_attribute("auto_pad", c.auto_pad));
  }
  std::vector<std::string> inputs{"x", "w"};
  std::vector<ir::NamedTensor> inits{make_tensor("w", random_tensor(w_dims, rng))};
  if (c.bias) {
    inputs.push_back("b");
    inits.push_back(make_tensor("b", random_tensor({c.out_channels}, rng)));
  }
  std::vector<DimArg> xd(c.x_dims.begin(), c.x_dims.end());
  auto model = make_model(make_graph({make_node("Conv", inputs, {"y"}, "conv", attrs)}, "conv",
                                     {make_tensor_value_info("x", DType::kFloat32, xd)},
                                     {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, inits));
  expect_fast_matches_reference(model, {{"x", random_tensor(c.x_dims, rng)}}, 1e-4f, false, with_avx2(kAnyConv));
}

TEST(FastKernels, ConvMatchesReference) {
  std::mt19937 rng(7);
  const std::vector<ConvCase> cases = {
      {"3x3 pad 1", {1, 3, 17, 19}, 8, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, true, ""},
      {"stride 2, odd sizes", {2, 5, 23, 11}, 7, 1, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, true, ""},
      {"asymmetric pads, 5x3 kernel", {1, 4, 13, 14}, 6, 1, {5, 3}, {1, 2}, {1, 1}, {2, 0, 1, 1}, true, ""},
      {"dilation 2", {1, 3, 20, 20}, 4, 1, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, true, ""},
      {"groups 2", {1, 8, 12, 12}, 6, 2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, true, ""},
      {"depthwise", {1, 16, 15, 15}, 16, 16, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, true, ""},
      {"1x1, no bias", {3, 32, 7, 9}, 24, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, false, ""},
      {"SRCNN 9x9", {1, 3, 30, 30}, 64, 1, {9, 9}, {1, 1}, {1, 1}, {4, 4, 4, 4}, true, ""},
      {"auto_pad SAME_UPPER stride 2", {1, 3, 10, 13}, 5, 1, {4, 4}, {2, 2}, {1, 1}, {}, true, "SAME_UPPER"},
      {"1-D", {2, 4, 31}, 6, 1, {5}, {2}, {1}, {2, 1}, true, ""},
      {"3-D", {1, 2, 6, 7, 8}, 3, 1, {3, 3, 3}, {1, 2, 1}, {1, 1, 1}, {1, 1, 1, 1, 0, 1}, true, ""},
  };
  for (const auto& c : cases) check_conv(c, rng);
  // Random shapes: channels, sizes, kernels, strides, dilations, pads and groups drawn at random.
  std::uniform_int_distribution<int> small(1, 4);
  for (int k = 0; k < 20; ++k) {
    const int64_t group = small(rng) % 2 ? 1 : small(rng);
    const int64_t C = group * small(rng), M = group * small(rng);
    const int64_t kh = small(rng), kw = small(rng), dh = small(rng) % 2 + 1, dw = small(rng) % 2 + 1;
    const int64_t H = (kh - 1) * dh + 1 + small(rng) * 3, W = (kw - 1) * dw + 1 + small(rng) * 2;
    ConvCase c{"random " + std::to_string(k),
               {small(rng) % 2 + 1, C, H, W},
               M,
               group,
               {kh, kw},
               {small(rng) % 3 + 1, small(rng) % 2 + 1},
               {dh, dw},
               {small(rng) % 3, small(rng) % 2, small(rng) % 3, small(rng) % 2},
               k % 3 != 0,
               ""};
    check_conv(c, rng);
  }
}

// First layers oneDNN has no direct kernel for (a 9x9 window over 3 channels) run on the SGEMM, reading interior
// windows in place and border ones through an im2col: with a fused ReLU (applied in registers) or another
// activation (on the finished tile), strides and dilations, channel counts on and off the 16-wide panels.
TEST(FastKernels, FirstLayerConvOnTheSgemmMatchesReference) {
  std::mt19937 rng(23);
  struct Case {
    std::string act;
    int64_t M, stride, dilation;
  };
  for (const Case& c :
       std::vector<Case>{{"Relu", 64, 1, 1}, {"Sigmoid", 20, 2, 1}, {"", 13, 1, 2}, {"Relu", 8, 3, 1}}) {
    SCOPED_TRACE(c.act + " M " + std::to_string(c.M) + " stride " + std::to_string(c.stride) + " dilation " +
                 std::to_string(c.dilation));
    std::vector<ir::Node> nodes{make_node("Conv", {"x", "w", "b"}, {c.act.empty() ? "y" : "c"}, "conv",
                                          {make_attribute("pads", std::vector<int64_t>{4, 4, 4, 4}),
                                           make_attribute("strides", std::vector<int64_t>{c.stride, c.stride}),
                                           make_attribute("dilations", std::vector<int64_t>{c.dilation, c.dilation})})};
    if (!c.act.empty()) nodes.push_back(make_node(c.act, {"c"}, {"y"}));
    auto model = make_model(make_graph(
        nodes, "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3, 37, 41})},
        {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
        {make_tensor("w", random_tensor({c.M, 3, 9, 9}, rng)), make_tensor("b", random_tensor({c.M}, rng))}));
    const Tensor x = random_tensor({2, 3, 37, 41}, rng);
    expect_fast_matches_reference(model, {{"x", x}}, 1e-4f, false, blocked("nchwc_conv.im2col"));
    // With oneDNN's kernel set aside (the tuner times the two), the implicit GEMM at the block size the layout pass
    // chose: 6 pixels by 32 channels with AVX-512 and blocks of 16 (the odd M exercise the one-panel tail), else by
    // 16.
    const bool wide = cpu::preferred_nchwc_block() == 16 && cpu::default_isa() >= cpu::Isa::kAvx512;
    expect_fast_matches_reference(
        model, {{"x", x}}, 1e-4f, false,
        with_avx2(wide ? "nchwc_conv.im2col im2col_sgemm16.avx512" : "nchwc_conv.im2col im2col_sgemm.avx2"),
        {"nchwc_conv.dnnl"});
  }
}

// Runs a one-node model both ways (fast and reference kernels) and compares every output element.
void check_node(const std::string& what, const std::string& kernel, ir::Node node,
                const std::vector<std::pair<std::string, Tensor>>& inputs, std::vector<ir::NamedTensor> inits = {}) {
  SCOPED_TRACE(what);
  std::vector<ir::ValueInfo> ins;
  NamedTensors feeds;
  for (const auto& [name, t] : inputs) {
    std::vector<DimArg> d(t.dims().begin(), t.dims().end());
    ins.push_back(make_tensor_value_info(name, DType::kFloat32, d));
    feeds.emplace_back(name, t);
  }
  node.outputs = {"y"};
  auto model = make_model(
      make_graph({node}, "g", ins, {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, std::move(inits)));
  expect_fast_matches_reference(model, feeds, 1e-4f, false, kernel);
}

// B fed (oneDNN) or a constant (the packed SGEMM); the cases neither takes run the reference kernel.
TEST(FastKernels, MatMulAndGemmMatchReference) {
  std::mt19937 rng(11);
  auto r = [&](std::vector<int64_t> d) { return random_tensor(std::move(d), rng); };
  const std::string dnnl = with_avx2("matmul.dnnl"), sgemm = with_avx2("matmul.sgemm");
  check_node("2-D", dnnl, make_node("MatMul", {"a", "b"}, {}), {{"a", r({7, 13})}, {"b", r({13, 5})}});
  check_node("3-D A, 2-D B", dnnl, make_node("MatMul", {"a", "b"}, {}), {{"a", r({2, 9, 16})}, {"b", r({16, 11})}});
  check_node("3-D A, constant 2-D B", sgemm, make_node("MatMul", {"a", "b"}, {}), {{"a", r({2, 9, 16})}},
             {make_tensor("b", r({16, 11}))});
  check_node("batched", dnnl, make_node("MatMul", {"a", "b"}, {}), {{"a", r({2, 3, 5, 8})}, {"b", r({2, 3, 8, 4})}});
  check_node("batched, constant B", dnnl, make_node("MatMul", {"a", "b"}, {}), {{"a", r({2, 3, 5, 8})}},
             {make_tensor("b", r({2, 3, 8, 4}))});
  check_node("broadcast batch (reference path)", "ref", make_node("MatMul", {"a", "b"}, {}),
             {{"a", r({3, 5, 8})}, {"b", r({1, 8, 4})}});
  check_node("1-D B (reference path)", "ref", make_node("MatMul", {"a", "b"}, {}), {{"a", r({3, 8})}, {"b", r({8})}});
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      const std::vector<int64_t> ad = ta ? std::vector<int64_t>{12, 6} : std::vector<int64_t>{6, 12};
      const std::vector<int64_t> bd = tb ? std::vector<int64_t>{9, 12} : std::vector<int64_t>{12, 9};
      std::vector<ir::Attribute> attrs{make_attribute("transA", ta), make_attribute("transB", tb)};
      check_node("Gemm trans " + std::to_string(ta) + std::to_string(tb), with_avx2("gemm.dnnl"),
                 make_node("Gemm", {"a", "b", "c"}, {}, "", attrs), {{"a", r(ad)}, {"b", r(bd)}, {"c", r({9})}});
      check_node("Gemm constant B, trans " + std::to_string(ta) + std::to_string(tb),
                 with_avx2(ta ? "gemm.dnnl" : "gemm.sgemm"), make_node("Gemm", {"a", "b", "c"}, {}, "", attrs),
                 {{"a", r(ad)}}, {make_tensor("b", r(bd)), make_tensor("c", r({9}))});
      attrs.push_back(make_attribute("alpha", 0.5f));
      check_node("Gemm alpha, no C " + std::to_string(ta) + std::to_string(tb), with_avx2("gemm.dnnl"),
                 make_node("Gemm", {"a", "b"}, {}, "", attrs), {{"a", r(ad)}, {"b", r(bd)}});
      attrs.push_back(make_attribute("beta", 2.0f));
      check_node("Gemm alpha, beta, C [M, N] (reference path)", "ref",
                 make_node("Gemm", {"a", "b", "c"}, {}, "", attrs), {{"a", r(ad)}, {"b", r(bd)}, {"c", r({6, 9})}});
    }
  }
}

TEST(FastKernels, ResizeMatchesReference) {
  std::mt19937 rng(5);
  const char* modes[] = {"nearest", "linear", "cubic"};
  const char* coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"};
  const std::vector<std::vector<float>> scales = {{1, 1, 3, 3}, {1, 1, 0.5f, 0.75f}, {1, 1, 2.5f, 1.5f}, {1, 2, 2, 1}};
  for (const char* mode : modes) {
    for (const char* coord : coords) {
      for (const auto& sc : scales) {
        SCOPED_TRACE(std::string(mode) + " " + coord + " scales " + std::to_string(sc[2]) + "," +
                     std::to_string(sc[3]));
        std::vector<ir::Attribute> attrs{make_attribute("mode", mode),
                                         make_attribute("coordinate_transformation_mode", coord)};
        const Tensor x = random_tensor({1, 3, 7, 10}, rng);
        std::vector<ir::NamedTensor> inits{make_tensor<float>("roi", {0}, {}), make_tensor<float>("scales", {4}, sc)};
        auto node = make_node("Resize", {"x", "roi", "scales"}, {"y"}, "resize", attrs);
        auto model = make_model(
            make_graph({node}, "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 3, 7, 10})},
                       {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, inits));
        expect_fast_matches_reference(model, {{"x", x}}, 1e-5f, false, "resize.separable");
      }
    }
  }
}

ir::Model one_node(const std::string& op, std::vector<std::string> inputs, std::vector<ir::Attribute> attrs,
                   std::vector<ir::NamedTensor> inits, std::vector<int64_t> x_dims, const std::string& domain = "",
                   int64_t opset = 17) {
  std::vector<DimArg> xd;
  for (size_t i = 0; i < x_dims.size(); ++i) xd.emplace_back("d" + std::to_string(i));
  std::vector<ir::OpsetImport> opsets{{"", opset}};
  if (!domain.empty()) opsets.push_back({domain, 1});
  return make_model(make_graph({make_node(op, std::move(inputs), {"y"}, "n", std::move(attrs), domain)}, "g",
                               {make_tensor_value_info("x", DType::kFloat32, xd)},
                               {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, std::move(inits)),
                    opsets);
}

TEST(FastKernels, FusedConvActivationsAndResidualMatchReference) {
  std::mt19937 rng(11);
  const std::vector<std::pair<std::string, std::vector<float>>> acts = {
      {"", {}},     {"Relu", {}},      {"LeakyRelu", {0.1f}}, {"Clip", {0.0f, 6.0f}},        {"Sigmoid", {}},
      {"Tanh", {}}, {"HardSwish", {}}, {"Silu", {}},          {"HardSigmoid", {0.2f, 0.5f}}, {"Gelu", {}}};
  for (const auto& [act, params] : acts) {
    for (int z_kind = 0; z_kind < 3; ++z_kind) {  // no Z, Z of the output's shape, Z broadcast per channel
      SCOPED_TRACE(act + " z " + std::to_string(z_kind));
      std::vector<ir::Attribute> attrs{make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1}),
                                       make_attribute("strides", std::vector<int64_t>{2, 1})};
      if (!act.empty()) attrs.push_back(make_attribute("activation", act));
      if (!params.empty()) attrs.push_back(make_attribute("activation_params", params));
      std::vector<ir::NamedTensor> inits{make_tensor("w", random_tensor({6, 3, 3, 3}, rng)),
                                         make_tensor("b", random_tensor({6}, rng))};
      std::vector<std::string> inputs{"x", "w", "b"};
      if (z_kind == 1) inits.push_back(make_tensor("z", random_tensor({2, 6, 5, 9}, rng)));
      if (z_kind == 2) inits.push_back(make_tensor("z", random_tensor({6, 1, 1}, rng)));
      if (z_kind > 0) inputs.push_back("z");
      auto model = one_node("FusedConv", inputs, attrs, inits, {2, 3, 9, 9}, "ai.kiln");
      expect_fast_matches_reference(model, {{"x", random_tensor({2, 3, 9, 9}, rng)}}, 1e-4f, false,
                                    with_avx2(kAnyConv));
    }
  }
}

TEST(FastKernels, ConvPrimitiveCacheFollowsTheInputShape) {
  std::mt19937 rng(12);
  auto model = one_node("Conv", {"x", "w"}, {make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1})},
                        {make_tensor("w", random_tensor({4, 2, 3, 3}, rng))}, {1, 2, 8, 8});
  SessionOptions ref_opts;
  ref_opts.reference_kernels = true;
  auto ref = std::move(Session::create(model, ref_opts)).value();
  auto fast = std::move(Session::create(model)).value();
  // Alternating shapes reuse one primitive per shape; each result must match the reference.
  for (int round = 0; round < 2; ++round) {
    for (std::vector<int64_t> dims : {std::vector<int64_t>{1, 2, 8, 8}, {3, 2, 5, 7}, {1, 2, 1, 1}}) {
      Tensor x = random_tensor(dims, rng);
      auto r = ref->run({{"x", x}});
      auto f = fast->run({{"x", x}});
      ASSERT_TRUE(r.is_ok() && f.is_ok());
      ASSERT_EQ((*f)[0].dims(), (*r)[0].dims());
      for (int64_t i = 0; i < (*r)[0].num_elements(); ++i) {
        ASSERT_NEAR((*f)[0].data<float>()[i], (*r)[0].data<float>()[i], 1e-4f);
      }
    }
  }
}

TEST(FastKernels, FusedMatMulMatchesReference) {
  std::mt19937 rng(13);
  for (const std::string act : {"", "Relu", "Gelu", "Sigmoid"}) {
    for (bool bias : {false, true}) {
      SCOPED_TRACE(act + (bias ? " bias" : ""));
      std::vector<ir::Attribute> attrs;
      if (!act.empty()) attrs.push_back(make_attribute("activation", act));
      std::vector<ir::NamedTensor> inits{make_tensor("b", random_tensor({24, 10}, rng))};
      std::vector<std::string> inputs{"x", "b"};
      if (bias) {
        inits.push_back(make_tensor("c", random_tensor({10}, rng)));
        inputs.push_back("c");
      }
      auto model = one_node("FusedMatMul", inputs, attrs, inits, {2, 7, 24}, "ai.kiln");
      expect_fast_matches_reference(model, {{"x", random_tensor({2, 7, 24}, rng)}}, 1e-4f, false,
                                    with_avx2("fusedmatmul.sgemm"));
    }
  }
}

// The SGEMM's blocking: A packed (more than 4 weight panels) or read in place, several row groups (over 144
// rows), K over one 256 block and not a multiple of it, N not a multiple of 16, and M split into row blocks of
// 6 then of 3 to 5 (1 and 2 alone; 7 = 4 + 3, 8 = 4 + 4, 11 = 6 + 5, 128 = 20 x 6 + 4 + 4, 151 = 24 x 6 + 4 + 3).
// The weight panels on AVX-512, four to a micro-kernel call where there are four: 50 columns are one call of 4
// (the last panel 2 wide), 72 one of 4 and one of 1, 83 one of 4 and one of 2, 160 two of 4 and one of 2.
TEST(FastKernels, FusedMatMulBlockingMatchesReference) {
  std::mt19937 rng(16);
  for (int64_t n : {50, 72, 83, 160}) {
    for (int64_t m : {1, 2, 7, 8, 11, 128, 151}) {
      SCOPED_TRACE("M " + std::to_string(m) + " N " + std::to_string(n));
      // ReLU and GELU run on each task's block, in cache.
      auto model = one_node("FusedMatMul", {"x", "b", "c"},
                            {make_attribute("activation", std::string(n == 50 ? "Relu" : "Gelu"))},
                            {make_tensor("b", random_tensor({300, n}, rng)), make_tensor("c", random_tensor({n}, rng))},
                            {1, m, 300}, "ai.kiln");
      expect_fast_matches_reference(model, {{"x", random_tensor({1, m, 300}, rng)}}, 1e-4f, false,
                                    with_avx2("fusedmatmul.sgemm"));
    }
  }
}

TEST(FastKernels, AttentionMatchesReference) {
  std::mt19937 rng(22);
  struct Case {
    std::string name;
    std::vector<int64_t> q, k, v, q_perm, k_perm, v_perm, out_perm;
    float scale = 0.35f;
    float magnitude = 1.0f;  // inputs in [-magnitude, magnitude]
  };
  const std::vector<Case> cases = {
      {"torch, sequence first", {13, 3, 8}, {13, 3, 8}, {13, 3, 8}, {1, 0, 2}, {1, 2, 0}, {1, 0, 2}, {1, 0, 2}},
      {"no permutations, T != S, Dv != D", {2, 7, 5}, {2, 5, 19}, {2, 19, 6}, {}, {}, {}, {}},
      {"rank 4, batch first",
       {2, 9, 3, 4},
       {2, 9, 3, 4},
       {2, 9, 3, 4},
       {0, 2, 1, 3},
       {0, 2, 3, 1},
       {0, 2, 1, 3},
       {0, 2, 1, 3}},
      {"long rows (K over 256)", {1, 40, 300}, {1, 300, 33}, {1, 33, 20}, {}, {}, {}, {}},
      // Keys transposed on the fly in 8 x 8 blocks (two full panels of 16 keys, then 5; D = 20 is 2 blocks and
      // 4 more), Q and the output in place, and a negative scale over scores of a few hundred (the softmax must
      // shift by the scaled minimum, or exp overflows).
      {"torch layout, several key panels",
       {37, 2, 20},
       {37, 2, 20},
       {37, 2, 20},
       {1, 0, 2},
       {1, 2, 0},
       {1, 0, 2},
       {1, 0, 2},
       -0.6f,
       4.0f},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<ir::Attribute> attrs{make_attribute("scale", c.scale)};
    for (auto [name, perm] : {std::pair<const char*, std::vector<int64_t>>{"q_perm", c.q_perm},
                              {"k_perm", c.k_perm},
                              {"v_perm", c.v_perm},
                              {"out_perm", c.out_perm}}) {
      if (!perm.empty()) attrs.push_back(make_attribute(name, perm));
    }
    std::vector<DimArg> qd(c.q.begin(), c.q.end()), kd(c.k.begin(), c.k.end()), vd(c.v.begin(), c.v.end());
    auto model = make_model(
        make_graph({make_node("Attention", {"q", "k", "v"}, {"y"}, "att", attrs, "ai.kiln")}, "g",
                   {make_tensor_value_info("q", DType::kFloat32, qd), make_tensor_value_info("k", DType::kFloat32, kd),
                    make_tensor_value_info("v", DType::kFloat32, vd)},
                   {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, {}),
        {{"", 14}, {"ai.kiln", 1}});
    auto input = [&](const std::vector<int64_t>& dims) {
      Tensor t = random_tensor(dims, rng);
      for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] *= c.magnitude;
      return t;
    };
    expect_fast_matches_reference(model, {{"q", input(c.q)}, {"k", input(c.k)}, {"v", input(c.v)}}, 1e-4f, false,
                                  with_avx2("attention.sgemm"));
  }
  // Shapes that do not chain: the error names them.
  auto bad = make_model(make_graph({make_node("Attention", {"q", "k", "v"}, {"y"}, "att", {}, "ai.kiln")}, "g",
                                   {make_tensor_value_info("q", DType::kFloat32, std::vector<DimArg>{2, 3, 4}),
                                    make_tensor_value_info("k", DType::kFloat32, std::vector<DimArg>{2, 5, 3}),
                                    make_tensor_value_info("v", DType::kFloat32, std::vector<DimArg>{2, 3, 4})},
                                   {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, {}),
                        {{"", 14}, {"ai.kiln", 1}});
  auto session = Session::create(bad);
  ASSERT_TRUE(session.is_ok());
  auto out = (*session)->run({{"q", random_tensor({2, 3, 4}, rng)},
                              {"k", random_tensor({2, 5, 3}, rng)},
                              {"v", random_tensor({2, 3, 4}, rng)}});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("K [2,5,3]"), std::string::npos) << out.status().message();
}

TEST(FastKernels, SoftmaxLogSoftmaxAndLayerNormMatchReference) {
  std::mt19937 rng(14);
  for (const std::string op : {"Softmax", "LogSoftmax"}) {
    for (int64_t opset : {11, 13}) {
      for (int64_t axis : {-1, 0, 1, 2}) {
        SCOPED_TRACE(op + " opset " + std::to_string(opset) + " axis " + std::to_string(axis));
        auto model = one_node(op, {"x"}, {make_attribute("axis", axis)}, {}, {3, 5, 7}, "", opset);
        // Contiguous rows (legacy opsets, the last axis) on oneDNN where it may run, strided rows otherwise.
        const bool rows = opset < 13 || axis == -1 || axis == 2;
        const std::string kernel = rows && with_avx2("x") == "x" ? "softmax.dnnl" : "softmax.strided";
        expect_fast_matches_reference(model, {{"x", random_tensor({3, 5, 7}, rng)}}, 1e-5f, false, kernel);
      }
    }
  }
  for (int64_t axis : {-1, -2, 1}) {
    SCOPED_TRACE("LayerNormalization axis " + std::to_string(axis));
    const std::vector<int64_t> dims{2, 6, 33};
    std::vector<int64_t> norm(dims.begin() + (axis < 0 ? axis + 3 : axis), dims.end());
    auto model = one_node(
        "LayerNormalization", {"x", "s", "b"}, {make_attribute("axis", axis), make_attribute("epsilon", 1e-5f)},
        {make_tensor("s", random_tensor(norm, rng)), make_tensor("b", random_tensor(norm, rng))}, dims);
    expect_fast_matches_reference(model, {{"x", random_tensor(dims, rng)}}, 1e-4f, false, "layernorm.rows");
  }
  // ai.kiln LayerNormalization with a Skip input: of X's shape (added row by row) or broadcast (the Add kernel
  // first), with and without a bias.
  for (std::vector<int64_t> skip_dims : {std::vector<int64_t>{2, 6, 33}, {33}}) {
    for (bool bias : {true, false}) {
      SCOPED_TRACE("Skip " + dims_to_string(skip_dims) + (bias ? " bias" : ""));
      std::vector<ir::NamedTensor> inits{make_tensor("s", random_tensor({33}, rng)),
                                         make_tensor("k", random_tensor(skip_dims, rng))};
      if (bias) inits.push_back(make_tensor("b", random_tensor({33}, rng)));
      auto model = one_node("LayerNormalization", {"x", "s", bias ? "b" : "", "k"}, {make_attribute("epsilon", 1e-5f)},
                            inits, {2, 6, 33}, "ai.kiln");
      expect_fast_matches_reference(model, {{"x", random_tensor({2, 6, 33}, rng)}}, 1e-4f, false, "layernorm.rows");
    }
  }
}

TEST(FastKernels, PoolingMatchesReference) {
  std::mt19937 rng(15);
  struct PoolCase {
    std::string op;
    std::vector<int64_t> kernel, strides, pads, dilations;
    int64_t ceil, include_pad;
  };
  const std::vector<PoolCase> cases = {
      {"MaxPool", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 0},
      {"MaxPool", {2, 3}, {1, 2}, {0, 1, 1, 0}, {1, 1}, 1, 0},
      {"MaxPool", {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 0, 0},
      {"AveragePool", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 1},
      {"AveragePool", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 0},
      {"AveragePool", {2, 2}, {2, 2}, {0, 0, 1, 1}, {1, 1}, 1, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.op + " k" + std::to_string(c.kernel[0]) + " ceil " + std::to_string(c.ceil));
    std::vector<ir::Attribute> attrs{make_attribute("kernel_shape", c.kernel), make_attribute("strides", c.strides),
                                     make_attribute("pads", c.pads), make_attribute("ceil_mode", c.ceil)};
    if (c.op == "MaxPool") {
      attrs.push_back(make_attribute("dilations", c.dilations));
    } else {
      attrs.push_back(make_attribute("count_include_pad", c.include_pad));
    }
    auto model = one_node(c.op, {"x"}, attrs, {}, {2, 3, 11, 14});
    expect_fast_matches_reference(model, {{"x", random_tensor({2, 3, 11, 14}, rng)}}, 1e-6f, false, "pool.f32");
    // After a convolution the pooling runs on the channel-blocked layout (NchwcMaxPool, NchwcAveragePool): 12
    // channels, one full block and one partial.
    auto blocked =
        make_model(make_graph({make_node("Conv", {"x", "w"}, {"c"}), make_node(c.op, {"c"}, {"y"}, "pool", attrs)}, "g",
                              {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3, 11, 14})},
                              {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                              {make_tensor("w", random_tensor({12, 3, 1, 1}, rng))}),
                   {{"", 14}});
    // The blocked pooling has a plain form for CPUs (or caps) without AVX2.
    expect_fast_matches_reference(blocked, {{"x", random_tensor({2, 3, 11, 14}, rng)}}, 1e-5f, false,
                                  "nchwc_pool.blocked");
  }
}

// Global average pooling on the channel-blocked layout sums each block in vector registers (blocks of 8 with AVX2,
// 16 with AVX-512): 24 channels are three blocks of 8, or a full and a half-used block of 16.
TEST(FastKernels, BlockedGlobalAveragePoolMatchesReference) {
  std::mt19937 rng(19);
  auto model =
      make_model(make_graph({make_node("Conv", {"x", "w"}, {"c"}), make_node("GlobalAveragePool", {"c"}, {"y"}, "gap")},
                            "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 3, 9, 13})},
                            {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                            {make_tensor("w", random_tensor({24, 3, 1, 1}, rng))}),
                 {{"", 14}});
  const cpu::Isa isa = cpu::default_isa();
  const bool simd = cpu::preferred_nchwc_block() == 8 ? isa >= cpu::Isa::kAvx2 : isa >= cpu::Isa::kAvx512;
  expect_fast_matches_reference(model, {{"x", random_tensor({2, 3, 9, 13}, rng)}}, 1e-5f, false,
                                simd ? "nchwc_global_avgpool.simd" : with_avx2("nchwc_conv.dnnl"));
}

// Global average pooling of a plain tensor (no convolution before it, so no blocked layout: the float tail of an
// int8 network) sums each plane in vector registers, with tails of every length short of a vector, at rank 3 and 4.
TEST(FastKernels, PlainGlobalAveragePoolMatchesReference) {
  std::mt19937 rng(23);
  const std::vector<std::vector<int64_t>> shapes = {{1, 2048, 7, 7}, {2, 5, 3, 5}, {3, 4, 37}, {1, 3, 1, 1}};
  const std::string variant = std::string("global_avgpool.simd sum_row.") + cpu::isa_name(cpu::default_isa());
  for (const auto& dims : shapes) {
    SCOPED_TRACE(dims.size() == 3 ? "rank 3" : "rank 4, " + std::to_string(dims[1]) + " channels");
    auto model = one_node("GlobalAveragePool", {"x"}, {}, {}, dims);
    expect_fast_matches_reference(model, {{"x", random_tensor(dims, rng)}}, 1e-6f, false, with_avx2(variant));
  }
}

// Float32 Add, Sub, Mul, Div and Relu outside any fusion run binary.sse2 and relu.sse2: equal to the reference bit
// for bit, NaN, infinities, signed zeros and subnormals included, for same-shape operands (tails of every length
// short of a vector, and tensors split across threads), single-element ones and rows repeated over the leading dims
// (biases, on either side, rows split across chunks), on both the recording run and the planned run, where the Relu
// writes over the dying sum.
TEST(FastKernels, ElementwiseArithmeticAndReluEqualReferenceBitForBit) {
  std::mt19937 rng(29);
  auto with_specials = [&rng](const std::vector<int64_t>& dims) {
    Tensor t = random_tensor(dims, rng);
    const float specials[] = {std::nanf(""), -std::nanf(""), INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, -1e-40f};
    for (int64_t i = 0; i < t.num_elements(); i += 3) t.data<float>()[i] = specials[(i / 3) % 8];
    return t;
  };
  struct Shapes {
    std::vector<int64_t> a, b;
  };
  const std::vector<Shapes> shapes = {{{2, 3, 37}, {2, 3, 37}},
                                      {{1, 2048, 7, 7}, {1, 2048, 7, 7}},
                                      {{}, {5, 7}},
                                      {{3, 1, 11}, {1}},
                                      {{1, 1, 1}, {13}},
                                      {{7}, {7}},
                                      {{1, 128, 300}, {300}},
                                      {{1, 1, 37}, {5, 1, 37}},
                                      {{2, 3, 1, 7}, {1, 7}},
                                      {{4, 1, 2304}, {2304}}};
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    for (const Shapes& s : shapes) {
      SCOPED_TRACE(std::string(op) + " of " + dims_to_string(s.a) + " and " + dims_to_string(s.b));
      // op(a, b) -> Relu -> op(relu, b): the second op's first operand dies there.
      auto model = make_model(
          make_graph(
              {make_node(op, {"a", "b"}, {"s"}), make_node("Relu", {"s"}, {"r"}), make_node(op, {"r", "b"}, {"y"})},
              "g",
              {make_tensor_value_info("a", DType::kFloat32, std::vector<DimArg>(s.a.begin(), s.a.end())),
               make_tensor_value_info("b", DType::kFloat32, std::vector<DimArg>(s.b.begin(), s.b.end()))},
              {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}),
          {{"", 14}});
      const NamedTensors feeds = {{"a", with_specials(s.a)}, {"b", with_specials(s.b)}};
      SessionOptions ref_opts;
      ref_opts.reference_kernels = true;
      auto ref_session = std::move(Session::create(model, ref_opts)).value();
      auto ref = ref_session->run(feeds);
      ASSERT_TRUE(ref.is_ok()) << ref.status().message();
      SessionOptions fast_opts;
      fast_opts.tune = false;
      auto session = std::move(Session::create(model, fast_opts)).value();
      for (const char* run : {"recording run", "planned run"}) {
        SCOPED_TRACE(run);
        auto fast = session->run(feeds);
        ASSERT_TRUE(fast.is_ok()) << fast.status().message();
        ASSERT_EQ((*fast)[0].dims(), (*ref)[0].dims());
        ASSERT_EQ(0, std::memcmp((*fast)[0].raw_data(), (*ref)[0].raw_data(), (*ref)[0].nbytes()));
        expect_kernel(*session, with_avx2("binary.sse2"));
        expect_kernel(*session, with_avx2("relu.sse2"));
      }
    }
  }
}

// Gelu (ONNX opset 20 and ai.kiln's, the exact form) runs gelu.simd: vmath::gelu, within 1e-6 (absolute and
// relative) of the reference's double erf, over values to +-12 and sizes with tails; the tanh form stays on the
// reference kernel.
TEST(FastKernels, GeluMatchesReference) {
  std::mt19937 rng(31);
  for (const auto& [domain, opset] : {std::pair<std::string, int64_t>{"", 20}, {"ai.kiln", 1}}) {
    for (const std::vector<int64_t>& dims : {std::vector<int64_t>{1, 128, 3072}, {3, 37}}) {
      SCOPED_TRACE((domain.empty() ? "onnx" : domain) + " " + dims_to_string(dims));
      ir::Model model = make_model(
          make_graph({make_node("Gelu", {"x"}, {"y"}, "gelu", {}, domain)}, "g",
                     {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>(dims.begin(), dims.end()))},
                     {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}),
          domain.empty() ? std::vector<ir::OpsetImport>{{"", opset}}
                         : std::vector<ir::OpsetImport>{{"", 17}, {domain, opset}});
      Tensor x = random_tensor(dims, rng);
      for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] *= 12.0f;
      expect_fast_matches_reference(model, {{"x", x}}, 1e-6f, false, with_avx2("gelu.simd"));
    }
  }
  ir::Model tanh_form =
      make_model(make_graph({make_node("Gelu", {"x"}, {"y"}, "gelu", {make_attribute("approximate", "tanh")})}, "g",
                            {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{4, 9})},
                            {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}),
                 {{"", 20}});
  expect_fast_matches_reference(tanh_form, {{"x", random_tensor({4, 9}, rng)}}, 0.0f, false, "ref");
}

TEST(FastKernels, TransposeAndSliceMatchReference) {
  std::mt19937 rng(16);
  const std::vector<int64_t> dims{2, 3, 4, 5};
  for (std::vector<int64_t> perm : {std::vector<int64_t>{0, 2, 1, 3}, {3, 2, 1, 0}, {0, 1, 3, 2}, {1, 0, 2, 3}}) {
    SCOPED_TRACE("perm " + dims_to_string(perm));
    auto model = one_node("Transpose", {"x"}, {make_attribute("perm", perm)}, {}, dims);
    expect_fast_matches_reference(model, {{"x", random_tensor(dims, rng)}}, 0.0f, false, "transpose.strided");
  }
  // NCHW <-> NHWC (the int8 layout's boundaries): the innermost two merged dims swap, copied in 32x32 tiles; sizes
  // that are not multiples of the tile, for 1-, 2- (float16), 4- and 8-byte elements. Bytes go in 16x16 SSE2 blocks
  // (37 channels by 45 pixels: two blocks and an edge each way; 40 by 49: the last layers' shape), and a few rows
  // (an image's 3 channels) one output row at a time.
  struct Image {
    DType dt;
    std::vector<int64_t> dims;
  };
  std::vector<Image> images;
  for (DType dt : {DType::kUInt8, DType::kFloat16, DType::kFloat32, DType::kInt64})
    images.push_back({dt, {2, 37, 5, 9}});
  images.push_back({DType::kUInt8, {1, 40, 7, 7}});
  images.push_back({DType::kUInt8, {2, 3, 17, 19}});
  images.push_back({DType::kUInt8, {1, 2, 5, 7}});
  for (const Image& im : images) {
    const DType dt = im.dt;
    const std::vector<int64_t>& image = im.dims;
    for (std::vector<int64_t> perm : {std::vector<int64_t>{0, 2, 3, 1}, {0, 3, 1, 2}}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dims_to_string(image) + " perm " + dims_to_string(perm));
      auto model = make_model(
          make_graph(
              {make_node("Mul", {"x", "k"}, {"m"}),
               make_node("Cast", {"m"}, {"c"}, "", {make_attribute("to", static_cast<int64_t>(dt))}),
               make_node("Transpose", {"c"}, {"t"}, "n", {make_attribute("perm", perm)}),
               make_node("Cast", {"t"}, {"y"}, "", {make_attribute("to", static_cast<int64_t>(DType::kFloat32))})},
              "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>(image.begin(), image.end()))},
              {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
              {make_tensor<float>("k", {}, {dt == DType::kUInt8 ? 120.0f : 1000.0f})}),
          {{"", 17}});
      const Tensor x = random_tensor(image, rng);
      expect_fast_matches_reference(model, {{"x", x}}, 0.0f, false, "transpose.strided");
    }
  }
  // Moving only axes of size 1 gives a view of the input (the first two); the last one moves data.
  const std::vector<int64_t> ones{1, 3, 1, 5};
  for (std::vector<int64_t> perm : {std::vector<int64_t>{1, 0, 2, 3}, {2, 1, 3, 0}, {3, 1, 0, 2}}) {
    SCOPED_TRACE("size-1 axes, perm " + dims_to_string(perm));
    auto model = one_node("Transpose", {"x"}, {make_attribute("perm", perm)}, {}, ones);
    expect_fast_matches_reference(model, {{"x", random_tensor(ones, rng)}}, 0.0f, false,
                                  perm[0] == 3 ? "transpose.strided" : "transpose.view");
  }
  struct SliceCase {
    std::vector<int64_t> starts, ends, axes, steps;
  };
  for (const auto& c : std::vector<SliceCase>{{{0, 1}, {2, 3}, {1, 3}, {1, 1}},
                                              {{-1}, {-100}, {2}, {-2}},
                                              {{1, 0, 4}, {2, 3, 0}, {0, 1, 3}, {1, 2, -1}},
                                              {{0}, {100}, {-1}, {3}}}) {
    SCOPED_TRACE("starts " + dims_to_string(c.starts) + " steps " + dims_to_string(c.steps));
    auto i64 = [](const std::string& n, const std::vector<int64_t>& v) {
      return make_tensor<int64_t>(n, {static_cast<int64_t>(v.size())}, v);
    };
    auto model = one_node("Slice", {"x", "s", "e", "a", "t"}, {},
                          {i64("s", c.starts), i64("e", c.ends), i64("a", c.axes), i64("t", c.steps)}, dims);
    expect_fast_matches_reference(model, {{"x", random_tensor(dims, rng)}}, 0.0f, false, "slice.strided");
  }
}

// Plain-input first layer, average and max pooling, depthwise, a residual sum and a broadcast residual, global
// pooling, with c channels.
ir::Model blocked_chain(int64_t c, std::mt19937& rng) {
  auto pads = make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1});
  return make_model(
      make_graph(
          {make_node("Conv", {"x", "w1", "b1"}, {"c1"}, "", {pads}), make_node("Relu", {"c1"}, {"r1"}),
           make_node("AveragePool", {"r1"}, {"p"}, "",
                     {make_attribute("kernel_shape", std::vector<int64_t>{2, 2}),
                      make_attribute("strides", std::vector<int64_t>{2, 2})}),
           make_node("MaxPool", {"p"}, {"mp"}, "",
                     {make_attribute("kernel_shape", std::vector<int64_t>{3, 3}), pads,
                      make_attribute("strides", std::vector<int64_t>{2, 2})}),
           make_node("Conv", {"mp", "wd"}, {"d"}, "", {pads, make_attribute("group", c)}),
           make_node("Add", {"d", "mp"}, {"a"}), make_node("Sigmoid", {"a"}, {"s"}),
           make_node("Conv", {"s", "w3"}, {"c3"}), make_node("Add", {"c3", "bias3"}, {"a3"}),
           make_node("GlobalAveragePool", {"a3"}, {"y"})},
          "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{"n", 3, 14, 14})},
          {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
          {make_tensor("w1", random_tensor({c, 3, 3, 3}, rng)), make_tensor("b1", random_tensor({c}, rng)),
           make_tensor("wd", random_tensor({c, 1, 3, 3}, rng)), make_tensor("w3", random_tensor({c, c, 1, 1}, rng)),
           make_tensor("bias3", random_tensor({c, 1, 1}, rng))}),
      {{"", 14}});
}

TEST(FastKernels, BlockedLayoutChainsMatchReference) {
  std::mt19937 rng(17);
  // For channel counts on and off the block: the whole graph optimized (NCHWc at level all) against the
  // unoptimized graph on the reference kernels.
  for (int64_t c : {8, 12, 16}) {
    SCOPED_TRACE("channels " + std::to_string(c));
    expect_fast_matches_reference(blocked_chain(c, rng), {{"x", random_tensor({2, 3, 14, 14}, rng)}}, 1e-4f);
  }
}

// Concurrent runs share the cached oneDNN primitives; each thread has its own memory objects for them.
TEST(FastKernels, ConcurrentRunsOfBlockedConvolutionsAgree) {
  std::mt19937 rng(23);
  auto session = std::move(Session::create(blocked_chain(16, rng))).value();
  std::vector<NamedTensors> feeds;
  std::vector<Tensor> expected;
  for (int i = 0; i < 4; ++i) {
    feeds.push_back({{"x", random_tensor({1 + i % 2, 3, 14, 14}, rng)}});
    auto out = session->run(feeds.back());
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    expected.push_back((*out)[0]);
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 100; ++r) {
        const size_t i = static_cast<size_t>((t + r) % 4);
        auto out = session->run(feeds[i]);
        if (!out.is_ok() || !(*out)[0].equals(expected[i])) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// Finishes a graph whose node "c" is the blocked convolution under test (M output channels) and checks it
// against the reference kernels: with `residual`, Z = a 1x1 convolution of the input x made ahead of it (so that
// the sum is fused into the convolution under test; a Z made later could not be) added to c; then "Relu",
// "Clip" to [clip_lo, 0.5] or nothing ("").
void check_blocked_conv(std::vector<ir::Node> nodes, std::vector<ir::NamedTensor> inits, int64_t M, bool residual,
                        const std::string& act, float clip_lo, const std::vector<int64_t>& x_dims, std::mt19937& rng,
                        bool tol_of_largest = false, const std::string& kernel = "") {
  std::string out = "c";
  if (residual) {
    inits.push_back(make_tensor("wz", random_tensor({M, x_dims[1], 1, 1}, rng)));
    nodes.insert(nodes.begin(), make_node("Conv", {"x", "wz"}, {"z"}));
    nodes.push_back(make_node("Add", {"c", "z"}, {"s"}));
    out = "s";
  }
  if (act == "Relu") nodes.push_back(make_node("Relu", {out}, {"y"}));
  if (act == "Clip") {
    inits.push_back(make_tensor<float>("lo", {}, {clip_lo}));
    inits.push_back(make_tensor<float>("hi", {}, {0.5f}));
    nodes.push_back(make_node("Clip", {out, "lo", "hi"}, {"y"}));
  }
  if (act.empty()) nodes.push_back(make_node("Identity", {out}, {"y"}));
  std::vector<DimArg> dims(x_dims.begin(), x_dims.end());
  auto model = make_model(make_graph(nodes, "g", {make_tensor_value_info("x", DType::kFloat32, dims)},
                                     {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, inits),
                          {{"", 14}});
  expect_fast_matches_reference(model, {{"x", random_tensor(x_dims, rng)}}, 1e-4f, tol_of_largest, kernel);
}

// 3x3 stride-1 convolutions on the blocked layout run as Winograd F(4x4, 3x3) with at least 32 output tiles of
// 4x4, else F(2x2, 3x3) with at least 32 tiles of 2x2; stride-2 ones with an input of 2 MiB or more as the
// stride-2 form (F(2, 2) on the even inputs, one tap on the odd ones): a 1x1 convolution first, so that the
// input is blocked; odd sizes (partial tiles), valid and asymmetric padding, bias or none, ReLU, Clip or
// nothing, a residual Z (stride 1); runs of tiles taken by each thread (up to 1 MiB of transformed weights), and
// chunks shared by the threads, two or more of them in the last case of each. F(4x4) and the stride-2 form are
// held to 1e-4 of the largest output (their error grows with the sums' terms, not with each result: 1.2e-4 on
// outputs of 0.1 among outputs of 20 at 136 channels), F(2x2) to 1e-4 of each output.
TEST(FastKernels, WinogradConvolutionsMatchReference) {
  std::mt19937 rng(24);
  struct Case {
    std::string name;
    int64_t n, c, m, h, w;
    std::vector<int64_t> pads;
    bool bias;
    std::string act;  // "", "Relu" or "Clip"
    bool residual;
    bool f4;         // F(4x4, 3x3) (at least 32 output tiles of 4x4) or the stride-2 form
    int64_t stride;  // 2: the stride-2 form (an input of at least 2 MiB)
  };
  const std::vector<Case> cases = {
      {"F(2x2): pads 1, bias, ReLU", 2, 16, 24, 11, 13, {1, 1, 1, 1}, true, "Relu", false, false, 1},
      {"F(2x2): valid, no bias", 2, 8, 8, 11, 13, {0, 0, 0, 0}, false, "", false, false, 1},
      {"F(2x2): asymmetric pads, Clip", 1, 16, 16, 12, 15, {2, 0, 1, 2}, true, "Clip", false, false, 1},
      {"F(2x2): residual and ReLU", 2, 16, 16, 9, 10, {1, 1, 1, 1}, true, "Relu", true, false, 1},
      {"F(2x2): runs of tiles on each thread", 1, 128, 128, 20, 20, {1, 1, 1, 1}, true, "Relu", false, false, 1},
      {"F(2x2): chunks at 136 channels", 1, 136, 128, 20, 20, {1, 1, 1, 1}, true, "", false, false, 1},
      {"F(2x2): two shared chunks of tiles", 1, 264, 264, 20, 20, {1, 1, 1, 1}, true, "Relu", true, false, 1},
      {"F(4x4): pads 1, bias, ReLU, partial tiles", 2, 16, 24, 23, 21, {1, 1, 1, 1}, true, "Relu", false, true, 1},
      {"F(4x4): valid, no bias", 2, 8, 8, 27, 26, {0, 0, 0, 0}, false, "", false, true, 1},
      {"F(4x4): asymmetric pads, Clip", 1, 16, 16, 25, 30, {2, 0, 1, 2}, true, "Clip", false, true, 1},
      {"F(4x4): residual, ReLU, runs of tiles", 2, 64, 64, 18, 18, {1, 1, 1, 1}, true, "Relu", true, true, 1},
      {"F(4x4): chunks at 128 and 136 channels", 2, 128, 136, 20, 20, {1, 1, 1, 1}, true, "", false, true, 1},
      {"F(4x4): two shared chunks of tiles", 1, 200, 200, 32, 32, {1, 1, 1, 1}, true, "Relu", true, true, 1},
      {"stride 2: pads 1, bias, ReLU, partial tiles, runs of tiles on each thread",
       2,
       32,
       24,
       91,
       93,
       {1, 1, 1, 1},
       true,
       "Relu",
       false,
       true,
       2},
      {"stride 2: valid, no bias, Clip", 1, 64, 16, 92, 90, {0, 0, 0, 0}, false, "Clip", false, true, 2},
      {"stride 2: asymmetric pads", 2, 40, 32, 83, 80, {1, 0, 2, 1}, true, "", false, true, 2},
      {"stride 2: shared chunks of tiles", 1, 128, 128, 64, 64, {1, 1, 1, 1}, true, "Relu", false, true, 2},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<ir::Node> nodes{
        make_node("Conv", {"x", "w0"}, {"x0"}),
        make_node(
            "Conv", c.bias ? std::vector<std::string>{"x0", "w", "b"} : std::vector<std::string>{"x0", "w"}, {"c"},
            "wino",
            {make_attribute("pads", c.pads), make_attribute("strides", std::vector<int64_t>{c.stride, c.stride})})};
    std::vector<ir::NamedTensor> inits{make_tensor("w0", random_tensor({c.c, 3, 1, 1}, rng)),
                                       make_tensor("w", random_tensor({c.m, c.c, 3, 3}, rng)),
                                       make_tensor("b", random_tensor({c.m}, rng))};
    // Blocks of 8 with AVX2; blocks of 16 (the layout on AVX-512 CPUs) with AVX-512 where the channels fill them,
    // else oneDNN.
    const int64_t block = cpu::preferred_nchwc_block();
    const cpu::Isa isa = cpu::default_isa();
    const bool fits = block == 8 || (c.c % 16 == 0 && c.m % 16 == 0 && isa >= cpu::Isa::kAvx512);
    const std::string detail = std::string(c.stride == 2 ? "nchwc_conv.winograd_f2 winograd_f2x2_s2."
                                           : c.f4        ? "nchwc_conv.winograd_f4 winograd_f4x4."
                                                         : "nchwc_conv.winograd_f2 winograd_f2x2.") +
                               cpu::isa_name(isa);
    check_blocked_conv(std::move(nodes), std::move(inits), c.m, c.residual, c.act, 0.0f, {c.n, 3, c.h, c.w}, rng, c.f4,
                       with_avx2(fits ? detail : "nchwc_conv.dnnl"));
  }
}

// Blocked convolutions with few output pixels (at most 64) and many weights (2 MiB and up) run as one GEMM over
// their im2col (sgemm::conv2d_blocked8): 3x3 and 1x1, strides, dilation, asymmetric padding, channels off the
// block of 8 (padding lanes in the input), a half-used last weight panel (M = 520), two images in one product
// (2 x 5 x 5 pixels: row blocks of 6, 4 and 4), one and two pixels (a single row block of 1 or 2), bias or
// none, ReLU, Clip or nothing, and a residual Z.
TEST(FastKernels, ConvolutionsAsOneGemmMatchReference) {
  std::mt19937 rng(25);
  struct Case {
    std::string name;
    int64_t n, c, m, h, kernel, stride, dilation;
    std::vector<int64_t> pads;
    bool bias;
    std::string act;  // "", "Relu" or "Clip"
    bool residual;
  };
  const std::vector<Case> cases = {
      {"3x3, pads 1, ReLU", 1, 256, 256, 7, 3, 1, 1, {1, 1, 1, 1}, true, "Relu", false},
      {"3x3 stride 2, 260 channels", 1, 260, 256, 14, 3, 2, 1, {1, 1, 1, 1}, true, "Relu", false},
      {"1x1 stride 2, no bias", 1, 1024, 512, 13, 1, 2, 1, {0, 0, 0, 0}, false, "", false},
      {"1x1, half a weight panel, residual and ReLU", 1, 1024, 520, 7, 1, 1, 1, {0, 0, 0, 0}, true, "Relu", true},
      {"dilation 2, asymmetric pads, Clip", 1, 256, 256, 7, 3, 1, 2, {2, 1, 1, 2}, true, "Clip", false},
      {"two images, residual", 2, 256, 256, 5, 3, 1, 1, {1, 1, 1, 1}, true, "", true},
      {"one pixel", 1, 1024, 512, 1, 1, 1, 1, {0, 0, 0, 0}, true, "Relu", false},
      {"two images of one pixel", 2, 1024, 512, 1, 1, 1, 1, {0, 0, 0, 0}, false, "", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto dims = std::vector<int64_t>{c.kernel, c.kernel};
    std::vector<ir::Node> nodes{
        make_node("Conv", {"x", "w0"}, {"x0"}),
        make_node("Conv", c.bias ? std::vector<std::string>{"x0", "w", "b"} : std::vector<std::string>{"x0", "w"},
                  {"c"}, "gemm",
                  {make_attribute("pads", c.pads), make_attribute("kernel_shape", dims),
                   make_attribute("strides", std::vector<int64_t>{c.stride, c.stride}),
                   make_attribute("dilations", std::vector<int64_t>{c.dilation, c.dilation})})};
    std::vector<ir::NamedTensor> inits{make_tensor("w0", random_tensor({c.c, 3, 1, 1}, rng)),
                                       make_tensor("w", random_tensor({c.m, c.c, c.kernel, c.kernel}, rng)),
                                       make_tensor("b", random_tensor({c.m}, rng))};
    check_blocked_conv(std::move(nodes), std::move(inits), c.m, c.residual, c.act, -0.5f, {c.n, 3, c.h, c.h}, rng,
                       false, blocked("nchwc_conv.gemm"));
  }
}

// Explicit ai.kiln graphs (ReorderInput, NchwcConv, ReorderOutput) with blocks of 8 and, where the CPU has AVX-512,
// of 16, whichever block the layout pass would pick here: each NchwcConv kernel, the others disabled so that the
// one under test runs, against the reference. Winograd's and the GEMM's products run on the session's ISA.
TEST(FastKernels, BlockedKernelsOfEachBlockRunAndMatchReference) {
  std::mt19937 rng(26);
  struct Case {
    std::string name, kernel, detail;
    int64_t c, m, h, k;
    bool of_largest;
  };
  const std::vector<Case> cases = {
      {"Winograd F(4x4)", "nchwc_conv.winograd_f4", "winograd_f4x4", 16, 32, 24, 3, true},
      {"Winograd F(2x2)", "nchwc_conv.winograd_f2", "winograd_f2x2", 16, 16, 12, 3, false},
      {"conv as one GEMM", "nchwc_conv.gemm", "conv_gemm_blocked", 256, 256, 7, 3, false},
      {"oneDNN (5x5)", "nchwc_conv.dnnl", "", 16, 16, 9, 5, false},
  };
  const std::vector<std::string> all = {"nchwc_conv.im2col", "nchwc_conv.winograd_f4", "nchwc_conv.winograd_f2",
                                        "nchwc_conv.gemm",   "nchwc_conv.pointwise",   "nchwc_conv.direct",
                                        "nchwc_conv.dnnl"};
  const cpu::Isa isa = cpu::default_isa();
  for (int64_t block : {8, 16}) {
    if (block == 16 && isa < cpu::Isa::kAvx512) continue;  // blocks of 16 have vector kernels with AVX-512 only
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name + ", blocks of " + std::to_string(block));
      const int64_t pad = c.k / 2;
      std::vector<ir::Node> nodes{
          make_node("ReorderInput", {"x"}, {"xb"}, "reorder_in", {make_attribute("block", block)}, "ai.kiln"),
          make_node("NchwcConv", {"xb", "w", "b"}, {"yb"}, "conv",
                    {make_attribute("block", block), make_attribute("activation", std::string("Relu")),
                     make_attribute("pads", std::vector<int64_t>{pad, pad, pad, pad})},
                    "ai.kiln"),
          make_node("ReorderOutput", {"yb"}, {"y"}, "reorder_out",
                    {make_attribute("block", block), make_attribute("channels", c.m)}, "ai.kiln")};
      auto model = make_model(
          make_graph(nodes, "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, c.c, c.h, c.h})},
                     {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                     {make_tensor("w", random_tensor({c.m, c.c, c.k, c.k}, rng)),
                      make_tensor("b", random_tensor({c.m}, rng))}),
          {{"", 17}, {"ai.kiln", 1}});
      std::vector<std::string> others;
      for (const auto& k : all) {
        if (k != c.kernel) others.push_back(k);
      }
      std::string expected = c.kernel;
      if (c.kernel == "nchwc_conv.gemm") expected += " " + c.detail + std::to_string(block) + "." + cpu::isa_name(isa);
      if (c.kernel != "nchwc_conv.gemm" && !c.detail.empty()) expected += " " + c.detail + "." + cpu::isa_name(isa);
      expect_fast_matches_reference(model, {{"x", random_tensor({1, c.c, c.h, c.h}, rng)}}, 1e-4f, c.of_largest,
                                    with_avx2(expected), others);
    }
  }
}

// Every NchwcConv kernel but `kernel`: disabled, they leave the node to it.
std::vector<std::string> nchwc_kernels_except(const std::string& kernel) {
  std::vector<std::string> out;
  for (const char* k : {"nchwc_conv.im2col", "nchwc_conv.winograd_f4", "nchwc_conv.winograd_f2", "nchwc_conv.gemm",
                        "nchwc_conv.pointwise", "nchwc_conv.direct", "nchwc_conv.dnnl"}) {
    if (k != kernel) out.push_back(k);
  }
  return out;
}

// One NchwcConv with blocks of `block` between ReorderInput and ReorderOutput (or on the plain input x when `plain`):
// W of `w_dims`, a bias when `bias`, `act` ("", "Relu" or "Clip" to [-0.5, 0.5]) and `attrs` besides, and when
// `residual` a Z from a 1x1 NchwcConv of the same input at `z_strides` (Z dies at the convolution, which may then take
// its bytes).
ir::Model blocked_conv_model(int64_t block, const std::vector<int64_t>& x_dims, const std::vector<int64_t>& w_dims,
                             std::vector<ir::Attribute> attrs, bool plain, bool bias, const std::string& act,
                             bool residual, const std::vector<int64_t>& z_strides, std::mt19937& rng) {
  attrs.push_back(make_attribute("block", block));
  if (act == "Relu") attrs.push_back(make_attribute("activation", std::string("Relu")));
  if (act == "Clip") {
    attrs.push_back(make_attribute("activation", std::string("Clip")));
    attrs.push_back(make_attribute("activation_params", std::vector<float>{-0.5f, 0.5f}));
  }
  const std::string in = plain ? "x" : "xb";
  std::vector<std::string> conv_inputs{in, "w", bias ? "b" : ""};
  std::vector<ir::Node> nodes;
  if (!plain) {
    nodes.push_back(
        make_node("ReorderInput", {"x"}, {"xb"}, "reorder_in", {make_attribute("block", block)}, "ai.kiln"));
  }
  if (residual) {
    nodes.push_back(make_node("NchwcConv", {in, "wz"}, {"zb"}, "conv_z",
                              {make_attribute("block", block), make_attribute("strides", z_strides)}, "ai.kiln"));
    conv_inputs.push_back("zb");
  }
  while (conv_inputs.back().empty()) conv_inputs.pop_back();
  const int64_t m = w_dims[0], c = w_dims[1];
  nodes.push_back(make_node("NchwcConv", conv_inputs, {"yb"}, "conv", attrs, "ai.kiln"));
  nodes.push_back(make_node("ReorderOutput", {"yb"}, {"y"}, "reorder_out",
                            {make_attribute("block", block), make_attribute("channels", m)}, "ai.kiln"));
  return make_model(
      make_graph(nodes, "g",
                 {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>(x_dims.begin(), x_dims.end()))},
                 {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                 {make_tensor("w", random_tensor(w_dims, rng)), make_tensor("wz", random_tensor({m, c, 1, 1}, rng)),
                  make_tensor("b", random_tensor({m}, rng))}),
      {{"", 17}, {"ai.kiln", 1}});
}

// 1x1 stride-1 convolutions straight on the blocked layout (nchwc_conv.pointwise, never the first guess: the
// others disabled), with blocks of 8 (AVX2 variant) and, where the CPU has AVX-512, of 16: channels off the block
// (padding lanes in the input and the output), output blocks that split into groups of 4, 3, 2 and a remainder,
// uneven tiles (49 and 15 pixels), more than one pass over the input channels (960), one and two images, bias or
// none, ReLU, Clip or nothing, and a residual Z that dies at the convolution (from the second run, the output
// takes Z's bytes and the kernel adds Z in place).
TEST(FastKernels, PointwiseConvolutionsMatchReference) {
  std::mt19937 rng(27);
  struct Case {
    std::string name;
    int64_t n, c, m, h, w;
    bool bias;
    std::string act;  // "", "Relu" or "Clip"
    bool residual;
  };
  const std::vector<Case> cases = {
      {"channels off the block, ReLU", 1, 20, 24, 7, 7, true, "Relu", false},
      {"many input channels, residual", 1, 960, 320, 7, 7, true, "", true},
      {"two images, Clip, 15 pixels", 2, 96, 112, 3, 5, false, "Clip", false},
      {"groups of 3, residual and ReLU", 1, 64, 96, 14, 14, true, "Relu", true},
      {"one pixel, seven blocks", 1, 48, 112, 1, 1, true, "", false},
  };
  const std::vector<std::string> others = nchwc_kernels_except("nchwc_conv.pointwise");
  const cpu::Isa isa = cpu::default_isa();
  for (int64_t block : {8, 16}) {
    if (block == 16 && isa < cpu::Isa::kAvx512) continue;
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name + ", blocks of " + std::to_string(block));
      const std::vector<int64_t> x_dims{c.n, c.c, c.h, c.w};
      auto model =
          blocked_conv_model(block, x_dims, {c.m, c.c, 1, 1}, {}, false, c.bias, c.act, c.residual, {1, 1}, rng);
      const std::string expected = "nchwc_conv.pointwise pointwise" + std::to_string(block) + "." + cpu::isa_name(isa);
      expect_fast_matches_reference(model, {{"x", random_tensor(x_dims, rng)}}, 1e-4f, false, with_avx2(expected),
                                    others);
    }
  }
}

// Direct convolutions on the blocked layout (nchwc_conv.direct, never the first guess: the others disabled), with
// blocks of 8 (AVX2 variant) and, where the CPU has AVX-512, of 16: 3x3 at strides 1 and 2, a first layer's 7x7 at
// stride 2 from a plain 3-channel input, tiles of up to 12 pixels (one or two output blocks), a strided 1x1, an
// asymmetric 5x3 kernel with unequal strides and pads, 11x11 at stride 4, 1x7,
// padding wider than the input (outputs with no tap inside it), channels off the block, output blocks that split
// into groups, more than one pass over the input channels, two images, bias or none, ReLU, Clip or nothing, and a
// residual Z that dies at the convolution.
TEST(FastKernels, DirectConvolutionsMatchReference) {
  std::mt19937 rng(28);
  struct Case {
    std::string name;
    int64_t n, c, m, h, w;
    std::vector<int64_t> kernel, strides, pads;
    bool plain, bias;
    std::string act;  // "", "Relu" or "Clip"
    bool residual;
  };
  const std::vector<Case> cases = {
      {"3x3, channels off the block, ReLU", 1, 20, 24, 9, 11, {3, 3}, {1, 1}, {1, 1, 1, 1}, false, true, "Relu", false},
      {"3x3 stride 2, residual", 1, 64, 96, 15, 14, {3, 3}, {2, 2}, {1, 1, 1, 1}, false, true, "", true},
      {"first layer 7x7 stride 2", 1, 3, 64, 23, 20, {7, 7}, {2, 2}, {3, 3, 3, 3}, true, true, "Relu", false},
      {"first layer 3x3, tiles of 12", 1, 3, 32, 31, 29, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, true, "Clip", false},
      {"one output block, tiles of 12", 1, 24, 8, 5, 30, {3, 3}, {1, 1}, {1, 1, 1, 1}, false, true, "", false},
      {"1x1 stride 2, two images, Clip", 2, 48, 40, 14, 13, {1, 1}, {2, 2}, {0, 0, 0, 0}, false, false, "Clip", false},
      {"5x3, strides 2 and 1, uneven pads", 1, 16, 48, 10, 9, {5, 3}, {2, 1}, {2, 0, 1, 2}, false, true, "", false},
      {"pads wider than the input", 1, 8, 16, 2, 3, {3, 3}, {1, 1}, {3, 2, 3, 2}, false, true, "Relu", false},
      {"many input channels", 1, 320, 64, 7, 7, {3, 3}, {1, 1}, {1, 1, 1, 1}, false, true, "Relu", false},
      {"11x11 stride 4 from a plain input",
       1,
       3,
       48,
       35,
       37,
       {11, 11},
       {4, 4},
       {2, 2, 2, 2},
       true,
       true,
       "Relu",
       false},
      {"1x7, no padding rows", 1, 40, 32, 6, 17, {1, 7}, {1, 1}, {0, 3, 0, 3}, false, false, "", false},
  };
  const std::vector<std::string> others = nchwc_kernels_except("nchwc_conv.direct");
  const cpu::Isa isa = cpu::default_isa();
  for (int64_t block : {8, 16}) {
    if (block == 16 && isa < cpu::Isa::kAvx512) continue;
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name + ", blocks of " + std::to_string(block));
      const std::vector<int64_t> x_dims{c.n, c.c, c.h, c.w};
      auto model = blocked_conv_model(block, x_dims, {c.m, c.c, c.kernel[0], c.kernel[1]},
                                      {make_attribute("kernel_shape", c.kernel), make_attribute("strides", c.strides),
                                       make_attribute("pads", c.pads)},
                                      c.plain, c.bias, c.act, c.residual, c.strides, rng);
      const std::string expected = "nchwc_conv.direct direct" + std::to_string(block) + "." + cpu::isa_name(isa);
      expect_fast_matches_reference(model, {{"x", random_tensor(x_dims, rng)}}, 1e-4f, false, with_avx2(expected),
                                    others);
    }
  }
}

// A residual sum whose Z dies at the convolution (a downsample branch): from the second run on, the memory
// plan gives the output Z's bytes, and oneDNN's sum post-op accumulates in place. Plain and blocked (level all).
TEST(FastKernels, ResidualSumInPlaceMatchesReference) {
  std::mt19937 rng(21);
  auto pads = make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1});
  auto model =
      make_model(make_graph({make_node("Conv", {"x", "w1"}, {"c1"}, "", {pads}), make_node("Relu", {"c1"}, {"r1"}),
                             make_node("Conv", {"r1", "wz"}, {"z"}), make_node("Sigmoid", {"z"}, {"zs"}),
                             make_node("Conv", {"r1", "w2"}, {"c2"}, "", {pads}), make_node("Add", {"c2", "zs"}, {"a"}),
                             make_node("Relu", {"a"}, {"y"})},
                            "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 3, 9, 9})},
                            {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                            {make_tensor("w1", random_tensor({16, 3, 3, 3}, rng)),
                             make_tensor("wz", random_tensor({16, 16, 1, 1}, rng)),
                             make_tensor("w2", random_tensor({16, 16, 3, 3}, rng))}),
                 {{"", 14}});
  expect_fast_matches_reference(model, {{"x", random_tensor({1, 3, 9, 9}, rng)}}, 1e-4f, false,
                                with_avx2("nchwc_conv.dnnl"));
}

TEST(FastKernels, ConvTransposeMatchesReference) {
  std::mt19937 rng(18);
  struct Case {
    std::string name;
    std::vector<int64_t> x_dims;
    int64_t out_per_group, group;
    std::vector<ir::Attribute> attrs;
  };
  auto ints = [](const char* n, std::vector<int64_t> v) { return make_attribute(n, v); };
  const std::vector<Case> cases = {
      {"stride 2", {1, 4, 5, 6}, 3, 1, {ints("strides", {2, 2})}},
      {"pads, output_padding",
       {2, 3, 7, 5},
       5,
       1,
       {ints("strides", {2, 3}), ints("pads", {1, 0, 1, 2}), ints("output_padding", {1, 2})}},
      {"groups 2, dilation", {1, 4, 6, 6}, 2, 2, {ints("dilations", {2, 1}), ints("pads", {1, 1, 1, 1})}},
      {"output_shape", {1, 2, 4, 4}, 3, 1, {ints("strides", {2, 2}), ints("output_shape", {9, 8})}},
      {"1-D", {2, 3, 9}, 4, 1, {ints("strides", {3}), ints("pads", {1, 2})}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<int64_t> w_dims{c.x_dims[1], c.out_per_group};
    for (size_t i = 2; i < c.x_dims.size(); ++i) w_dims.push_back(3);
    std::vector<ir::Attribute> attrs = c.attrs;
    attrs.push_back(make_attribute("group", c.group));
    std::vector<DimArg> xd(c.x_dims.begin(), c.x_dims.end());
    auto model = make_model(make_graph({make_node("ConvTranspose", {"x", "w", "b"}, {"y"}, "ct", attrs)}, "g",
                                       {make_tensor_value_info("x", DType::kFloat32, xd)},
                                       {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                                       {make_tensor("w", random_tensor(w_dims, rng)),
                                        make_tensor("b", random_tensor({c.out_per_group * c.group}, rng))}),
                            {{"", 17}});
    expect_fast_matches_reference(model, {{"x", random_tensor(c.x_dims, rng)}}, 1e-4f, false,
                                  with_avx2("convtranspose.dnnl"));
  }
}

TEST(FastKernels, BatchNormalizationMatchesReference) {
  std::mt19937 rng(19);
  for (std::vector<int64_t> dims : {std::vector<int64_t>{2, 5, 7, 3}, {3, 4}, {1, 6, 11}}) {
    SCOPED_TRACE(dims_to_string(dims));
    const int64_t C = dims[1];
    auto model = one_node("BatchNormalization", {"x", "s", "b", "m", "v"}, {make_attribute("epsilon", 1e-3f)},
                          {make_tensor("s", random_tensor({C}, rng)), make_tensor("b", random_tensor({C}, rng)),
                           make_tensor("m", random_tensor({C}, rng)),
                           make_tensor<float>("v", {C}, std::vector<float>(static_cast<size_t>(C), 0.7f))},
                          dims, "", 15);
    expect_fast_matches_reference(model, {{"x", random_tensor(dims, rng)}}, 1e-5f, false, "batchnorm.f32");
  }
}

}  // namespace
}  // namespace kiln
