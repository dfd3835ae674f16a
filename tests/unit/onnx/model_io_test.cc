#include "kiln/onnx/model_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "kiln/ir/builder.h"
#include "kiln/onnx/check.h"

namespace kiln::onnx {
namespace {
namespace fs = std::filesystem;

class ModelIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_io_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  fs::path dir_;
};

ir::Model model_with_weights() {
  using namespace ir::helper;
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{"batch", 4});
  auto y = make_tensor_value_info("y", DType::kFloat32, std::vector<DimArg>{"batch", 4});
  std::vector<float> w(4 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.25f;
  auto g = make_graph({make_node("MatMul", {"x", "w"}, {"xw"}), make_node("Add", {"xw", "bias"}, {"y"})}, "mm", {x},
                      {y}, {make_tensor<float>("w", {4, 4}, w), make_tensor<float>("bias", {4}, {1, 2, 3, 4})});
  auto m = make_model(std::move(g), {{"", 13}});
  m.producer_name = "kiln-test";
  return m;
}

TEST_F(ModelIoTest, SaveLoadRoundTripKeepsEverything) {
  auto m = model_with_weights();
  m.metadata_props = {{"author", "kiln"}};
  ASSERT_TRUE(save_model(m, path("m.onnx")).is_ok());
  auto back = load_model(path("m.onnx"));
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->producer_name, "kiln-test");
  EXPECT_EQ(back->metadata_props, m.metadata_props);
  EXPECT_EQ(back->graph.inputs[0].type, m.graph.inputs[0].type);
  ASSERT_EQ(back->graph.initializers.size(), 2u);
  EXPECT_TRUE(back->graph.initializers[0].tensor.equals(m.graph.initializers[0].tensor));
  // Serializing the loaded model gives the same bytes as serializing the original.
  EXPECT_EQ(*serialize_model(*back), *serialize_model(m));
  EXPECT_TRUE(check_model(*back).valid());
}

TEST_F(ModelIoTest, ExternalDataRoundTrip) {
  auto m = model_with_weights();
  SaveOptions opt;
  opt.external_data = true;
  opt.size_threshold = 32;
  ASSERT_TRUE(save_model(m, path("ext.onnx"), opt).is_ok());
  ASSERT_TRUE(fs::exists(path("ext.onnx.data")));
  auto back = load_model(path("ext.onnx"));
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->graph.initializers[0].external_location, "ext.onnx.data");
  EXPECT_TRUE(back->graph.initializers[0].tensor.equals(m.graph.initializers[0].tensor));
  EXPECT_TRUE(back->graph.initializers[1].external_location.empty());  // 16 bytes < threshold

  fs::remove(path("ext.onnx.data"));
  auto missing = load_model(path("ext.onnx"));
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("ext.onnx.data"), std::string::npos) << missing.status().message();
  EXPECT_NE(missing.status().message().find("'w'"), std::string::npos) << missing.status().message();
}

TEST_F(ModelIoTest, BadBytesGiveClearErrors) {
  write("empty.onnx", "");
  auto e = load_model(path("empty.onnx"));
  ASSERT_FALSE(e.is_ok());
  EXPECT_NE(e.status().message().find("empty.onnx"), std::string::npos);
  EXPECT_NE(e.status().message().find("empty"), std::string::npos);

  std::mt19937 rng(0);
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  write("noise.onnx", noise);
  auto n = load_model(path("noise.onnx"));
  ASSERT_FALSE(n.is_ok());
  EXPECT_NE(n.status().message().find("noise.onnx"), std::string::npos);

  auto good = serialize_model(model_with_weights());
  ASSERT_TRUE(good.is_ok());
  write("cut.onnx", good->substr(0, good->size() / 2));
  auto t = load_model(path("cut.onnx"));
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("cut.onnx"), std::string::npos);

  auto none = load_model(path("does_not_exist.onnx"));
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
}

TEST_F(ModelIoTest, TensorClaimingAHugeShapeWithoutDataIsAnError) {
  // A TensorProto with dims [10^12] and data_type FLOAT but no values: must be refused before any allocation.
  std::string bytes = {0x08};
  for (uint64_t v = 1000000000000ull; v >= 0x80; v >>= 7) bytes += static_cast<char>((v & 0x7f) | 0x80);
  bytes += static_cast<char>(1000000000000ull >> 35);
  bytes += {0x10, 0x01};
  write("huge.pb", bytes);
  auto t = load_tensor(path("huge.pb"));
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("huge.pb"), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("needs 1000000000000"), std::string::npos) << t.status().message();
}

TEST_F(ModelIoTest, FailedSaveLeavesNothingBehind) {
  auto m = model_with_weights();
  auto st = save_model(m, path("no_such_dir/m.onnx"));
  EXPECT_FALSE(st.is_ok());
  EXPECT_FALSE(fs::exists(path("no_such_dir")));
  // Nothing but what we wrote is in the folder after a successful save either (no temporaries).
  ASSERT_TRUE(save_model(m, path("ok.onnx")).is_ok());
  size_t files = 0;
  for (auto& entry : fs::directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 1u);
}

// A model whose weights exceed 2 GiB (generated by tests/models/gen_models.py, in a sparse file) loads
// through a memory mapping without reading the data.
TEST(ModelIo, ExternalDataOverTwoGiBLoadsMapped) {
  const std::string p = std::string(KILN_TEST_MODELS) + "/huge_external.onnx";
  auto m = load_model(p);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const Tensor& big = m->graph.initializers.at(0).tensor;
  const int64_t n = (int64_t{1} << 29) + 16;
  ASSERT_EQ(big.dims(), std::vector<int64_t>{n});
  EXPECT_GT(big.nbytes(), size_t{2} << 30);
  EXPECT_EQ(big.data<float>()[0], 0.0f);
  EXPECT_EQ(big.data<float>()[n - 1], 7.5f);
}

}  // namespace
}  // namespace kiln::onnx
