#include "kiln/core/npy.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(Npy, RoundTripKeepsDtypeShapeAndValues) {
  auto t = Tensor::from_vector<int64_t>({2, 3}, {1, -2, 3, -4, 5, -6});
  auto bytes = to_npy(t);
  ASSERT_TRUE(bytes.is_ok());
  EXPECT_EQ(bytes->substr(0, 6), "\x93NUMPY");
  EXPECT_NE(bytes->find("'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }"), std::string::npos);
  EXPECT_EQ((bytes->size() - t.nbytes()) % 64, 0u);
  auto back = parse_npy(*bytes);
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_TRUE(back->equals(t));
  auto scalar = parse_npy(*to_npy(Tensor::from_vector<float>({}, {2.5f})));
  ASSERT_TRUE(scalar.is_ok());
  EXPECT_EQ(scalar->rank(), 0u);
  EXPECT_EQ(scalar->data<float>()[0], 2.5f);
}

TEST(Npy, BadFilesAreErrorsNamingTheFile) {
  EXPECT_NE(parse_npy("hello", "in.npy").status().message().find("in.npy"), std::string::npos);
  auto bytes = *to_npy(Tensor::from_vector<float>({4}, {1, 2, 3, 4}));
  auto cut = parse_npy(bytes.substr(0, bytes.size() - 3), "cut.npy");
  ASSERT_FALSE(cut.is_ok());
  EXPECT_NE(cut.status().message().find("needs 16 bytes"), std::string::npos) << cut.status().message();
  std::string big = bytes;
  big.replace(big.find("<f4"), 3, ">f4");
  EXPECT_EQ(parse_npy(big, "be.npy").status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace kiln
