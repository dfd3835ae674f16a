#include "kiln/runtime/session.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "../ir/test_graphs.h"
#include "kernels/isa.h"
#include "kiln/core/allocator.h"
#include "kiln/ir/builder.h"

namespace kiln {
namespace {

using namespace ir::helper;

Tensor filled(std::vector<int64_t> dims, float start, float step) {
  auto t = Tensor::allocate(DType::kFloat32, std::move(dims));
  for (int64_t i = 0; i < t->num_elements(); ++i) t->data<float>()[i] = start + step * static_cast<float>(i);
  return std::move(t).value();
}

TEST(Session, RunsTheTutorialModel) {
  auto s = Session::create(ir::testing::linear_func());
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  ASSERT_EQ((*s)->inputs().size(), 3u);
  EXPECT_EQ((*s)->inputs()[0].name, "a");
  EXPECT_EQ((*s)->outputs()[0].type.to_string(), "tensor(float)[10,10]");
  Tensor a = filled({10, 10}, 1, 0.5f), x = filled({10, 10}, -2, 0.25f), b = filled({10, 10}, 3, -1);
  auto out = (*s)->run({{"a", a}, {"x", x}, {"b", b}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  for (int i = 0; i < 100; ++i) {
    EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], a.data<float>()[i] * x.data<float>()[i] + b.data<float>()[i]);
  }
}

TEST(Session, FeedErrorsNameTheInputAndTheExpectation) {
  auto s = std::move(Session::create(ir::testing::linear_func())).value();
  Tensor ok = filled({10, 10}, 0, 1);
  auto missing = s->run({{"a", ok}, {"x", ok}});
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("input 'b'"), std::string::npos) << missing.status().message();
  auto unknown = s->run({{"a", ok}, {"x", ok}, {"b", ok}, {"q", ok}});
  EXPECT_NE(unknown.status().message().find("'q' is not an input"), std::string::npos);
  auto dtype = s->run({{"a", Tensor::from_vector<int64_t>({10, 10}, std::vector<int64_t>(100))}, {"x", ok}, {"b", ok}});
  EXPECT_NE(dtype.status().message().find("dtype int64 but the model expects float"), std::string::npos);
  auto rank = s->run({{"a", filled({100}, 0, 1)}, {"x", ok}, {"b", ok}});
  EXPECT_NE(rank.status().message().find("expects rank 2"), std::string::npos);
  auto dim = s->run({{"a", filled({10, 9}, 0, 1)}, {"x", ok}, {"b", ok}});
  EXPECT_NE(dim.status().message().find("dimension 1 must be 10"), std::string::npos);
  auto out = s->run({{"a", ok}, {"x", ok}, {"b", ok}}, {"nope"});
  EXPECT_NE(out.status().message().find("'nope' is not an output"), std::string::npos);
}

// run_into: an output bound to the caller's tensor is written there, by the kernel that makes it from the second
// run on (no tensor allocated in the steady state); shapes that disagree are an error naming both.
TEST(Session, RunIntoWritesPreallocatedOutputsInPlace) {
  auto s = std::move(Session::create(ir::testing::linear_func())).value();
  Tensor a = filled({10, 10}, 1, 0.5f), x = filled({10, 10}, -2, 0.25f), b = filled({10, 10}, 3, -1);
  const NamedValues feeds{{"a", Value(a)}, {"x", Value(x)}, {"b", Value(b)}};
  std::vector<float> storage(100, -1.0f);
  Tensor dest = Tensor::borrow(DType::kFloat32, {10, 10}, storage.data());
  std::vector<Value> outs{Value(dest)};
  ASSERT_TRUE(s->run_into(feeds, {}, outs).is_ok());
  for (int i = 0; i < 100; ++i) {
    EXPECT_FLOAT_EQ(storage[static_cast<size_t>(i)], a.data<float>()[i] * x.data<float>()[i] + b.data<float>()[i]);
  }
  EXPECT_EQ(outs[0].tensor().raw_data(), storage.data());
  ASSERT_TRUE(s->run_into(feeds, {}, outs).is_ok());  // the first run recorded the plan; this one takes its arena
  const TensorHeapStats before = tensor_heap_stats();
  for (int r = 0; r < 5; ++r) ASSERT_TRUE(s->run_into(feeds, {}, outs).is_ok());
  EXPECT_EQ(tensor_heap_stats().allocations, before.allocations);

  std::vector<Value> fresh;  // no tensor given: the run allocates, as run_values does
  ASSERT_TRUE(s->run_into(feeds, {}, fresh).is_ok());
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_NE(fresh[0].tensor().raw_data(), storage.data());
  EXPECT_GT(tensor_heap_stats().allocations, before.allocations);

  std::vector<Value> wrong{Value(Tensor::borrow(DType::kFloat32, {5, 20}, storage.data()))};
  auto st = s->run_into(feeds, {}, wrong);
  EXPECT_NE(st.message().find("output 'output' is float [10,10], but its preallocated tensor is float [5,20]"),
            std::string::npos)
      << st.message();
  std::vector<Value> two{Value(dest), Value(dest)};
  EXPECT_FALSE(s->run_into(feeds, {}, two).is_ok());
}

TEST(Session, MissingKernelIsReportedAtCreation) {
  auto m = ir::testing::linear_func();
  m.graph.nodes[0].op_type = "NoSuchOp";
  m.graph.nodes[0].name = "weird";
  auto s = Session::create(std::move(m));
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("node 'weird' (NoSuchOp): kiln has no CPU kernel for NoSuchOp at opset 17"),
            std::string::npos)
      << s.status().message();
}

TEST(Session, UnsupportedDtypeIsReportedAtCreation) {
  auto x = make_tensor_value_info("x", DType::kInt32, std::vector<DimArg>{4});
  auto y = make_tensor_value_info("y", DType::kInt32, std::vector<DimArg>{4});
  auto s = Session::create(make_model(make_graph({make_node("Sin", {"x"}, {"y"}, "sine")}, "g", {x}, {y})));
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.status().message().find("node 'sine' (Sin) at opset 17: input 0 'x' has dtype int32, which kiln's "
                                      "CPU kernel for Sin does not support (supported: float, float16, double, "
                                      "bfloat16)"),
            std::string::npos)
      << s.status().message();
}

// A 3x3 Conv (8 -> 16 channels) then Relu: enough output planes to split across threads.
ir::Model conv_relu() {
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{"n", 8, 12, 12});
  auto y = make_tensor_value_info("y", DType::kFloat32, std::nullopt);
  std::vector<float> w(16 * 8 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(static_cast<float>(i)) * 0.1f;
  return make_model(make_graph(
      {make_node("Conv", {"x", "w"}, {"c"}, "conv", {make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1})}),
       make_node("Relu", {"c"}, {"y"}, "relu")},
      "conv_relu", {x}, {y}, {make_tensor<float>("w", {16, 8, 3, 3}, w)}));
}

TEST(Session, ThreadCountsGiveIdenticalResults) {
  Tensor x = filled({2, 8, 12, 12}, -1, 0.001f);
  std::vector<Tensor> results;
  for (int threads : {1, 2, 4}) {
    SessionOptions opts;
    opts.intra_op_threads = threads;
    opts.tune = false;  // the same kernel at every count (timing may pick another one per count)
    auto s = Session::create(conv_relu(), opts);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    auto out = (*s)->run({{"x", x}});
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    results.push_back((*out)[0]);
  }
  for (size_t k = 1; k < results.size(); ++k) {
    ASSERT_EQ(results[k].dims(), results[0].dims());
    EXPECT_EQ(0, std::memcmp(results[k].raw_data(), results[0].raw_data(), results[0].nbytes()));
  }
  SessionOptions bad;
  bad.intra_op_threads = -2;
  auto s = Session::create(conv_relu(), bad);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("intra_op_threads is -2"), std::string::npos) << s.status().message();
}

TEST(Session, ProfilingWritesAChromeTraceWithASpanPerNode) {
  SessionOptions opts;
  opts.enable_profiling = true;
  opts.optimization_level = 0;  // keep Relu a node of its own
  // The process id in the prefix: ctest runs this binary under several KILN_MAX_ISA caps at once.
  opts.profile_file_prefix = ::testing::TempDir() + "kiln_session_test_" + std::to_string(::getpid());
  auto s = std::move(Session::create(conv_relu(), opts)).value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->run({{"x", filled({1, 8, 12, 12}, 0, 0.01f)}}).is_ok());
  auto path = s->end_profiling();
  ASSERT_TRUE(path.is_ok()) << path.status().message();
  EXPECT_EQ(path->rfind(opts.profile_file_prefix + "_", 0), 0u) << *path;
  std::ifstream in(*path);
  std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = json.find(needle); at != std::string::npos; at = json.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(json.front(), '[');
  EXPECT_EQ(count("\"name\":\"model_run\""), 3u);
  EXPECT_EQ(count("\"name\":\"conv\",\"cat\":\"node\",\"ph\":\"X\""), 3u);
  // Each node's span names its op and the kernel that ran it (Relu's fast kernel needs the AVX2 tier).
  const std::string relu = cpu::default_isa() >= cpu::Isa::kAvx2 ? "relu.sse2" : "ref";
  EXPECT_EQ(count("\"op\":\"Relu\",\"kernel\":\"" + relu + "\",\"output_shape\":\"[1,16,12,12]\""), 3u);
  EXPECT_EQ(count("\"op\":\"Conv\",\"kernel\":\""), 3u);
  std::remove(path->c_str());

  auto plain = std::move(Session::create(conv_relu())).value();
  auto off = plain->end_profiling();
  ASSERT_FALSE(off.is_ok());
  EXPECT_NE(off.status().message().find("profiling is off"), std::string::npos);
}

// s = SplitToSequence(x) (rows of x), y = SequenceAt(s, pos): a sequence output next to a tensor output.
ir::Model split_rows() {
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{"n", 3});
  auto pos = make_tensor_value_info("pos", DType::kInt64, std::vector<DimArg>{});
  auto y = make_tensor_value_info("y", DType::kFloat32, std::nullopt);
  ir::ValueInfo s{"s", {}, ""};
  s.type.kind = ir::Type::Kind::kSequence;
  s.type.value_type = std::make_shared<ir::Type>(ir::Type::tensor(DType::kFloat32));
  return make_model(make_graph({make_node("SplitToSequence", {"x"}, {"s"}, "split", {make_attribute("keepdims", 0)}),
                                make_node("SequenceAt", {"s", "pos"}, {"y"}, "at")},
                               "rows", {x, pos}, {s, y}));
}

TEST(Session, SequenceValues) {
  auto s = std::move(Session::create(split_rows())).value();
  Tensor x = filled({4, 3}, 0, 1);
  Tensor pos = Tensor::from_vector<int64_t>({}, {-1});
  auto out = s->run_values({{"x", x}, {"pos", pos}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  ASSERT_TRUE((*out)[0].is_sequence());
  ASSERT_EQ((*out)[0].items().size(), 4u);
  EXPECT_EQ((*out)[0].items()[2].dims(), (std::vector<int64_t>{3}));
  EXPECT_FLOAT_EQ((*out)[0].items()[2].data<float>()[0], 6.0f);
  EXPECT_FLOAT_EQ((*out)[1].tensor().data<float>()[2], 11.0f);  // the last row

  // run() returns tensors only: asking for the sequence says which output and what to use instead.
  auto tensors = s->run({{"x", x}, {"pos", pos}});
  ASSERT_FALSE(tensors.is_ok());
  EXPECT_NE(tensors.status().message().find("output 's' is seq(tensor(float)) of 4, not a tensor: use run_values()"),
            std::string::npos)
      << tensors.status().message();
  auto y_only = s->run({{"x", x}, {"pos", pos}}, {"y"});
  ASSERT_TRUE(y_only.is_ok()) << y_only.status().message();

  // An out-of-range position names the node and the valid range.
  auto bad = s->run({{"x", x}, {"pos", Tensor::from_vector<int64_t>({}, {4})}}, {"y"});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("node 'at' (SequenceAt, opset 17): position 4 is out of range for a "
                                        "sequence of 4 tensors (valid: -4 to 3)"),
            std::string::npos)
      << bad.status().message();

  // A sequence fed where a tensor is expected is refused before running.
  auto wrong_kind = s->run_values({{"x", Value::sequence({x}, DType::kFloat32)}, {"pos", pos}});
  ASSERT_FALSE(wrong_kind.is_ok());
  EXPECT_NE(wrong_kind.status().message().find("input 'x' is seq(tensor(float)) of 1 but the model expects"),
            std::string::npos)
      << wrong_kind.status().message();
}

// y = sigmoid(x * x + x) - x with a dynamic length: enough nodes for buffers to be freed and reused.
ir::Model dynamic_chain() {
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{"n"});
  auto y = make_tensor_value_info("y", DType::kFloat32, std::vector<DimArg>{"n"});
  return make_model(make_graph({make_node("Mul", {"x", "x"}, {"xx"}), make_node("Add", {"xx", "x"}, {"s"}),
                                make_node("Sigmoid", {"s"}, {"g"}), make_node("Sub", {"g", "x"}, {"y"})},
                               "chain", {x}, {y}));
}

TEST(Session, ConcurrentRunsGiveIdenticalResults) {
  auto s = std::move(Session::create(dynamic_chain())).value();
  Tensor x = filled({4096}, -3, 0.001f);
  auto expected = s->run({{"x", x}});
  ASSERT_TRUE(expected.is_ok());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < 50; ++r) {
        auto out = s->run({{"x", x}});
        if (!out.is_ok() || !(*out)[0].equals((*expected)[0])) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

TEST(Session, MemoryStaysFlatOverRunsWithAlternatingShapes) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's quarantine keeps freed memory; measured in the plain build";
#endif
  auto s = std::move(Session::create(dynamic_chain())).value();
  Tensor small = filled({1000}, 0, 0.01f), big = filled({50000}, 0, 0.0001f);
  long after_warmup = 0;
  for (int r = 0; r < 1000; ++r) {
    auto out = s->run({{"x", r % 2 ? big : small}});
    ASSERT_TRUE(out.is_ok());
    if (r == 99) after_warmup = rss_kib();
  }
  const long growth = rss_kib() - after_warmup;
  EXPECT_LT(growth, 8 * 1024) << "RSS grew by " << growth << " KiB over 900 runs";
}

}  // namespace
}  // namespace kiln
