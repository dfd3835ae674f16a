// Tactic selection (SessionOptions::tune): where two fast kernels can run a node, the session times both on the
// node's inputs, keeps the faster, remembers the choice for nodes of the same configuration, and reports its time.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "../test_util.h"
#include "kernels/isa.h"
#include "kernels/kernel.h"
#include "kiln/ir/builder.h"
#include "kiln/runtime/session.h"

namespace kiln {
namespace {

using namespace ir::helper;

using testing::random_tensor;

bool has_avx2() { return cpu::default_isa() >= cpu::Isa::kAvx2; }

// Three MatMuls by constant weights: two of one configuration ([64, 96] @ [96, 80]), one of another ([64, 80] @
// [80, 48]). The packed SGEMM and oneDNN's matmul can both run each.
ir::Model three_matmuls(std::mt19937& rng) {
  std::vector<ir::NamedTensor> inits{make_tensor("w1", random_tensor({96, 80}, rng)),
                                     make_tensor("w2", random_tensor({96, 80}, rng)),
                                     make_tensor("w3", random_tensor({80, 48}, rng))};
  std::vector<ir::Node> nodes{make_node("MatMul", {"x", "w1"}, {"a"}, "m1"),
                              make_node("MatMul", {"x", "w2"}, {"b"}, "m2"), make_node("Add", {"a", "b"}, {"s"}),
                              make_node("MatMul", {"s", "w3"}, {"y"}, "m3")};
  return make_model(make_graph(nodes, "g", {make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{64, 96})},
                               {make_tensor_value_info("y", DType::kFloat32, std::nullopt)}, inits),
                    {{"", 14}});
}

const KernelChoice* find(const std::vector<KernelChoice>& choices, const std::string& node) {
  for (const auto& c : choices) {
    if (c.node == node) return &c;
  }
  return nullptr;
}

TEST(Tuner, TimesEveryCandidateKeepsTheFastestAndTimesAConfigurationOnce) {
  if (!has_avx2()) GTEST_SKIP() << "the fast kernels need AVX2";
  std::mt19937 rng(5);
  auto session = std::move(Session::create(three_matmuls(rng))).value();
  const Tensor x = random_tensor({64, 96}, rng);
  ASSERT_TRUE(session->run({{"x", x}}).is_ok());
  const auto choices = session->kernel_choices();
  for (const char* name : {"m1", "m2", "m3"}) {
    SCOPED_TRACE(name);
    const KernelChoice* c = find(choices, name);
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->timings.size(), 2u) << "both matmul.sgemm and matmul.dnnl should have been timed";
    double best = -1;
    std::string fastest;
    for (const auto& [kernel, ms] : c->timings) {
      EXPECT_GT(ms, 0.0) << kernel << " failed";
      if (best < 0 || ms < best) {
        best = ms;
        fastest = kernel;
      }
    }
    EXPECT_EQ(c->kernel, fastest);
  }
  // m1 and m2 share a configuration: timed once, the same timings.
  EXPECT_EQ(find(choices, "m1")->timings, find(choices, "m2")->timings);
  EXPECT_EQ(session->tuned_configs(), 2);
  EXPECT_GT(session->tune_ms(), 0.0);
  // Later runs take the remembered choice without timing again.
  const double spent = session->tune_ms();
  ASSERT_TRUE(session->run({{"x", x}}).is_ok());
  EXPECT_EQ(session->tune_ms(), spent);
}

TEST(Tuner, OffOrOutOfBudgetTakesTheFirstGuess) {
  if (!has_avx2()) GTEST_SKIP() << "the fast kernels need AVX2";
  std::mt19937 rng(6);
  const ir::Model model = three_matmuls(rng);
  const Tensor x = random_tensor({64, 96}, rng);
  for (int variant = 0; variant < 2; ++variant) {
    SessionOptions options;
    if (variant == 0) options.tune = false;
    if (variant == 1) options.tune_budget_ms = 0;
    auto session = std::move(Session::create(model, options)).value();
    ASSERT_TRUE(session->run({{"x", x}}).is_ok());
    for (const auto& c : session->kernel_choices()) {
      if (c.op != "MatMul") continue;
      EXPECT_EQ(c.kernel, "matmul.sgemm") << c.node << ": the first guess for constant weights";
      EXPECT_TRUE(c.timings.empty()) << c.node;
    }
    EXPECT_EQ(session->tune_ms(), 0.0);
    EXPECT_EQ(session->tuned_configs(), 0);
  }
}

TEST(KernelCache, EraseBetweenDropsWhatWasMadeBetweenTwoMarks) {
  cpu::KernelCache cache(0);
  auto key = [](int64_t k) { return cpu::CacheKey{cpu::CacheEntry::kSgemmB, {k}}; };
  auto make = [](int v) { return [v]() -> StatusOr<std::shared_ptr<int>> { return std::make_shared<int>(v); }; };
  ASSERT_TRUE(cache.get<int>(key(1), make(1)).is_ok());
  const uint64_t a = cache.mark();
  ASSERT_TRUE(cache.get<int>(key(2), make(2)).is_ok());
  ASSERT_TRUE(cache.get<int>(key(3), make(3)).is_ok());
  const uint64_t b = cache.mark();
  ASSERT_TRUE(cache.get<int>(key(4), make(4)).is_ok());
  cache.erase_between(a, b);
  int made = 0;
  auto counting = [&made](int v) {
    return [v, &made]() -> StatusOr<std::shared_ptr<int>> {
      ++made;
      return std::make_shared<int>(v);
    };
  };
  for (int64_t k : {1, 2, 3, 4}) ASSERT_TRUE(cache.get<int>(key(k), counting(static_cast<int>(k * 10))).is_ok());
  EXPECT_EQ(made, 2) << "keys 2 and 3 were erased and made again; 1 and 4 were kept";
  EXPECT_EQ(**cache.get<int>(key(1), counting(0)), 1);
  EXPECT_EQ(**cache.get<int>(key(2), counting(0)), 20);
}

}  // namespace
}  // namespace kiln
