#include "kiln/core/shape.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(Shape, StaticAndSymbolicDims) {
  Shape s{Dim::symbolic("batch"), 3, Dim(), 224};
  EXPECT_EQ(s.rank(), 4u);
  EXPECT_FALSE(s.is_static());
  EXPECT_EQ(s.to_string(), "[batch,3,?,224]");
  EXPECT_FALSE(s.num_elements().has_value());
  Shape t = Shape::from_dims({1, 3, 224, 224});
  EXPECT_TRUE(t.is_static());
  EXPECT_EQ(*t.num_elements(), 150528);
  EXPECT_EQ(Shape().to_string(), "[]");
  EXPECT_EQ(*Shape().num_elements(), 1);
}

TEST(Shape, CheckedElementCountRejectsNegativeAndOverflow) {
  EXPECT_FALSE(checked_num_elements({-1, 3}).has_value());
  EXPECT_FALSE(checked_num_elements({INT64_MAX, 2}).has_value());
  EXPECT_EQ(*checked_num_elements({0, INT64_MAX}), 0);
}

}  // namespace
}  // namespace kiln
