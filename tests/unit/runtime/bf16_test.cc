// SessionOptions::precision = "bf16": the bfloat16 kernels (conv.dnnl_bf16, fusedconv.dnnl_bf16, nhwc_conv.dnnl
// after layout_nhwc_bf16, matmul/gemm/fusedmatmul.dnnl_bf16 and .gemv_bf16) against the reference kernels, and what
// a session says about its precision. On a CPU without bfloat16 instructions the same sessions must run the float32
// kernels.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../test_util.h"
#include "kernels/isa.h"
#include "kiln/core/dtype.h"
#include "kiln/ir/builder.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"
#include "reference.h"
#include "runtime/session_impl.h"

namespace kiln {
namespace {

using namespace ir::helper;

using testing::random_tensor;

bool bf16_here() { return cpu::default_isa() == cpu::Isa::kAvx512 && cpu::has_bf16(); }

// bfloat16 keeps 8 significant bits (a relative rounding error up to 2^-9 per operand): a sum of products is
// within about 1e-2 of its largest output (the errors of random-signed terms grow as sqrt(K), as the sum does).
constexpr float kBf16Tol = 1e-2f;

ir::Model one_node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<ir::Attribute>& attrs, std::vector<ir::NamedTensor> inits,
                   const std::vector<std::pair<std::string, std::vector<int64_t>>>& feeds,
                   const std::string& domain = "") {
  std::vector<ir::ValueInfo> ins;
  for (const auto& [name, dims] : feeds) {
    ins.push_back(make_tensor_value_info(name, DType::kFloat32, std::vector<DimArg>(dims.begin(), dims.end())));
  }
  std::vector<ir::OpsetImport> opsets{{"", 17}};
  if (!domain.empty()) opsets.push_back({domain, 1});
  return make_model(make_graph({make_node(op, inputs, {"y"}, "node", attrs, domain)}, "g", ins,
                               {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, std::move(inits)),
                    opsets);
}

// Runs `model` on the reference kernels and in a bf16 session (first guess, then the planned run); output 0 must
// be within kBf16Tol of the reference's largest magnitude, and the bf16 session must have run `kernel` with a
// bfloat16 implementation (one of several, separated by '|'; on a CPU without bfloat16: none of them, the float32
// kernels instead).
void expect_bf16_matches_reference(const ir::Model& model, const NamedTensors& feeds, const std::string& kernel) {
  auto ref = testing::reference_outputs(model, feeds);
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  SessionOptions opts;
  opts.tune = false;  // the first guess: the bf16 kernel where it supports the node
  opts.precision = "bf16";
  auto session = std::move(Session::create(model, opts)).value();
  EXPECT_EQ(session->precision(), bf16_here() ? "bf16" : "fp32");
  for (const char* run : {"recording run", "planned run"}) {
    SCOPED_TRACE(run);
    auto got = session->run(feeds);
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    const Tensor& r = (*ref)[0];
    const Tensor& f = (*got)[0];
    ASSERT_EQ(f.dims(), r.dims());
    float largest = 0.0f;
    for (int64_t i = 0; i < r.num_elements(); ++i) largest = std::max(largest, std::abs(r.data<float>()[i]));
    for (int64_t i = 0; i < r.num_elements(); ++i) {
      ASSERT_LE(std::abs(f.data<float>()[i] - r.data<float>()[i]), kBf16Tol * largest) << "element " << i;
    }
  }
  std::string ran;
  bool found = false;
  for (const KernelChoice& c : session->kernel_choices()) {
    ran += " " + c.op + ":" + c.kernel + "(" + c.detail + ")";
    const bool named = ("|" + kernel + "|").find("|" + c.kernel + "|") != std::string::npos;
    found = found || (named && c.detail.find("bf16") != std::string::npos);
  }
  EXPECT_EQ(found, bf16_here()) << "expected " << kernel << " on bf16 kernels; ran" << ran;
}

TEST(Bf16, ConvolutionsMatchReference) {
  std::mt19937 rng(3);
  struct Case {
    std::string name;
    std::vector<int64_t> x, w;
    int64_t group;
    std::vector<int64_t> strides, pads;
  };
  const std::vector<Case> cases = {
      {"3x3", {1, 32, 14, 14}, {48, 32, 3, 3}, 1, {1, 1}, {1, 1, 1, 1}},
      {"1x1", {2, 64, 7, 9}, {32, 64, 1, 1}, 1, {1, 1}, {0, 0, 0, 0}},
      {"first layer 7x7 stride 2", {1, 3, 33, 35}, {16, 3, 7, 7}, 1, {2, 2}, {3, 3, 3, 3}},
      {"odd channels", {1, 5, 9, 9}, {7, 5, 3, 3}, 1, {1, 1}, {1, 0, 1, 0}},
      {"grouped", {1, 16, 10, 10}, {16, 4, 3, 3}, 4, {1, 1}, {1, 1, 1, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<ir::Attribute> attrs{make_attribute("group", c.group), make_attribute("strides", c.strides),
                                     make_attribute("pads", c.pads)};
    auto model = one_node("Conv", {"x", "w", "b"}, attrs,
                          {make_tensor("w", random_tensor(c.w, rng)), make_tensor("b", random_tensor({c.w[0]}, rng))},
                          {{"x", c.x}});
    // Optimized, a 2-D Conv becomes a channels-last bfloat16 NhwcConv (layout_nhwc_bf16).
    expect_bf16_matches_reference(model, {{"x", random_tensor(c.x, rng)}}, "nhwc_conv.dnnl");
  }
}

TEST(Bf16, UnblockedAndFusedConvolutionsMatchReference) {
  std::mt19937 rng(5);
  // A 1-D convolution keeps its plain layout (conv.dnnl_bf16).
  auto conv1d = one_node("Conv", {"x", "w"}, {make_attribute("pads", std::vector<int64_t>{1, 1})},
                         {make_tensor("w", random_tensor({8, 6, 3}, rng))}, {{"x", {2, 6, 17}}});
  expect_bf16_matches_reference(conv1d, {{"x", random_tensor({2, 6, 17}, rng)}}, "conv.dnnl_bf16");
  // FusedConv with a residual of the output's shape and an activation (oneDNN's sum and eltwise post-ops).
  for (const std::string act : {"Relu", "Sigmoid"}) {
    SCOPED_TRACE(act);
    auto fused = one_node("FusedConv", {"x", "w", "b", "z"},
                          {make_attribute("pads", std::vector<int64_t>{1, 1}), make_attribute("activation", act)},
                          {make_tensor("w", random_tensor({8, 6, 3}, rng)), make_tensor("b", random_tensor({8}, rng))},
                          {{"x", {2, 6, 17}}, {"z", {2, 8, 17}}}, "ai.kiln");
    expect_bf16_matches_reference(fused, {{"x", random_tensor({2, 6, 17}, rng)}, {"z", random_tensor({2, 8, 17}, rng)}},
                                  "fusedconv.dnnl_bf16");
  }
}

TEST(Bf16, MatrixProductsMatchReference) {
  std::mt19937 rng(7);
  auto r = [&](std::vector<int64_t> d) { return random_tensor(std::move(d), rng); };
  // A constant B (packed to bfloat16 once) and a fed one (converted on each call); batched products.
  expect_bf16_matches_reference(
      one_node("MatMul", {"a", "b"}, {}, {make_tensor("b", r({96, 40}))}, {{"a", {3, 7, 96}}}), {{"a", r({3, 7, 96})}},
      "matmul.dnnl_bf16");
  expect_bf16_matches_reference(one_node("MatMul", {"a", "b"}, {}, {}, {{"a", {9, 33}}, {"b", {33, 20}}}),
                                {{"a", r({9, 33})}, {"b", r({33, 20})}}, "matmul.dnnl_bf16");
  expect_bf16_matches_reference(one_node("MatMul", {"a", "b"}, {}, {}, {{"a", {2, 3, 5, 16}}, {"b", {2, 3, 16, 4}}}),
                                {{"a", r({2, 3, 5, 16})}, {"b", r({2, 3, 16, 4})}}, "matmul.dnnl_bf16");
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE("Gemm trans " + std::to_string(ta) + std::to_string(tb));
      const std::vector<int64_t> ad = ta ? std::vector<int64_t>{40, 6} : std::vector<int64_t>{6, 40};
      const std::vector<int64_t> bd = tb ? std::vector<int64_t>{9, 40} : std::vector<int64_t>{40, 9};
      auto gemm = one_node("Gemm", {"a", "b", "c"}, {make_attribute("transA", ta), make_attribute("transB", tb)},
                           {make_tensor("b", r(bd)), make_tensor("c", r({9}))}, {{"a", ad}});
      expect_bf16_matches_reference(gemm, {{"a", r(ad)}}, "gemm.dnnl_bf16");
      auto scaled =
          one_node("Gemm", {"a", "b"},
                   {make_attribute("transA", ta), make_attribute("transB", tb), make_attribute("alpha", 0.5f)}, {},
                   {{"a", ad}, {"b", bd}});
      expect_bf16_matches_reference(scaled, {{"a", r(ad)}, {"b", r(bd)}}, "gemm.dnnl_bf16");
    }
  }
  auto fused = one_node("FusedMatMul", {"a", "b", "bias"}, {make_attribute("activation", "Gelu")},
                        {make_tensor("b", r({64, 24})), make_tensor("bias", r({24}))}, {{"a", {4, 10, 64}}}, "ai.kiln");
  expect_bf16_matches_reference(fused, {{"a", r({4, 10, 64})}}, "fusedmatmul.dnnl_bf16");
}

// Products of at most four rows by a constant B (a classifier's Gemm at batch 1): kiln's AVX512-BF16 kernel, first
// guess before oneDNN. Within kBf16Tol of the reference, and within float32 rounding of the same sums computed in
// double from A and B rounded to bfloat16 (which the pairing of k, the rounding of A and the bias must get right).
TEST(Bf16, FewRowProductsRunTheBf16Gemv) {
  std::mt19937 rng(11);
  auto r = [&](std::vector<int64_t> d) { return random_tensor(std::move(d), rng); };
  auto bf16 = [](float v) { return static_cast<double>(bfloat16_to_float(float_to_bfloat16(v))); };
  struct Case {
    int64_t M, K, N, trans_b;
    bool bias;
  };
  for (const Case& c : {Case{1, 1280, 1000, 1, true}, Case{1, 37, 17, 0, false}, Case{3, 1, 33, 1, true},
                        Case{4, 130, 48, 0, true}, Case{2, 255, 16, 1, false}}) {
    SCOPED_TRACE("Gemm M " + std::to_string(c.M) + " K " + std::to_string(c.K) + " N " + std::to_string(c.N));
    const std::vector<int64_t> bd = c.trans_b ? std::vector<int64_t>{c.N, c.K} : std::vector<int64_t>{c.K, c.N};
    const Tensor b = r(bd), bias = r({c.N}), a = r({c.M, c.K});
    std::vector<ir::NamedTensor> inits{make_tensor("b", b)};
    std::vector<std::string> inputs{"a", "b"};
    if (c.bias) {
      inits.push_back(make_tensor("c", bias));
      inputs.push_back("c");
    }
    auto gemm = one_node("Gemm", inputs, {make_attribute("transB", c.trans_b)}, inits, {{"a", {c.M, c.K}}});
    expect_bf16_matches_reference(gemm, {{"a", a}}, "gemm.gemv_bf16");
    if (!bf16_here()) continue;
    SessionOptions opts;
    opts.tune = false;
    opts.precision = "bf16";
    auto session = std::move(Session::create(gemm, opts)).value();
    auto got = session->run({{"a", a}});
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    for (int64_t m = 0; m < c.M; ++m) {
      for (int64_t n = 0; n < c.N; ++n) {
        double want = c.bias ? bias.data<float>()[n] : 0.0, magnitude = std::abs(want);
        for (int64_t k = 0; k < c.K; ++k) {
          const float bv = c.trans_b ? b.data<float>()[n * c.K + k] : b.data<float>()[k * c.N + n];
          const double t = bf16(a.data<float>()[m * c.K + k]) * bf16(bv);
          want += t;
          magnitude += std::abs(t);
        }
        ASSERT_NEAR((*got)[0].data<float>()[m * c.N + n], want, 1e-5 * magnitude + 1e-30) << m << ", " << n;
      }
    }
  }
  // MatMul (A's leading dimensions fold into two rows) and FusedMatMul with its bias and activation.
  expect_bf16_matches_reference(
      one_node("MatMul", {"a", "b"}, {}, {make_tensor("b", r({96, 40}))}, {{"a", {2, 1, 96}}}), {{"a", r({2, 1, 96})}},
      "matmul.gemv_bf16");
  auto fused = one_node("FusedMatMul", {"a", "b", "bias"}, {make_attribute("activation", "Relu")},
                        {make_tensor("b", r({64, 24})), make_tensor("bias", r({24}))}, {{"a", {1, 64}}}, "ai.kiln");
  expect_bf16_matches_reference(fused, {{"a", r({1, 64})}}, "fusedmatmul.gemv_bf16");
  // Five rows are oneDNN's.
  expect_bf16_matches_reference(one_node("Gemm", {"a", "b"}, {}, {make_tensor("b", r({40, 9}))}, {{"a", {5, 40}}}),
                                {{"a", r({5, 40})}}, "gemm.dnnl_bf16");
}

TEST(Bf16, SessionSaysWhatItRuns) {
  std::mt19937 rng(9);
  auto model = one_node("MatMul", {"a", "b"}, {}, {make_tensor("b", random_tensor({16, 8}, rng))}, {{"a", {4, 16}}});
  SessionOptions opts;
  opts.precision = "fp16";
  auto bad = Session::create(model, opts);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("precision is 'fp16'; expected fp32 or bf16"), std::string::npos)
      << bad.status().message();
  opts.precision = "";
  EXPECT_EQ(std::move(Session::create(model, opts)).value()->precision(), "fp32");
  opts.precision = "BF16";
  EXPECT_EQ(std::move(Session::create(model, opts)).value()->precision(), bf16_here() ? "bf16" : "fp32");
  // Under an AVX2 cap the bfloat16 kernels are out of reach: the session runs fp32 (and says so once on stderr).
  opts.max_isa = "avx2";
  auto capped = std::move(Session::create(model, opts)).value();
  EXPECT_EQ(capped->precision(), "fp32");
  ASSERT_TRUE(capped->run({{"a", random_tensor({4, 16}, rng)}}).is_ok());
  for (const KernelChoice& c : capped->kernel_choices())
    EXPECT_EQ(c.kernel.find("bf16"), std::string::npos) << c.kernel;
}

TEST(Bf16, PlansCarryThePrecisionAndTheBf16Weights) {
  // kiln build --precision bf16: the plan records it, pins the bfloat16 kernels and carries their weights packed in
  // bfloat16; a session from it runs bf16 whatever its options say, with the bits of the bf16 session it was
  // built from (the same kernels, first guesses on both sides).
  const std::string model = std::string(KILN_TEST_MODELS) + "/resnet18.onnx";
  const std::string plan = ::testing::TempDir() + "/bf16_test_" + std::to_string(::getpid()) + ".kplan";
  PlanBuildOptions build;
  build.threads = 2;
  build.tune = false;
  build.precision = "bf16";
  auto report = build_plan(model, plan, build);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_EQ(report->info.precision, bf16_here() ? "bf16" : "fp32");
  SessionOptions options;
  options.intra_op_threads = 2;
  options.tune = false;
  auto from_plan = std::move(Session::create_from_plan(plan, options)).value();  // options say fp32
  EXPECT_EQ(from_plan->precision(), bf16_here() ? "bf16" : "fp32");
  ASSERT_NE(from_plan->plan_info(), nullptr);
  EXPECT_EQ(from_plan->plan_info()->precision, report->info.precision);
  options.precision = "bf16";
  auto from_onnx = std::move(Session::create(model, options)).value();
  const size_t loaded = SessionInternals::impl(*from_plan).export_prepared().size();
  if (bf16_here()) {
    EXPECT_GT(loaded, 0u);
  }
  const IoInfo& in = from_plan->inputs()[0];
  std::mt19937 rng(1);
  const NamedTensors feeds = {{in.name, random_tensor(*in.type.shape->static_dims(), rng)}};
  auto a = from_plan->run(feeds);
  auto b = from_onnx->run(feeds);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ((*a)[0].nbytes(), (*b)[0].nbytes());
  EXPECT_EQ(std::memcmp((*a)[0].raw_data(), (*b)[0].raw_data(), (*a)[0].nbytes()), 0);
  int bf16_nodes = 0;
  for (const KernelChoice& c : from_plan->kernel_choices()) {
    EXPECT_EQ(c.kernel, c.planned.at(0)) << c.node;
    bf16_nodes += c.kernel.find("_bf16") != std::string::npos;
  }
  EXPECT_EQ(bf16_nodes > 0, bf16_here());
  // The bfloat16 weights came from the plan: the run packed none of its own.
  EXPECT_EQ(SessionInternals::impl(*from_plan).export_prepared().size(), loaded);
  std::remove(plan.c_str());
}

}  // namespace
}  // namespace kiln
