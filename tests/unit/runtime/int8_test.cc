// The int8 fast kernels (qlinearconv.dnnl, qlinearmatmul.dnnl, matmulinteger.dnnl) against the reference kernels.
// Integer results (MatMulInteger) must be equal; requantized ones (QLinearConv, QLinearMatMul) within one
// quantization step, which a few elements may differ by: oneDNN multiplies the int32 sum by the scale in float32,
// the reference in double, and a product that lands within float32's rounding of a .5 boundary rounds the other way.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/isa.h"
#include "kiln/ir/builder.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/quantize/quantize.h"
#include "kiln/runtime/session.h"
#include "reference.h"

namespace kiln {
namespace {

using namespace ir::helper;

bool fast_here() { return cpu::default_isa() >= cpu::Isa::kAvx2; }

// Whether the int8 kernels take weights of the full int8 range and int8 sources here (VNNI or AMX); without, 7-bit
// weights and uint8 sources only.
bool vnni_here() {
  const cpu::CpuFeatures& f = cpu::cpu_features();
  return cpu::default_isa() == cpu::Isa::kAvx512 && (f.avx512_vnni || f.amx_int8);
}

// A tensor of `dtype` with values drawn uniformly from [lo, hi].
Tensor random_ints(DType dtype, std::vector<int64_t> dims, std::mt19937& rng, int lo, int hi) {
  Tensor t = Tensor::allocate(dtype, std::move(dims)).value();
  std::uniform_int_distribution<int> u(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    const int v = u(rng);
    switch (dtype) {
      case DType::kUInt8: t.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      case DType::kInt8: t.data<int8_t>()[i] = static_cast<int8_t>(v); break;
      default: t.data<int32_t>()[i] = v; break;
    }
  }
  return t;
}

Tensor scalar_f32(float v) {
  Tensor t = Tensor::allocate(DType::kFloat32, {}).value();
  t.data<float>()[0] = v;
  return t;
}

Tensor floats(std::vector<float> v) {
  Tensor t = Tensor::allocate(DType::kFloat32, {static_cast<int64_t>(v.size())}).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

Tensor zero_point(DType dtype, int v) {
  Tensor t = Tensor::allocate(dtype, {}).value();
  if (dtype == DType::kUInt8) {
    t.data<uint8_t>()[0] = static_cast<uint8_t>(v);
  } else {
    t.data<int8_t>()[0] = static_cast<int8_t>(v);
  }
  return t;
}

// An 8-bit [N, C, H, W] tensor as [N, H, W, C].
Tensor to_nhwc(const Tensor& x) {
  const auto& d = x.dims();
  Tensor t = Tensor::allocate(x.dtype(), {d[0], d[2], d[3], d[1]}).value();
  const auto* in = static_cast<const uint8_t*>(x.raw_data());
  auto* out = static_cast<uint8_t*>(t.raw_data());
  for (int64_t n = 0; n < d[0]; ++n)
    for (int64_t c = 0; c < d[1]; ++c)
      for (int64_t h = 0; h < d[2]; ++h)
        for (int64_t w = 0; w < d[3]; ++w)
          out[((n * d[2] + h) * d[3] + w) * d[1] + c] = in[((n * d[1] + c) * d[2] + h) * d[3] + w];
  return t;
}

int64_t element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kUInt8: return t.data<uint8_t>()[i];
    case DType::kInt8: return t.data<int8_t>()[i];
    default: return t.data<int32_t>()[i];
  }
}

// Runs a one-node model (feeds "x"/"a"; every other input an initializer) on the reference and the fast kernels;
// the fast session (with the `disabled` kernels set aside) must run `kernel` (reporting a detail that starts with
// `detail`, where given, on a CPU with VNNI and no AMX) where the CPU has VNNI or AMX (`seven_bit`: the weights are
// 7-bit and the source uint8, which it takes on any AVX2 CPU), and its output must equal the reference's or (`step` 1)
// differ by at most one in at most 1% of the elements.
void expect_int8_matches_reference(const std::string& op, const std::vector<std::string>& inputs,
                                   const std::vector<ir::Attribute>& attrs, std::vector<ir::NamedTensor> inits,
                                   const std::string& feed_name, const Tensor& feed, const std::string& kernel,
                                   int step, bool seven_bit = false, const std::string& domain = "",
                                   const std::vector<std::string>& disabled = {}, const std::string& detail = "") {
  ir::Model model =
      make_model(make_graph({make_node(op, inputs, {"y"}, "node", attrs, domain)}, "g",
                            {make_tensor_value_info(feed_name, feed.dtype(),
                                                    std::vector<DimArg>(feed.dims().begin(), feed.dims().end()))},
                            {make_tensor_value_info("y", DType::kUndefined, std::nullopt)}, std::move(inits)),
                 domain.empty() ? std::vector<ir::OpsetImport>{{"", kDefaultOpset}}
                                : std::vector<ir::OpsetImport>{{"", kDefaultOpset}, {domain, 1}});
  SessionOptions ref_opts;
  ref_opts.reference_kernels = true;
  auto ref = std::move(Session::create(model, ref_opts)).value()->run({{feed_name, feed}});
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  SessionOptions opts;
  opts.tune = false;
  opts.optimization_level = 2;  // below layout_nhwc_int8's level: the node runs as written
  opts.disabled_kernels = disabled;
  auto session = std::move(Session::create(model, opts)).value();
  auto got = session->run({{feed_name, feed}});
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  const Tensor& r = (*ref)[0];
  const Tensor& f = (*got)[0];
  ASSERT_EQ(f.dtype(), r.dtype());
  ASSERT_EQ(f.dims(), r.dims());
  int64_t off_by_one = 0;
  for (int64_t i = 0; i < r.num_elements(); ++i) {
    const int64_t d = std::abs(element(f, i) - element(r, i));
    ASSERT_LE(d, step) << "element " << i << ": " << element(f, i) << " against " << element(r, i);
    off_by_one += d;
  }
  EXPECT_LE(off_by_one * 100, r.num_elements()) << off_by_one << " of " << r.num_elements() << " elements differ";
  bool ran = false;
  std::string all;
  for (const KernelChoice& c : session->kernel_choices()) {
    ran = ran || c.kernel == kernel;
    all += " " + c.kernel + "(" + c.detail + ")";
  }
  EXPECT_EQ(ran, seven_bit ? fast_here() : vnni_here()) << "ran" << all;
  if (!detail.empty() && ran && vnni_here() && !cpu::cpu_features().amx_int8) {
    EXPECT_NE(all.find(kernel + "(" + detail), std::string::npos) << "ran" << all;
  }
}

TEST(Int8, QLinearConvMatchesReference) {
  std::mt19937 rng(17);
  struct Case {
    std::string name;
    DType x_type, y_type;
    std::vector<int64_t> x, w;
    int64_t group;
    std::vector<int64_t> strides, pads;
    bool per_channel, bias;
    int w_max = 127;  // 64: 7-bit weights, which the kernel takes without VNNI too
  };
  const std::vector<Case> cases = {
      {"u8 3x3, per-channel, bias",
       DType::kUInt8,
       DType::kUInt8,
       {1, 16, 12, 12},
       {32, 16, 3, 3},
       1,
       {1, 1},
       {1, 1, 1, 1},
       true,
       true},
      {"u8 1x1 stride 2, per-tensor",
       DType::kUInt8,
       DType::kUInt8,
       {2, 24, 9, 9},
       {8, 24, 1, 1},
       1,
       {2, 2},
       {0, 0, 0, 0},
       false,
       false},
      {"s8 in, s8 out", DType::kInt8, DType::kInt8, {1, 8, 10, 7}, {12, 8, 3, 3}, 1, {1, 1}, {1, 0, 1, 0}, true, true},
      {"first layer, 3 channels",
       DType::kUInt8,
       DType::kUInt8,
       {1, 3, 20, 20},
       {16, 3, 5, 5},
       1,
       {2, 2},
       {2, 2, 2, 2},
       true,
       true},
      {"depthwise", DType::kUInt8, DType::kUInt8, {1, 32, 8, 8}, {32, 1, 3, 3}, 32, {1, 1}, {1, 1, 1, 1}, true, true},
      {"1-D", DType::kUInt8, DType::kInt8, {2, 6, 15}, {10, 6, 3}, 1, {1}, {1, 1}, true, false},
      {"7-bit weights",
       DType::kUInt8,
       DType::kUInt8,
       {1, 32, 9, 9},
       {16, 32, 3, 3},
       1,
       {1, 1},
       {1, 1, 1, 1},
       true,
       true,
       64},
      {"7-bit weights, s8 in",
       DType::kInt8,
       DType::kUInt8,
       {1, 32, 9, 9},
       {16, 32, 1, 1},
       1,
       {1, 1},
       {0, 0, 0, 0},
       false,
       true,
       64},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const int64_t M = c.w[0];
    const bool x_signed = c.x_type == DType::kInt8;
    std::vector<float> ws;
    for (int64_t m = 0; m < (c.per_channel ? M : 1); ++m) ws.push_back(0.002f + 0.0005f * static_cast<float>(m % 7));
    std::vector<ir::NamedTensor> inits{
        make_tensor("xs", scalar_f32(0.02f)),
        make_tensor("xz", zero_point(c.x_type, x_signed ? -3 : 121)),
        make_tensor("w", random_ints(DType::kInt8, c.w, rng, -c.w_max, c.w_max)),
        make_tensor("ws", floats(ws)),
        make_tensor("wz", zero_point(DType::kInt8, 0)),
        make_tensor("ys", scalar_f32(0.05f)),
        make_tensor("yz", zero_point(c.y_type, c.y_type == DType::kInt8 ? 5 : 100)),
    };
    std::vector<std::string> inputs{"x", "xs", "xz", "w", "ws", "wz", "ys", "yz"};
    if (c.bias) {
      inits.push_back(make_tensor("b", random_ints(DType::kInt32, {M}, rng, -2000, 2000)));
      inputs.push_back("b");
    }
    std::vector<int64_t> pads = c.pads;
    std::vector<ir::Attribute> attrs{make_attribute("group", c.group), make_attribute("strides", c.strides),
                                     make_attribute("pads", pads)};
    const Tensor x = random_ints(c.x_type, c.x, rng, x_signed ? -128 : 0, x_signed ? 127 : 255);
    expect_int8_matches_reference("QLinearConv", inputs, attrs, inits, "x", x, "qlinearconv.dnnl", 1,
                                  c.w_max <= 64 && !x_signed);
    if (c.x.size() == 4) {  // the channels-last form (layout_nhwc_int8) of the same convolution
      SCOPED_TRACE("NhwcQLinearConv");
      expect_int8_matches_reference("NhwcQLinearConv", inputs, attrs, inits, "x", to_nhwc(x), "nhwcqlinearconv.dnnl", 1,
                                    c.w_max <= 64 && !x_signed, "ai.kiln");
      // oneDNN's other implementations, the tactics the tuner times beside its first choice (AVX-512 CPUs).
      if (cpu::default_isa() == cpu::Isa::kAvx512) {
        SCOPED_TRACE("nhwcqlinearconv.dnnl_jit");
        expect_int8_matches_reference("NhwcQLinearConv", inputs, attrs, inits, "x", to_nhwc(x),
                                      "nhwcqlinearconv.dnnl_jit", 1, c.w_max <= 64 && !x_signed, "ai.kiln",
                                      {"nhwcqlinearconv.dnnl"}, "dnnl_qconv(jit_int8:");
        if (c.w[2] == 1 && c.w[3] == 1) {
          SCOPED_TRACE("nhwcqlinearconv.dnnl_jit1x1");
          expect_int8_matches_reference("NhwcQLinearConv", inputs, attrs, inits, "x", to_nhwc(x),
                                        "nhwcqlinearconv.dnnl_jit1x1", 1, c.w_max <= 64 && !x_signed, "ai.kiln",
                                        {"nhwcqlinearconv.dnnl", "nhwcqlinearconv.dnnl_jit"},
                                        // oneDNN's 1x1 JIT kernel takes stride 1 only (else its first choice runs)
                                        c.strides[0] == 1 ? "dnnl_qconv(jit_int8_1x1:" : "");
        }
      }
    }
  }
}

// ai.kiln NhwcMaxPool (layout_nhwc_int8) on 8-bit channels-last tensors: equal to the reference, with padding,
// strides, dilation, ceil mode and a channel count that is not a multiple of 16.
TEST(Int8, NhwcMaxPoolEqualsTheReference) {
  std::mt19937 rng(23);
  struct Case {
    std::vector<int64_t> x, kernel, strides, pads, dilations;
    int64_t ceil;
  };
  const std::vector<Case> cases = {{{1, 12, 12, 64}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0},
                                   {{2, 9, 7, 21}, {2, 3}, {1, 2}, {0, 1, 1, 0}, {1, 1}, 1},
                                   {{1, 8, 8, 35}, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 0},
                                   // windows inside the input: 4 vectors of channels, then 1, then single ones
                                   {{1, 10, 11, 88}, {3, 3}, {1, 1}, {1, 1, 1, 1}, {2, 2}, 0}};
  for (DType dt : {DType::kUInt8, DType::kInt8}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dims_to_string(c.x));
      std::vector<ir::Attribute> attrs{make_attribute("kernel_shape", c.kernel), make_attribute("strides", c.strides),
                                       make_attribute("pads", c.pads), make_attribute("dilations", c.dilations),
                                       make_attribute("ceil_mode", c.ceil)};
      const bool s = dt == DType::kInt8;
      expect_int8_matches_reference("NhwcMaxPool", {"x"}, attrs, {}, "x",
                                    random_ints(dt, c.x, rng, s ? -128 : 0, s ? 127 : 255), "nhwc_maxpool.sse2", 0,
                                    true, "ai.kiln");
    }
  }
}

TEST(Int8, QLinearMatMulMatchesReference) {
  std::mt19937 rng(19);
  for (DType a_type : {DType::kUInt8, DType::kInt8}) {
    for (bool per_column : {false, true}) {
      const bool seven_bit = per_column;  // one case of each
      SCOPED_TRACE(std::string(a_type == DType::kUInt8 ? "u8" : "s8") + (per_column ? " per column" : ""));
      const int64_t K = 48, N = 20;
      std::vector<float> bs;
      for (int64_t n = 0; n < (per_column ? N : 1); ++n) bs.push_back(0.003f + 0.0002f * static_cast<float>(n));
      const bool s = a_type == DType::kInt8;
      std::vector<ir::NamedTensor> inits{
          make_tensor("as", scalar_f32(0.03f)),
          make_tensor("az", zero_point(a_type, s ? 2 : 128)),
          make_tensor("b", random_ints(DType::kInt8, {K, N}, rng, seven_bit ? -64 : -127, seven_bit ? 64 : 127)),
          make_tensor("bs", floats(bs)),
          make_tensor("bz", zero_point(DType::kInt8, 0)),
          make_tensor("ys", scalar_f32(0.04f)),
          make_tensor("yz", zero_point(a_type, s ? -4 : 90)),
      };
      expect_int8_matches_reference(
          "QLinearMatMul", {"a", "as", "az", "b", "bs", "bz", "ys", "yz"}, {}, std::move(inits), "a",
          random_ints(a_type, {3, 7, K}, rng, s ? -128 : 0, s ? 127 : 255), "qlinearmatmul.dnnl", 1, seven_bit && !s);
    }
  }
}

TEST(Int8, MatMulIntegerIsExact) {
  std::mt19937 rng(23);
  for (DType a_type : {DType::kUInt8, DType::kInt8}) {
    SCOPED_TRACE(a_type == DType::kUInt8 ? "u8" : "s8");
    const bool s = a_type == DType::kInt8;
    for (int w_max : {127, 64}) {
      std::vector<ir::NamedTensor> inits{make_tensor("b", random_ints(DType::kInt8, {64, 24}, rng, -w_max, w_max)),
                                         make_tensor("az", zero_point(a_type, s ? -7 : 133))};
      expect_int8_matches_reference("MatMulInteger", {"a", "b", "az"}, {}, std::move(inits), "a",
                                    random_ints(a_type, {2, 5, 64}, rng, s ? -128 : 0, s ? 127 : 255),
                                    "matmulinteger.dnnl", 0, w_max <= 64 && !s);
    }
  }
}

TEST(Int8, CasesTheFastKernelsDoNotTakeRunTheReference) {
  // Weights with a non-zero zero point (oneDNN has none for weights): the reference kernel, the same result.
  std::mt19937 rng(29);
  Tensor wz = Tensor::allocate(DType::kUInt8, {}).value();
  wz.data<uint8_t>()[0] = 128;
  std::vector<ir::NamedTensor> inits{make_tensor("xs", scalar_f32(0.02f)),
                                     make_tensor("xz", zero_point(DType::kUInt8, 10)),
                                     make_tensor("w", random_ints(DType::kUInt8, {4, 3, 3, 3}, rng, 0, 255)),
                                     make_tensor("ws", scalar_f32(0.01f)),
                                     make_tensor("wz", std::move(wz)),
                                     make_tensor("ys", scalar_f32(0.1f)),
                                     make_tensor("yz", zero_point(DType::kUInt8, 7))};
  ir::Model model =
      make_model(make_graph({make_node("QLinearConv", {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz"}, {"y"}, "node")},
                            "g", {make_tensor_value_info("x", DType::kUInt8, std::vector<DimArg>{1, 3, 6, 6})},
                            {make_tensor_value_info("y", DType::kUInt8, std::nullopt)}, std::move(inits)));
  auto session = std::move(Session::create(model)).value();
  ASSERT_TRUE(session->run({{"x", random_ints(DType::kUInt8, {1, 3, 6, 6}, rng, 0, 255)}}).is_ok());
  for (const KernelChoice& c : session->kernel_choices()) EXPECT_EQ(c.kernel, "ref");
}

// A QDQ graph as torch's quantization-aware training export writes one: QuantizeLinear/DequantizeLinear around
// every quantized layer, int8 weights behind DequantizeLinear (per output channel), float biases, Relu before the
// output's QuantizeLinear.
ir::Model qdq_model(std::mt19937& rng) {
  std::vector<ir::Node> nodes;
  std::vector<ir::NamedTensor> inits{
      make_tensor("s_in", scalar_f32(0.02f)),  make_tensor("z_in", zero_point(DType::kUInt8, 128)),
      make_tensor("s_mid", scalar_f32(0.03f)), make_tensor("z_mid", zero_point(DType::kUInt8, 0)),
      make_tensor("s_out", scalar_f32(0.05f)), make_tensor("z_out", zero_point(DType::kInt8, 3))};
  auto conv = [&](const std::string& name, const std::string& in, int64_t c, int64_t mch, const std::string& out) {
    std::vector<float> ws;
    std::vector<float> b;
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    for (int64_t m = 0; m < mch; ++m) {
      ws.push_back(0.004f + 0.001f * static_cast<float>(m % 5));
      b.push_back(u(rng));
    }
    inits.push_back(make_tensor(name + "_wq", random_ints(DType::kInt8, {mch, c, 3, 3}, rng, -127, 127)));
    inits.push_back(make_tensor(name + "_ws", floats(ws)));
    inits.push_back(make_tensor(name + "_b", floats(b)));
    nodes.push_back(make_node("DequantizeLinear", {name + "_wq", name + "_ws"}, {name + "_w"}, name + "_dqw",
                              {make_attribute("axis", int64_t{0})}));
    nodes.push_back(make_node("Conv", {in, name + "_w", name + "_b"}, {out}, name,
                              {make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1})}));
  };
  nodes.push_back(make_node("QuantizeLinear", {"x", "s_in", "z_in"}, {"xq"}, "q_in"));
  nodes.push_back(make_node("DequantizeLinear", {"xq", "s_in", "z_in"}, {"xd"}, "dq_in"));
  conv("conv1", "xd", 8, 16, "c1");
  nodes.push_back(make_node("Relu", {"c1"}, {"r1"}, "relu1"));
  nodes.push_back(make_node("QuantizeLinear", {"r1", "s_mid", "z_mid"}, {"r1q"}, "q_mid"));
  nodes.push_back(make_node("DequantizeLinear", {"r1q", "s_mid", "z_mid"}, {"r1d"}, "dq_mid"));
  conv("conv2", "r1d", 16, 12, "c2");
  nodes.push_back(make_node("QuantizeLinear", {"c2", "s_out", "z_out"}, {"c2q"}, "q_out"));
  nodes.push_back(make_node("DequantizeLinear", {"c2q", "s_out", "z_out"}, {"y"}, "dq_out"));
  return make_model(
      make_graph(nodes, "qdq", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 8, 10, 10})},
                 {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, std::move(inits)),
      {{"", 13}});
}

std::vector<std::string> op_types(const ir::Model& m) {
  std::vector<std::string> ops;
  for (const auto& n : m.graph.nodes) ops.push_back(n.op_type);
  return ops;
}

TEST(Int8, QdqConvolutionsBecomeQLinearConvAndMatchTheQdqGraph) {
  std::mt19937 rng(31);
  const ir::Model model = qdq_model(rng);
  ir::Model optimized = model;
  ASSERT_TRUE(opt::optimize(optimized, 99).is_ok());
  // Where the int8 kernels compute exact products, layout_nhwc_int8 keeps the activations channels-last between the
  // two convolutions: one Transpose in, one out.
  const std::vector<std::string> nhwc{"QuantizeLinear",  "Transpose", "NhwcQLinearConv",
                                      "NhwcQLinearConv", "Transpose", "DequantizeLinear"};
  const std::vector<std::string> plain{"QuantizeLinear", "QLinearConv", "QLinearConv", "DequantizeLinear"};
  EXPECT_EQ(op_types(optimized), vnni_here() ? nhwc : plain);
  Tensor x = Tensor::allocate(DType::kFloat32, {1, 8, 10, 10}).value();
  std::uniform_real_distribution<float> u(-2.5f, 2.5f);
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = u(rng);
  auto ref = testing::reference_outputs(model, {{"x", x}});
  ASSERT_TRUE(ref.is_ok()) << ref.status().message();
  auto session = std::move(Session::create(model)).value();
  auto got = session->run({{"x", x}});
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  // Within one step of the output's scale (the int32 bias and the float32 scale each may round the other way).
  const Tensor& r = (*ref)[0];
  const Tensor& f = (*got)[0];
  ASSERT_EQ(f.dims(), r.dims());
  int64_t differ = 0;
  for (int64_t i = 0; i < r.num_elements(); ++i) {
    const float d = std::abs(f.data<float>()[i] - r.data<float>()[i]);
    ASSERT_LE(d, 0.05f * 1.001f) << "element " << i;
    differ += d > 0;
  }
  EXPECT_LE(differ * 20, r.num_elements()) << differ << " of " << r.num_elements() << " elements differ";
  int fast = 0;
  for (const KernelChoice& c : session->kernel_choices()) fast += c.kernel.rfind("nhwcqlinearconv.dnnl", 0) == 0;
  EXPECT_EQ(fast, vnni_here() ? 2 : 0);
}

// A residual block in QDQ form: x quantized, a 3x3 convolution quantized with scale s_y, its sum with the block's
// input [-> Relu], quantized with scale s_c. Where the int8 kernels compute exact products, layout_nhwc_int8 fuses
// the sum into the convolution (inputs 9-13) when s_y < 1.9 s_c; the fused node's reference kernel computes what
// the two nodes did, exactly, and the fast kernel (one rounding) is within one step of s_c.
ir::Model residual_model(std::mt19937& rng, float s_y, float s_c, bool relu) {
  std::vector<float> ws, b;
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (int64_t m = 0; m < 16; ++m) {
    ws.push_back(0.004f + 0.001f * static_cast<float>(m % 5));
    b.push_back(u(rng));
  }
  std::vector<ir::NamedTensor> inits{make_tensor("s_in", scalar_f32(0.02f)),
                                     make_tensor("z_in", zero_point(DType::kUInt8, 128)),
                                     make_tensor("s_y", scalar_f32(s_y)),
                                     make_tensor("z_y", zero_point(DType::kUInt8, 120)),
                                     make_tensor("s_c", scalar_f32(s_c)),
                                     make_tensor("z_c", zero_point(DType::kUInt8, relu ? 0 : 128)),
                                     make_tensor("wq", random_ints(DType::kInt8, {16, 16, 3, 3}, rng, -127, 127)),
                                     make_tensor("ws", floats(ws)),
                                     make_tensor("b", floats(b))};
  std::vector<ir::Node> nodes{
      make_node("QuantizeLinear", {"x", "s_in", "z_in"}, {"xq"}, "q_in"),
      make_node("DequantizeLinear", {"xq", "s_in", "z_in"}, {"xd"}, "dq_in"),
      make_node("DequantizeLinear", {"wq", "ws"}, {"w"}, "dq_w", {make_attribute("axis", int64_t{0})}),
      make_node("Conv", {"xd", "w", "b"}, {"c"}, "conv", {make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1})}),
      make_node("QuantizeLinear", {"c", "s_y", "z_y"}, {"cq"}, "q_y"),
      make_node("DequantizeLinear", {"cq", "s_y", "z_y"}, {"cd"}, "dq_y"),
      make_node("Add", {"cd", "xd"}, {"sum"}, "add")};
  std::string last = "sum";
  if (relu) {
    nodes.push_back(make_node("Relu", {"sum"}, {"r"}, "relu"));
    last = "r";
  }
  nodes.push_back(make_node("QuantizeLinear", {last, "s_c", "z_c"}, {"yq"}, "q_c"));
  nodes.push_back(make_node("DequantizeLinear", {"yq", "s_c", "z_c"}, {"y"}, "dq_c"));
  return make_model(
      make_graph(nodes, "residual", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{2, 16, 9, 11})},
                 {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, std::move(inits)),
      {{"", 13}});
}

TEST(Int8, ResidualSumsFuseIntoTheConvolutionWithinOneStep) {
  struct Case {
    float s_y, s_c;
    bool relu, fused;
  };
  for (const Case& c :
       {Case{0.05f, 0.03f, true, true}, Case{0.03f, 0.04f, false, true}, Case{0.09f, 0.03f, true, false}}) {
    SCOPED_TRACE("s_y " + std::to_string(c.s_y) + ", s_c " + std::to_string(c.s_c) + (c.relu ? ", Relu" : ""));
    std::mt19937 rng(43);
    const ir::Model model = residual_model(rng, c.s_y, c.s_c, c.relu);
    ir::Model optimized = model;
    ASSERT_TRUE(opt::optimize(optimized, 99).is_ok());
    int adds = 0, fused = 0;
    for (const auto& n : optimized.graph.nodes) {
      adds += n.op_type == "QLinearAdd";
      fused += n.op_type == "NhwcQLinearConv" && n.inputs.size() == 14;
    }
    const bool expect_fused = c.fused && vnni_here();
    EXPECT_EQ(fused, expect_fused ? 1 : 0);
    EXPECT_EQ(adds, expect_fused ? 0 : 1);
    Tensor x = Tensor::allocate(DType::kFloat32, {2, 16, 9, 11}).value();
    std::uniform_real_distribution<float> u(-2.5f, 2.5f);
    for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = u(rng);
    // The graph with the QDQ pairs fused (QLinearConv, QLinearAdd) but not yet channels-last, on the reference
    // kernels: what the unfused nodes compute. (The QDQ graph itself differs from it by the int32 bias's rounding.)
    ir::Model qlinear = model;
    ASSERT_TRUE(opt::optimize(qlinear, 2).is_ok());
    SessionOptions ref_opts;
    ref_opts.reference_kernels = true;
    ref_opts.optimization_level = 0;
    auto ref = std::move(Session::create(qlinear, ref_opts)).value()->run({{"x", x}});
    ASSERT_TRUE(ref.is_ok()) << ref.status().message();
    // The fully optimized graph on the reference kernels: the fused node computes exactly what the nodes it
    // replaced did.
    auto ref_fused = std::move(Session::create(optimized, ref_opts)).value()->run({{"x", x}});
    ASSERT_TRUE(ref_fused.is_ok()) << ref_fused.status().message();
    const Tensor& r = (*ref)[0];
    ASSERT_EQ((*ref_fused)[0].dims(), r.dims());
    EXPECT_EQ(std::memcmp((*ref_fused)[0].raw_data(), r.raw_data(), r.nbytes()), 0);
    // The fast kernels: within one step of s_c where the sum is fused (one rounding instead of two), else equal;
    // the tuner's choice, then each of oneDNN's implementations (the others set aside, the first guess taken).
    const std::vector<std::string> variants = {"", "nhwcqlinearconv.dnnl", "nhwcqlinearconv.dnnl_jit"};
    for (size_t v = 0; v < variants.size(); ++v) {
      SCOPED_TRACE(v == 0 ? "tuned" : variants[v]);
      SessionOptions opts;
      opts.tune = v == 0;
      for (size_t u = 1; u < variants.size(); ++u) {
        if (v > 0 && u != v) opts.disabled_kernels.push_back(variants[u]);
      }
      auto session = std::move(Session::create(model, opts)).value();
      auto got = session->run({{"x", x}});
      ASSERT_TRUE(got.is_ok()) << got.status().message();
      const Tensor& f = (*got)[0];
      ASSERT_EQ(f.dims(), r.dims());
      int64_t differ = 0;
      for (int64_t i = 0; i < r.num_elements(); ++i) {
        const float d = std::abs(f.data<float>()[i] - r.data<float>()[i]);
        ASSERT_LE(d, expect_fused ? c.s_c * 1.001f : 0.0f) << "element " << i;
        differ += d > 0;
      }
      EXPECT_LE(differ * 4, r.num_elements()) << differ << " of " << r.num_elements() << " elements differ";
      int fast = 0;
      for (const KernelChoice& k : session->kernel_choices()) {
        fast += v == 0 ? k.kernel.rfind("nhwcqlinearconv.dnnl", 0) == 0 : k.kernel == variants[v];
        // With VNNI and no AMX oneDNN has its direct JIT int8 convolution for this one (the variant took it).
        if (k.kernel == "nhwcqlinearconv.dnnl_jit" && !cpu::cpu_features().amx_int8) {
          EXPECT_EQ(k.detail.rfind("dnnl_qconv(jit_int8:", 0), 0u) << k.detail;
        }
      }
      EXPECT_EQ(fast, vnni_here() ? 1 : 0);
    }
  }
}

// DequantizeLinear -> MaxPool -> QuantizeLinear with the same parameters is MaxPool on the 8-bit tensor (fuse_qdq),
// exactly; with other parameters on the QuantizeLinear it stays as written.
TEST(Int8, QdqMaxPoolPoolsTheQuantizedTensor) {
  std::mt19937 rng(29);
  for (float out_scale : {0.1f, 0.2f}) {
    SCOPED_TRACE("output scale " + std::to_string(out_scale));
    ir::Model model =
        make_model(make_graph({make_node("DequantizeLinear", {"x", "s", "z"}, {"d"}),
                               make_node("MaxPool", {"d"}, {"p"}, "pool",
                                         {make_attribute("kernel_shape", std::vector<int64_t>{3, 3}),
                                          make_attribute("strides", std::vector<int64_t>{2, 2}),
                                          make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1})}),
                               make_node("QuantizeLinear", {"p", "os", "z"}, {"y"})},
                              "g", {make_tensor_value_info("x", DType::kUInt8, std::vector<DimArg>{1, 5, 9, 9})},
                              {make_tensor_value_info("y", DType::kUInt8, std::nullopt)},
                              {make_tensor("s", scalar_f32(0.1f)), make_tensor("os", scalar_f32(out_scale)),
                               make_tensor("z", zero_point(DType::kUInt8, 7))}),
                   {{"", 13}});
    ir::Model optimized = model;
    ASSERT_TRUE(opt::optimize(optimized, 1).is_ok());
    const std::vector<std::string> fused{"MaxPool"}, kept{"DequantizeLinear", "MaxPool", "QuantizeLinear"};
    EXPECT_EQ(op_types(optimized), out_scale == 0.1f ? fused : kept);
    const Tensor x = random_ints(DType::kUInt8, {1, 5, 9, 9}, rng, 0, 255);
    SessionOptions ref_opts;
    ref_opts.reference_kernels = true;
    ref_opts.optimization_level = 0;
    auto r = std::move(Session::create(model, ref_opts)).value()->run({{"x", x}});
    auto f = std::move(Session::create(model)).value()->run({{"x", x}});
    ASSERT_TRUE(r.is_ok() && f.is_ok());
    for (int64_t i = 0; i < (*r)[0].num_elements(); ++i) {
      ASSERT_EQ((*f)[0].data<uint8_t>()[i], (*r)[0].data<uint8_t>()[i]) << "element " << i;
    }
  }
}

TEST(Int8, QdqMatMulBecomesQLinearMatMul) {
  std::mt19937 rng(37);
  std::vector<float> bs;
  for (int n = 0; n < 8; ++n) bs.push_back(0.01f + 0.001f * static_cast<float>(n));
  std::vector<ir::NamedTensor> inits{make_tensor("s", scalar_f32(0.02f)),
                                     make_tensor("z", zero_point(DType::kInt8, 0)),
                                     make_tensor("bq", random_ints(DType::kInt8, {16, 8}, rng, -127, 127)),
                                     make_tensor("bs", floats(bs)),
                                     make_tensor("ys", scalar_f32(0.1f)),
                                     make_tensor("yz", zero_point(DType::kUInt8, 0))};
  std::vector<ir::Node> nodes{make_node("QuantizeLinear", {"a", "s", "z"}, {"aq"}, "qa"),
                              make_node("DequantizeLinear", {"aq", "s", "z"}, {"ad"}, "dqa"),
                              make_node("DequantizeLinear", {"bq", "bs"}, {"b"}, "dqb"),
                              make_node("MatMul", {"ad", "b"}, {"p"}, "mm"),
                              make_node("Relu", {"p"}, {"r"}, "relu"),
                              make_node("QuantizeLinear", {"r", "ys", "yz"}, {"yq"}, "qy"),
                              make_node("DequantizeLinear", {"yq", "ys", "yz"}, {"y"}, "dqy")};
  const ir::Model model =
      make_model(make_graph(nodes, "qdq", {make_tensor_value_info("a", DType::kFloat32, std::vector<DimArg>{2, 3, 16})},
                            {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, std::move(inits)),
                 {{"", 13}});
  ir::Model optimized = model;
  ASSERT_TRUE(opt::optimize(optimized, 99).is_ok());
  EXPECT_EQ(op_types(optimized), (std::vector<std::string>{"QuantizeLinear", "QLinearMatMul", "DequantizeLinear"}));
  Tensor a = Tensor::allocate(DType::kFloat32, {2, 3, 16}).value();
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < a.num_elements(); ++i) a.data<float>()[i] = u(rng);
  SessionOptions ref_opts;
  ref_opts.reference_kernels = true;
  ref_opts.optimization_level = 0;
  auto ref = std::move(Session::create(model, ref_opts)).value()->run({{"a", a}});
  auto got = std::move(Session::create(model)).value()->run({{"a", a}});
  ASSERT_TRUE(ref.is_ok() && got.is_ok());
  for (int64_t i = 0; i < (*ref)[0].num_elements(); ++i) {
    ASSERT_LE(std::abs((*got)[0].data<float>()[i] - (*ref)[0].data<float>()[i]), 0.1f * 1.001f) << "element " << i;
  }
}

TEST(Int8, QuantizeDequantizeAndQLinearAddEqualTheReference) {
  std::mt19937 rng(41);
  const std::vector<int64_t> dims{2, 5, 7, 9};  // 630 elements: SIMD blocks and a tail
  Tensor x = Tensor::allocate(DType::kFloat32, dims).value();
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  for (int64_t i = 0; i < x.num_elements(); ++i) x.data<float>()[i] = u(rng);
  x.data<float>()[3] = 1e9f;   // saturates high
  x.data<float>()[4] = -1e9f;  // and low
  x.data<float>()[5] = 0.25f;  // ties: 0.25 / 0.5 = 0.5 rounds to 0, 0.75 / 0.5 = 1.5 to 2
  x.data<float>()[6] = 0.75f;
  x.data<float>()[7] = std::numeric_limits<float>::quiet_NaN();    // saturates low, as the reference's saturate does
  x.data<float>()[627] = std::numeric_limits<float>::quiet_NaN();  // in the tail
  for (DType q : {DType::kUInt8, DType::kInt8}) {
    SCOPED_TRACE(q == DType::kUInt8 ? "uint8" : "int8");
    const int zp = q == DType::kUInt8 ? 131 : -5;
    expect_int8_matches_reference("QuantizeLinear", {"x", "s", "z"}, {},
                                  {make_tensor("s", scalar_f32(0.5f)), make_tensor("z", zero_point(q, zp))}, "x", x,
                                  "quantizelinear.sse2", 0, true);
    const Tensor xq = random_ints(q, dims, rng, q == DType::kUInt8 ? 0 : -128, q == DType::kUInt8 ? 255 : 127);
    // DequantizeLinear: float outputs, equal.
    ir::Model dq =
        make_model(make_graph({make_node("DequantizeLinear", {"x", "s", "z"}, {"y"}, "node")}, "g",
                              {make_tensor_value_info("x", q, std::vector<DimArg>(dims.begin(), dims.end()))},
                              {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                              {make_tensor("s", scalar_f32(0.037f)), make_tensor("z", zero_point(q, zp))}));
    SessionOptions ref_opts;
    ref_opts.reference_kernels = true;
    auto r = std::move(Session::create(dq, ref_opts)).value()->run({{"x", xq}});
    auto fast_session = std::move(Session::create(dq)).value();
    auto f = fast_session->run({{"x", xq}});
    ASSERT_TRUE(r.is_ok() && f.is_ok());
    for (int64_t i = 0; i < xq.num_elements(); ++i) ASSERT_EQ((*f)[0].data<float>()[i], (*r)[0].data<float>()[i]) << i;
    EXPECT_EQ(fast_session->kernel_choices()[0].kernel, fast_here() ? "dequantizelinear.sse2" : "ref");
    for (const std::string act : {"", "Relu"}) {
      SCOPED_TRACE("QLinearAdd " + act);
      std::vector<ir::Attribute> attrs;
      if (!act.empty()) attrs.push_back(make_attribute("activation", act));
      ir::Model add = make_model(
          make_graph({make_node("QLinearAdd", {"a", "as", "az", "b", "bs", "bz", "cs", "cz"}, {"y"}, "node", attrs,
                                "ai.kiln")},
                     "g", {make_tensor_value_info("a", q, std::vector<DimArg>(dims.begin(), dims.end()))},
                     {make_tensor_value_info("y", DType::kUndefined, std::nullopt)},
                     {make_tensor("as", scalar_f32(0.05f)), make_tensor("az", zero_point(q, zp)),
                      make_tensor("b", random_ints(q, dims, rng, q == DType::kUInt8 ? 0 : -128, 127)),
                      make_tensor("bs", scalar_f32(0.03f)), make_tensor("bz", zero_point(q, zp / 2)),
                      make_tensor("cs", scalar_f32(0.07f)), make_tensor("cz", zero_point(DType::kUInt8, 10))}),
          {{"", 17}, {"ai.kiln", 1}});
      auto ra = std::move(Session::create(add, ref_opts)).value()->run({{"a", xq}});
      auto fs = std::move(Session::create(add)).value();
      auto fa = fs->run({{"a", xq}});
      ASSERT_TRUE(ra.is_ok() && fa.is_ok()) << ra.status().message();
      ASSERT_EQ((*fa)[0].dtype(), DType::kUInt8);
      for (int64_t i = 0; i < xq.num_elements(); ++i) {
        ASSERT_EQ((*fa)[0].data<uint8_t>()[i], (*ra)[0].data<uint8_t>()[i]) << "element " << i;
      }
      EXPECT_EQ(fs->kernel_choices()[0].kernel, fast_here() ? "qlinearadd.simd" : "ref");
      if (fast_here()) {
        EXPECT_EQ(fs->kernel_choices()[0].detail,
                  std::string(act.empty() ? "add." : "add_relu.") + cpu::isa_name(cpu::default_isa()));
      }
    }
  }
  // Sums whose quotient by C's scale lies within an ulp or two of a half, where the product by the reciprocal
  // rounds the other way than the division (scales 0.15 and 0.3: about 4% of the sums); the kernel must round as the
  // division does.
  const std::vector<int64_t> tie_dims{1, 3, 11, 13};
  ir::Model ties = make_model(
      make_graph({make_node("QLinearAdd", {"a", "s", "z", "b", "s", "z", "cs", "cz"}, {"y"}, "node", {}, "ai.kiln")},
                 "g",
                 {make_tensor_value_info("a", DType::kUInt8, std::vector<DimArg>(tie_dims.begin(), tie_dims.end()))},
                 {make_tensor_value_info("y", DType::kUndefined, std::nullopt)},
                 {make_tensor("s", scalar_f32(0.15f)), make_tensor("z", zero_point(DType::kUInt8, 0)),
                  make_tensor("b", random_ints(DType::kUInt8, tie_dims, rng, 0, 255)),
                  make_tensor("cs", scalar_f32(0.3f)), make_tensor("cz", zero_point(DType::kUInt8, 0))}),
      {{"", 17}, {"ai.kiln", 1}});
  const Tensor ta = random_ints(DType::kUInt8, tie_dims, rng, 0, 255);
  SessionOptions ref_opts;
  ref_opts.reference_kernels = true;
  auto rt = std::move(Session::create(ties, ref_opts)).value()->run({{"a", ta}});
  auto ft = std::move(Session::create(ties)).value()->run({{"a", ta}});
  ASSERT_TRUE(rt.is_ok() && ft.is_ok());
  for (int64_t i = 0; i < ta.num_elements(); ++i) {
    ASSERT_EQ((*ft)[0].data<uint8_t>()[i], (*rt)[0].data<uint8_t>()[i]) << "element " << i;
  }
}

// Every pair of uint8 values (a 256 x 256 grid: A's value is the row, B's the column) under several sets of scales and
// zero points, with and without Relu: the fast kernel gives the reference's bytes everywhere, the sums whose quotient
// lies near a half-integer included.
TEST(Int8, QLinearAddEqualsTheReferenceOnEveryPairOfValues) {
  const std::vector<int64_t> dims{1, 256, 256};
  Tensor a = Tensor::allocate(DType::kUInt8, dims).value(), b = Tensor::allocate(DType::kUInt8, dims).value();
  for (int64_t i = 0; i < 256; ++i) {
    for (int64_t j = 0; j < 256; ++j) {
      a.data<uint8_t>()[i * 256 + j] = static_cast<uint8_t>(i);
      b.data<uint8_t>()[i * 256 + j] = static_cast<uint8_t>(j);
    }
  }
  struct Scales {
    float as, bs, cs;
    int az, bz, cz;
  };
  const std::vector<Scales> cases = {{0.15f, 0.15f, 0.3f, 0, 0, 0},
                                     {0.05f, 0.03f, 0.07f, 131, 65, 10},
                                     {0.0213f, 0.0371f, 0.0419f, 128, 3, 7},
                                     {1.0f, 1.0f, 2.0f, 0, 0, 0},
                                     {0.1f, 0.2f, 0.3f, 17, 200, 255},
                                     {3e-3f, 7e-3f, 1.1e-2f, 0, 0, 128},
                                     // Quotients beyond the clamp, infinite, and NaN (A at its zero point times an
                                     // infinite scale): the kernel's unbounded form.
                                     {1.0f, 1.0f, 1e-9f, 0, 0, 3},
                                     {3e38f, 3e38f, 1e-3f, 100, 0, 0},
                                     {INFINITY, 0.1f, 0.2f, 7, 0, 9}};
  for (const Scales& c : cases) {
    for (const std::string act : {"", "Relu"}) {
      SCOPED_TRACE("scales " + std::to_string(c.as) + " " + std::to_string(c.bs) + " " + std::to_string(c.cs) + " " +
                   act);
      std::vector<ir::Attribute> attrs;
      if (!act.empty()) attrs.push_back(make_attribute("activation", act));
      ir::Model add = make_model(
          make_graph({make_node("QLinearAdd", {"a", "as", "az", "b", "bs", "bz", "cs", "cz"}, {"y"}, "node", attrs,
                                "ai.kiln")},
                     "g", {make_tensor_value_info("a", DType::kUInt8, std::vector<DimArg>(dims.begin(), dims.end()))},
                     {make_tensor_value_info("y", DType::kUndefined, std::nullopt)},
                     {make_tensor("as", scalar_f32(c.as)), make_tensor("az", zero_point(DType::kUInt8, c.az)),
                      make_tensor("b", b), make_tensor("bs", scalar_f32(c.bs)),
                      make_tensor("bz", zero_point(DType::kUInt8, c.bz)), make_tensor("cs", scalar_f32(c.cs)),
                      make_tensor("cz", zero_point(DType::kUInt8, c.cz))}),
          {{"", 17}, {"ai.kiln", 1}});
      SessionOptions ref_opts;
      ref_opts.reference_kernels = true;
      auto r = std::move(Session::create(add, ref_opts)).value()->run({{"a", a}});
      auto fs = std::move(Session::create(add)).value();
      auto f = fs->run({{"a", a}});
      ASSERT_TRUE(r.is_ok() && f.is_ok());
      for (int64_t i = 0; i < a.num_elements(); ++i) {
        ASSERT_EQ((*f)[0].data<uint8_t>()[i], (*r)[0].data<uint8_t>()[i]) << "a " << i / 256 << ", b " << i % 256;
      }
      EXPECT_EQ(fs->kernel_choices()[0].kernel, fast_here() ? "qlinearadd.simd" : "ref");
    }
  }
}

TEST(Int8, EntropyCalibrationClipsLongTails) {
  // A histogram of |x| for a Gaussian with a few far outliers: TensorRT's KL threshold lands well inside the largest
  // value (min/max would keep the outliers and waste most levels) but beyond the bulk of the distribution.
  const int bins = 2048;
  const double max_abs = 40.0, width = max_abs / bins;
  std::vector<double> hist(bins, 0.0);
  for (int i = 0; i < bins; ++i) {
    const double v = (i + 0.5) * width;
    hist[static_cast<size_t>(i)] = 1e6 * std::exp(-v * v / 2);
  }
  hist[bins - 1] += 3;
  const double t = quant::entropy_threshold(hist, max_abs);
  EXPECT_GT(t, 2.5);
  EXPECT_LT(t, 10.0);
  // No tail: the threshold keeps (nearly) everything.
  std::vector<double> flat(bins, 1.0);
  EXPECT_GT(quant::entropy_threshold(flat, max_abs), 0.9 * max_abs);
  // A ReLU's output: however many exact zeros fill the first bin, the threshold is that of the rest (TensorRT's
  // calibrator counts the first bin as the second), at 256 levels for a tensor that is never negative.
  std::vector<double> relu = hist;
  const double t256 = quant::entropy_threshold(relu, max_abs, 256);
  relu[0] = 1e12;
  EXPECT_EQ(quant::entropy_threshold(relu, max_abs, 256), t256);
  EXPECT_GE(t256, t);
}

}  // namespace
}  // namespace kiln
