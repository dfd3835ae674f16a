// Concurrency stress, run in every build and under ThreadSanitizer by `make test-tsan`: one session run by many
// threads with different input shapes (kernel selection, tactic timing, memory plans and caches shared), sessions
// created and destroyed concurrently, and cancellation racing runs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../test_util.h"
#include "kiln/ir/builder.h"
#include "kiln/runtime/session.h"
#include "loop_models.h"

namespace kiln {
namespace {

using namespace ir::helper;
using testing::endless_loop;
using testing::random_tensor;

// x [N, 3, H, W] -> Conv 3x3 (8) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (4) -> Softmax: fast kernels
// where the CPU has them (oneDNN convolution, the blocked layout, SGEMM), timed on the first run of each shape.
ir::Model small_net(std::mt19937& rng) {
  return make_model(
      make_graph({make_node("Conv", {"x", "w", "b"}, {"c"}, "conv",
                            {make_attribute("pads", std::vector<int64_t>{1, 1, 1, 1})}),
                  make_node("Relu", {"c"}, {"r"}, "relu"), make_node("GlobalAveragePool", {"r"}, {"p"}, "pool"),
                  make_node("Flatten", {"p"}, {"f"}, "flatten"), make_node("Gemm", {"f", "g", "gb"}, {"s"}, "gemm"),
                  make_node("Softmax", {"s"}, {"y"}, "softmax")},
                 "net", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{"n", 3, "h", "w"})},
                 {make_tensor_value_info("y", DType::kFloat32, std::nullopt)},
                 {make_tensor("w", random_tensor({8, 3, 3, 3}, rng)), make_tensor("b", random_tensor({8}, rng)),
                  make_tensor("g", random_tensor({8, 4}, rng)), make_tensor("gb", random_tensor({4}, rng))}),
      {{"", 13}});
}

std::vector<float> values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

TEST(Concurrency, ManyThreadsRunOneSessionWithDifferentShapes) {
  std::mt19937 rng(31);
  const ir::Model model = small_net(rng);
  const std::vector<std::vector<int64_t>> shapes = {{1, 3, 8, 8}, {2, 3, 16, 16}, {1, 3, 12, 20}};
  std::vector<Tensor> inputs;
  std::vector<std::vector<float>> expected;
  {
    // Expected outputs: a session of its own per shape, on the reference kernels, one thread.
    SessionOptions ref;
    ref.reference_kernels = true;
    ref.intra_op_threads = 1;
    auto s = std::move(Session::create(model, ref)).value();
    for (const auto& dims : shapes) {
      inputs.push_back(random_tensor(dims, rng));
      auto out = s->run({{"x", inputs.back()}});
      ASSERT_TRUE(out.is_ok()) << out.status().message();
      expected.push_back(values((*out)[0]));
    }
  }
  SessionOptions opts;
  opts.intra_op_threads = 1;  // kiln's own concurrency: one thread per run (OpenMP is not instrumented for TSan)
  auto session = std::move(Session::create(model, opts)).value();
  constexpr int kThreads = 8, kRuns = 12;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        const size_t k = static_cast<size_t>(t + r) % shapes.size();
        auto out = session->run({{"x", inputs[k]}});
        if (!out.is_ok()) {
          ++failures;
          continue;
        }
        const std::vector<float> got = values((*out)[0]);
        for (size_t i = 0; i < got.size(); ++i) {
          if (!(std::abs(got[i] - expected[k][i]) <= 1e-4f + 1e-4f * std::abs(expected[k][i]))) {
            ++failures;
            break;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(Concurrency, SessionsAreCreatedAndDestroyedConcurrently) {
  std::mt19937 rng(32);
  const ir::Model model = small_net(rng);
  const Tensor x = random_tensor({1, 3, 10, 10}, rng);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < 6; ++r) {
        SessionOptions opts;
        opts.intra_op_threads = 1;
        auto s = Session::create(model, opts);
        if (!s.is_ok() || !(*s)->run({{"x", x}}).is_ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(Concurrency, CancellationRacesRuns) {
  SessionOptions opts;
  opts.intra_op_threads = 1;
  auto session = std::move(Session::create(endless_loop(), opts)).value();
  std::mt19937 rng(33);
  for (int round = 0; round < 10; ++round) {
    // Two runs share one RunOptions; the flag is set after a random delay (sometimes before they start).
    RunOptions ro;
    const int delay_us = static_cast<int>(rng() % 3000);
    std::atomic<int> cancelled{0};
    std::vector<std::thread> runs;
    for (int k = 0; k < 2; ++k) {
      runs.emplace_back([&] {
        auto out = session->run({}, {}, &ro);
        if (!out.is_ok() && out.status().code() == StatusCode::kCancelled) ++cancelled;
      });
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    ro.set_terminate();
    for (auto& th : runs) th.join();
    EXPECT_EQ(cancelled.load(), 2) << "round " << round;
  }
}

}  // namespace
}  // namespace kiln
