#include "kiln/core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace kiln {
namespace {

TEST(DType, NamesRoundTripForEveryType) {
  for (int32_t v = 1; v <= kMaxDType; ++v) {
    auto t = static_cast<DType>(v);
    auto back = dtype_from_name(dtype_name(t));
    ASSERT_TRUE(back.has_value()) << v;
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(dtype_from_name("float32"), DType::kFloat32);
  EXPECT_FALSE(dtype_from_name("float128").has_value());
  EXPECT_FALSE(dtype_is_valid(0));
  EXPECT_FALSE(dtype_is_valid(kMaxDType + 1));
}

TEST(DType, StorageSizes) {
  EXPECT_EQ(dtype_storage_bytes(DType::kFloat32, 3), 12u);
  EXPECT_EQ(dtype_storage_bytes(DType::kFloat16, 3), 6u);
  EXPECT_EQ(dtype_storage_bytes(DType::kComplex128, 2), 32u);
  EXPECT_EQ(dtype_storage_bytes(DType::kInt4, 3), 2u);  // packed, rounded up
  EXPECT_EQ(dtype_storage_bytes(DType::kString, 3), 0u);
  EXPECT_TRUE(dtype_is_float(DType::kBFloat16));
  EXPECT_TRUE(dtype_is_integer(DType::kUInt4));
  EXPECT_FALSE(dtype_is_integer(DType::kBool));
}

TEST(DType, HalfConversionIsExactOnRepresentableValuesAndRoundsToEven) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f}) {
    EXPECT_EQ(half_to_float(float_to_half(f)), f) << f;
  }
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 4096), float_to_half(1.0f));  // tie rounds to even
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  // Every half value survives half -> float -> half.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_half(f), h);
  }
}

TEST(DType, BFloat16Conversion) {
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(1.5f)), 1.5f);
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(-3.0f)), -3.0f);
  EXPECT_TRUE(std::isnan(bfloat16_to_float(float_to_bfloat16(NAN))));
  EXPECT_NEAR(bfloat16_to_float(float_to_bfloat16(3.14159f)), 3.14159f, 0.02f);
}

}  // namespace
}  // namespace kiln
