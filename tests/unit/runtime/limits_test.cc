// Limits and cancellation: outputs too large for the machine refused before anything is allocated, a run over
// SessionOptions::memory_limit_mb, RunOptions' terminate flag set from another thread, its timeout.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "kiln/ir/builder.h"
#include "kiln/runtime/session.h"
#include "loop_models.h"

namespace kiln {
namespace {

using namespace ir::helper;
using testing::endless_loop;

// Peak RSS of this process so far, in MiB.
double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

ir::Model one_node(ir::Node node, std::vector<ir::NamedTensor> inits, int opset = 13) {
  return make_model(make_graph({std::move(node)}, "g", {},
                               {make_tensor_value_info("y", DType::kUndefined, std::nullopt)}, std::move(inits)),
                    {{"", opset}});
}

struct HugeCase {
  std::string op;
  ir::Model model;
  StatusCode code;
};

// Each op sized from data asked for an output of 10^13 elements (40 TB of float32).
std::vector<HugeCase> huge_cases() {
  const int64_t big = 10'000'000'000'000;
  std::vector<HugeCase> cases;
  cases.push_back(
      {"ConstantOfShape",
       one_node(make_node("ConstantOfShape", {"s"}, {"y"}, "huge"), {make_tensor<int64_t>("s", {1}, {big})}),
       StatusCode::kResourceExhausted});
  cases.push_back(
      {"Expand",
       one_node(make_node("Expand", {"x", "s"}, {"y"}, "huge"),
                {make_tensor<float>("x", {1}, {1.0f}), make_tensor<int64_t>("s", {2}, {10'000'000, 1'000'000})}),
       StatusCode::kResourceExhausted});
  cases.push_back({"Tile",
                   one_node(make_node("Tile", {"x", "r"}, {"y"}, "huge"),
                            {make_tensor<float>("x", {2}, {1.0f, 2.0f}), make_tensor<int64_t>("r", {1}, {big / 2})}),
                   StatusCode::kResourceExhausted});
  cases.push_back(
      {"Resize",
       one_node(make_node("Resize", {"x", "", "sc"}, {"y"}, "huge", {make_attribute("mode", std::string("nearest"))}),
                {make_tensor<float>("x", {1, 1, 10, 10}, std::vector<float>(100, 1.0f)),
                 make_tensor<float>("sc", {4}, {1.0f, 1.0f, 1e6f, 1e5f})}),
       StatusCode::kResourceExhausted});
  cases.push_back({"Range",
                   one_node(make_node("Range", {"a", "b", "c"}, {"y"}, "huge"),
                            {make_tensor<float>("a", {}, {0.0f}), make_tensor<float>("b", {}, {1e13f}),
                             make_tensor<float>("c", {}, {1.0f})}),
                   StatusCode::kResourceExhausted});
  cases.push_back({"Pad",
                   one_node(make_node("Pad", {"x", "p"}, {"y"}, "huge"),
                            {make_tensor<float>("x", {1, 1}, {1.0f}),
                             make_tensor<int64_t>("p", {4}, {0, 0, 1'000'000, 10'000'000})}),
                   StatusCode::kResourceExhausted});
  cases.push_back(
      {"Reshape",
       one_node(make_node("Reshape", {"x", "s"}, {"y"}, "huge"),
                {make_tensor<float>("x", {4}, {1, 2, 3, 4}), make_tensor<int64_t>("s", {2}, {10'000'000, 1'000'000})}),
       StatusCode::kInvalidArgument});
  return cases;
}

// At run time (no optimization: nothing is folded), each is refused with an error naming the node, its op, the
// shape and the bytes, before anything is allocated: the process stays small.
TEST(Limits, HugeOutputsAreRefusedBeforeAllocation) {
  for (auto& c : huge_cases()) {
    SCOPED_TRACE(c.op);
    SessionOptions opts;
    opts.optimization_level = 0;
    auto s = Session::create(c.model, opts);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    auto out = (*s)->run({});
    ASSERT_FALSE(out.is_ok());
    EXPECT_EQ(out.status().code(), c.code) << out.status().message();
    const std::string& msg = out.status().message();
    EXPECT_NE(msg.find("node 'huge' (" + c.op), std::string::npos) << msg;
    if (c.code == StatusCode::kResourceExhausted) {
      EXPECT_NE(msg.find("bytes"), std::string::npos) << msg;
      EXPECT_NE(msg.find("more than"), std::string::npos) << msg;
    }
    EXPECT_LT(peak_rss_mib(), 1024.0);
  }
}

// With the optimizer on, the same constants are folded while the session is made: it fails or leaves the node to
// the run, and either way the error names the node.
TEST(Limits, HugeOutputsAreRefusedWhenFolded) {
  for (auto& c : huge_cases()) {
    SCOPED_TRACE(c.op);
    auto s = Session::create(c.model);
    Status st = s.is_ok() ? (*s)->run({}).status() : s.status();
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("'huge' (" + c.op), std::string::npos) << st.message();
    EXPECT_LT(peak_rss_mib(), 1024.0);
  }
}

// Integer reductions that overflow wrap around as two's complement arithmetic does (ONNX Runtime's results), where
// C++'s signed overflow would be undefined (found by fuzzing ReduceProd under UBSan).
TEST(Limits, IntegerReductionsWrapOnOverflow) {
  const int64_t big = int64_t{1} << 40;
  const auto wrap = [](uint64_t v) { return static_cast<int64_t>(v); };
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  struct Case {
    const char* op;
    int64_t a, b, want;
  };
  const Case cases[] = {
      {"ReduceProd", big, big + 3, wrap(u(big) * u(big + 3))},
      {"ReduceSum", INT64_MAX, big, wrap(u(INT64_MAX) + u(big))},
      {"ReduceSumSquare", big, big + 3, wrap(u(big) * u(big) + u(big + 3) * u(big + 3))},
      {"ReduceL1", INT64_MIN, -1, wrap((0 - u(INT64_MIN)) + 1)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.op);
    auto model = one_node(make_node(c.op, {"x"}, {"y"}, "r", {make_attribute("keepdims", 0)}),
                          {make_tensor<int64_t>("x", {2}, {c.a, c.b})});
    SessionOptions opts;
    opts.optimization_level = 0;
    auto s = Session::create(model, opts);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    auto out = (*s)->run({});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    EXPECT_EQ(out->at(0).data<int64_t>()[0], c.want);
  }
}

// Found by fuzzing: ConcatFromSequence with new_axis checked the axis against tensor 0's rank only, and inserted the
// new axis into a shorter tensor's dims out of bounds. A rank mismatch is an error naming both ranks.
TEST(Limits, ConcatFromSequenceOfMixedRanksIsAnError) {
  auto model = make_model(
      make_graph({make_node("SequenceConstruct", {"x", "z"}, {"s"}),
                  make_node("ConcatFromSequence", {"s"}, {"y"}, "cat",
                            {make_attribute("axis", int64_t{-1}), make_attribute("new_axis", int64_t{1})})},
                 "g", {}, {make_tensor_value_info("y", DType::kUndefined, std::nullopt)},
                 {make_tensor<float>("x", {2, 3}, {1, 2, 3, 4, 5, 6}), make_tensor<float>("z", {2}, {7, 8})}),
      {{"", 13}});
  SessionOptions opts;
  opts.optimization_level = 0;
  auto s = Session::create(model, opts);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  auto out = (*s)->run({});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("node 'cat' (ConcatFromSequence"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("tensor 1 has rank 1 but tensor 0 has rank 2"), std::string::npos)
      << out.status().message();
}

// x [1M floats] -> Relu -> Sigmoid -> Add(relu, sigmoid): at the Add, three 4 MiB tensors are alive.
ir::Model chain() {
  return make_model(make_graph({make_node("Relu", {"x"}, {"a"}, "relu"), make_node("Sigmoid", {"a"}, {"b"}, "sigmoid"),
                                make_node("Add", {"a", "b"}, {"y"}, "add")},
                               "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1024, 1024})},
                               {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}),
                    {{"", 13}});
}

TEST(Limits, MemoryLimitStopsTheRunAtTheNodeThatWouldGoOverIt) {
  Tensor x = std::move(Tensor::allocate(DType::kFloat32, {1024, 1024})).value();
  SessionOptions opts;
  opts.optimization_level = 0;
  opts.memory_limit_mb = 10;  // relu's and sigmoid's outputs fit (8 MiB); the Add's would make 12
  auto s = std::move(Session::create(chain(), opts)).value();
  auto out = s->run({{"x", x}});
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  const std::string& msg = out.status().message();
  EXPECT_NE(msg.find("node 'add' (Add"), std::string::npos) << msg;
  EXPECT_NE(msg.find("memory limit of 10.0 MiB"), std::string::npos) << msg;
  EXPECT_NE(msg.find("12.0 MiB"), std::string::npos) << msg;

  opts.memory_limit_mb = 16;
  auto ok = std::move(Session::create(chain(), opts)).value()->run({{"x", x}});
  EXPECT_TRUE(ok.is_ok()) << ok.status().message();
  // A single tensor over the limit is refused as too large.
  opts.memory_limit_mb = 2;
  auto small = std::move(Session::create(chain(), opts)).value()->run({{"x", x}});
  ASSERT_FALSE(small.is_ok());
  EXPECT_NE(small.status().message().find("node 'relu' (Relu"), std::string::npos) << small.status().message();
  EXPECT_NE(small.status().message().find("memory limit of 2"), std::string::npos) << small.status().message();
}

TEST(Cancellation, TerminateFromAnotherThreadStopsTheRun) {
  auto s = std::move(Session::create(endless_loop())).value();
  RunOptions ro;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread stopper([&ro] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ro.set_terminate();
  });
  auto out = s->run({}, {}, &ro);
  stopper.join();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_NE(out.status().message().find("terminated"), std::string::npos) << out.status().message();
  EXPECT_LT(ms, 5000.0);
  // Still set: the next run stops before its first node. Cleared: the options work again.
  auto again = s->run({}, {}, &ro);
  ASSERT_FALSE(again.is_ok());
  EXPECT_NE(again.status().message().find("before node 'loop' (Loop)"), std::string::npos) << again.status().message();
}

TEST(Cancellation, TimeoutStopsTheRun) {
  auto s = std::move(Session::create(endless_loop())).value();
  RunOptions ro;
  ro.timeout_ms = 30;
  const auto t0 = std::chrono::steady_clock::now();
  auto out = s->run({}, {}, &ro);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_NE(out.status().message().find("timed out after 30 ms"), std::string::npos) << out.status().message();
  EXPECT_GE(ms, 30.0);
  EXPECT_LT(ms, 5000.0);
  // A run within its timeout is unaffected.
  RunOptions generous;
  generous.timeout_ms = 60'000;
  auto ok = std::move(Session::create(chain()))
                .value()
                ->run({{"x", std::move(Tensor::allocate(DType::kFloat32, {1024, 1024})).value()}}, {}, &generous);
  EXPECT_TRUE(ok.is_ok()) << ok.status().message();
}

}  // namespace
}  // namespace kiln
