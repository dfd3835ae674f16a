#include "kiln/core/tensor.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(Tensor, FromVectorToVectorRoundTrip) {
  auto t = Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  EXPECT_EQ(t.num_elements(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % kTensorAlignment, 0u);
  auto b = Tensor::from_vector<bool>({3}, {true, false, true});
  EXPECT_EQ(b.to_vector<bool>(), (std::vector<bool>{true, false, true}));
  auto s = Tensor::from_vector<std::string>({2}, {"a", "bc"});
  EXPECT_EQ(s.dtype(), DType::kString);
  EXPECT_EQ(s.strings()[1], "bc");
}

TEST(Tensor, AllocateIsZeroedAndRejectsBadShapes) {
  auto t = Tensor::allocate(DType::kInt64, {4});
  ASSERT_TRUE(t.is_ok());
  for (int64_t v : t->to_vector<int64_t>()) EXPECT_EQ(v, 0);
  EXPECT_FALSE(Tensor::allocate(DType::kFloat32, {-2, 3}).is_ok());
  auto huge = Tensor::allocate(DType::kFloat32, {INT64_MAX / 2, 4});
  ASSERT_FALSE(huge.is_ok());
  EXPECT_NE(huge.status().message().find("shape"), std::string::npos);
}

TEST(Tensor, BorrowedViewSharesMemoryCloneDoesNot) {
  float data[4] = {1, 2, 3, 4};
  Tensor v = Tensor::borrow(DType::kFloat32, {4}, data);
  data[0] = 9;
  EXPECT_EQ(v.data<float>()[0], 9);
  auto c = v.clone();
  ASSERT_TRUE(c.is_ok());
  data[0] = 1;
  EXPECT_EQ(c->data<float>()[0], 9);
  EXPECT_FALSE(c->equals(v));
  data[0] = 9;
  EXPECT_TRUE(c->equals(v));
}

TEST(Status, OrCarriesValueOrError) {
  StatusOr<int> ok = 3;
  EXPECT_TRUE(ok.is_ok());
  EXPECT_EQ(*ok, 3);
  StatusOr<int> bad = invalid_argument("input 'x' needs rank 4");
  EXPECT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().to_string(), "InvalidArgument: input 'x' needs rank 4");
  EXPECT_EQ(bad.status().with_context("model.onnx").message(), "model.onnx: input 'x' needs rank 4");
}

}  // namespace
}  // namespace kiln
