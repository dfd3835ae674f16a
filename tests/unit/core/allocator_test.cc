#include "kiln/core/allocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace kiln {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

TEST(Allocator, ScratchUnder256KiBIsRoundedToTheTensorAlignment) {
  for (size_t ask : {size_t{0}, size_t{1}, size_t{100}, size_t{4096}, (size_t{256} << 10) - 1}) {
    size_t bytes = ask;
    void* p = allocate_scratch(&bytes);
    ASSERT_NE(p, nullptr) << ask;
    EXPECT_GE(bytes, ask);
    EXPECT_GT(bytes, 0u);
    EXPECT_LT(bytes, ask + kTensorAlignment + 1);
    EXPECT_EQ(bytes % kTensorAlignment, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kTensorAlignment, 0u);
    std::memset(p, 1, bytes);  // all of it is the caller's (ASan checks)
    std::free(p);
  }
}

TEST(Allocator, LargeScratchIsWholeHugePages) {
  // The 1.6 MiB scratchpad of ResNet-50's first convolution, one byte over a huge page, several.
  for (size_t ask : {size_t{256} << 10, size_t{1605760}, kHugePage, kHugePage + 1, 5 * kHugePage - 7}) {
    size_t bytes = ask;
    void* p = allocate_scratch(&bytes);
    ASSERT_NE(p, nullptr) << ask;
    EXPECT_EQ(bytes, (ask + kHugePage - 1) / kHugePage * kHugePage) << ask;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePage, 0u) << ask;
    std::memset(p, 1, bytes);
    std::free(p);
  }
}

}  // namespace
}  // namespace kiln
