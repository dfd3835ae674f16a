// The run memory plan: the first run of a signature records, the next ones place node outputs in one arena.
#include <gtest/gtest.h>

#include <optional>

#include "runtime/memory_plan.h"

namespace kiln {
namespace {

struct Observed {
  const uint8_t* a = nullptr;
  const uint8_t* b = nullptr;
  const uint8_t* c = nullptr;
  Tensor d;  // escapes the run, like a graph output
};

// Four node outputs: a (step 0, freed after step 1), b (steps 1-2), c (step 2, after a is gone: it may take
// a's bytes) and d (step 3, still alive when the run ends).
Observed run_once(MemoryPlanner& planner, const MemoryPlanner::Signature& sig) {
  Observed o;
  RunMemory mem(&planner, sig);
  std::optional<Tensor> a, b, c;
  mem.set_step(0);
  a = *mem.allocate(0, 0, DType::kFloat32, {256});
  mem.set_step(1);
  b = *mem.allocate(1, 0, DType::kFloat32, {256});
  o.a = static_cast<const uint8_t*>(a->raw_data());
  o.b = static_cast<const uint8_t*>(b->raw_data());
  a.reset();
  mem.set_step(2);
  c = *mem.allocate(2, 0, DType::kFloat32, {200});
  o.c = static_cast<const uint8_t*>(c->raw_data());
  c.reset();
  b.reset();
  mem.set_step(3);
  o.d = *mem.allocate(3, 0, DType::kFloat32, {16});
  std::vector<Value> outputs{Value(o.d)};
  EXPECT_TRUE(mem.finish(outputs).is_ok());
  o.d = outputs[0].tensor();
  return o;
}

TEST(MemoryPlan, LaterRunsOfASignaturePlaceOutputsInOneArena) {
  MemoryPlanner planner;
  const MemoryPlanner::Signature sig{{1, 3, 8, 8}};
  run_once(planner, sig);  // records
  auto pattern = planner.find(sig);
  ASSERT_NE(pattern, nullptr);
  // a and b live at the same time: two blocks of 1024 bytes; c reuses one of them; d escapes (heap).
  EXPECT_EQ(pattern->total, 2048u);
  EXPECT_EQ(pattern->blocks.size(), 3u);
  const Observed first = run_once(planner, sig);
  const Observed second = run_once(planner, sig);
  EXPECT_NE(first.a, first.b);
  EXPECT_EQ(first.c, first.a);   // c reuses a's bytes
  EXPECT_EQ(second.a, first.a);  // the same arena again: nothing allocated in the steady state
  EXPECT_EQ(second.b, first.b);
  const uint8_t* d = static_cast<const uint8_t*>(first.d.raw_data());
  EXPECT_TRUE(d < first.a || d >= first.a + 2048) << "the escaping output must not live in the arena";
}

TEST(MemoryPlan, ANewSignatureRecordsAgainAndUnforeseenRequestsUseTheHeap) {
  MemoryPlanner planner;
  run_once(planner, {{1}});
  EXPECT_EQ(planner.find({{2}}), nullptr);
  RunMemory mem(&planner, {{1}});
  mem.set_step(0);
  // Bigger than the recorded block: served from the heap, and an output in the arena is copied out at the end.
  auto big = mem.allocate(0, 0, DType::kFloat32, {4096});
  ASSERT_TRUE(big.is_ok());
  auto planned = mem.allocate(1, 0, DType::kFloat32, {256});
  ASSERT_TRUE(planned.is_ok());
  planned->data<float>()[0] = 42.0f;
  std::vector<Value> outputs{Value(*planned)};
  const void* before = planned->raw_data();
  ASSERT_TRUE(mem.finish(outputs).is_ok());
  EXPECT_NE(outputs[0].tensor().raw_data(), before);
  EXPECT_EQ(outputs[0].tensor().data<float>()[0], 42.0f);
}

// z (step 0) dies at step 1, where y may take it over: y gets z's bytes from the second run on. w (step 1) is
// alive with both and must not; v (step 2) may take over y, which dies there, but is bigger: it may not.
struct InPlace {
  const uint8_t *z, *y, *w, *v;
};
InPlace run_in_place(MemoryPlanner& planner, bool allow) {
  InPlace o{};
  RunMemory mem(&planner, {{7}});
  mem.set_step(0);
  std::optional<Tensor> z = *mem.allocate(0, 0, DType::kFloat32, {64});
  mem.set_step(1);
  std::optional<Tensor> w = *mem.allocate(1, 1, DType::kFloat32, {64});
  std::optional<Tensor> y = *mem.allocate(1, 0, DType::kFloat32, {64}, allow ? z->raw_data() : nullptr);
  o.z = static_cast<const uint8_t*>(z->raw_data());
  o.y = static_cast<const uint8_t*>(y->raw_data());
  o.w = static_cast<const uint8_t*>(w->raw_data());
  z.reset();
  mem.set_step(2);
  std::optional<Tensor> v = *mem.allocate(2, 0, DType::kFloat32, {128}, y->raw_data());
  o.v = static_cast<const uint8_t*>(v->raw_data());
  y.reset();
  w.reset();
  v.reset();
  mem.set_step(3);
  std::vector<Value> outputs{Value(*mem.allocate(3, 0, DType::kFloat32, {1}))};
  EXPECT_TRUE(mem.finish(outputs).is_ok());
  return o;
}

TEST(MemoryPlan, AnOutputTakesOverTheBytesOfAnInputThatDiesAtItsNode) {
  MemoryPlanner planner;
  const InPlace recorded = run_in_place(planner, true);
  EXPECT_NE(recorded.y, recorded.z);  // the recording run allocates from the heap
  const InPlace replayed = run_in_place(planner, true);
  EXPECT_EQ(replayed.y, replayed.z);
  EXPECT_NE(replayed.w, replayed.z);
  EXPECT_NE(replayed.v, replayed.y);  // bigger than the group: a place of its own
  EXPECT_EQ(planner.find({{7}})->total, 2u * 256 + 512);

  MemoryPlanner without;
  run_in_place(without, false);
  const InPlace separate = run_in_place(without, false);
  EXPECT_NE(separate.y, separate.z);
}

}  // namespace
}  // namespace kiln
