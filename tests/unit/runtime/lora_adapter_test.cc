// LoRA adapters (ONNX Runtime's .onnx_adapter format): written and read back, every truncation and a wrong
// identifier or format version refused with an error, and a session fed the parameters of active adapters.
#include "kiln/runtime/lora_adapter.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>

#include "kiln/ir/builder.h"
#include "kiln/runtime/session.h"

namespace kiln {
namespace {

using namespace ir::helper;

LoraAdapter two_params() {
  LoraAdapter a;
  a.adapter_version = 3;
  a.model_version = 7;
  a.parameters.emplace_back("a", Tensor::from_vector<float>({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}));
  a.parameters.emplace_back("b", Tensor::from_vector<float>({2, 4}, {1, 0, 0, 0, 0, 1, 0, 0}));
  return a;
}

TEST(LoraAdapter, WrittenAndReadBack) {
  const LoraAdapter a = two_params();
  auto bytes = a.serialize();
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  EXPECT_EQ(bytes->substr(4, 4), "TORT");
  auto b = LoraAdapter::from_bytes(bytes->data(), bytes->size());
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b->format_version, 1);
  EXPECT_EQ(b->adapter_version, 3);
  EXPECT_EQ(b->model_version, 7);
  ASSERT_EQ(b->parameters.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(b->parameters[i].first, a.parameters[i].first);
    EXPECT_TRUE(b->parameters[i].second.equals(a.parameters[i].second));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->parameters[i].second.raw_data()) % 8, 0u);
  }
  // The process id in the name: ctest runs this binary under several KILN_MAX_ISA caps at once.
  const std::string path = ::testing::TempDir() + "/kiln_lora_test_" + std::to_string(::getpid()) + ".onnx_adapter";
  ASSERT_TRUE(a.save(path).is_ok());
  auto c = LoraAdapter::load(path);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_TRUE(c->parameters[1].second.equals(a.parameters[1].second));
  std::remove(path.c_str());
  auto missing = LoraAdapter::load(path);
  EXPECT_NE(missing.status().message().find("cannot open LoRA adapter '" + path + "'"), std::string::npos);
}

TEST(LoraAdapter, CorruptOrForeignBytesAreRefused) {
  const std::string bytes = *two_params().serialize();
  // Every truncation is refused, unless it only drops trailing padding and reads back the same adapter.
  const LoraAdapter whole = two_params();
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = LoraAdapter::from_bytes(bytes.data(), n, "cut");
    if (r.is_ok()) {
      ASSERT_EQ(r->parameters.size(), 2u) << "truncated to " << n << " bytes";
      EXPECT_TRUE(r->parameters[1].second.equals(whole.parameters[1].second)) << "truncated to " << n << " bytes";
    } else {
      EXPECT_EQ(r.status().message().rfind("cut: ", 0), 0u) << r.status().message();
    }
  }
  std::string foreign = bytes;
  foreign[4] = 'X';
  auto r = LoraAdapter::from_bytes(foreign.data(), foreign.size(), "f.onnx_adapter");
  EXPECT_NE(r.status().message().find("f.onnx_adapter: not an ONNX Runtime LoRA adapter"), std::string::npos);
  LoraAdapter future = two_params();
  future.format_version = 2;
  const std::string v2 = *future.serialize();
  r = LoraAdapter::from_bytes(v2.data(), v2.size());
  EXPECT_NE(r.status().message().find("format version 2; kiln reads version 1"), std::string::npos)
      << r.status().message();
  LoraAdapter twice = two_params();
  twice.parameters.push_back(twice.parameters[0]);
  EXPECT_NE(twice.serialize().status().message().find("'a' appears twice"), std::string::npos);
}

ir::NamedTensor named(std::string name, Tensor t) {
  ir::NamedTensor n;
  n.name = std::move(name);
  n.tensor = std::move(t);
  return n;
}

// y = x @ W + (x @ a) @ b, with a [4, 0] and b [0, 4] as the base model's (empty) LoRA parameters.
ir::Model lora_model() {
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{1, 4});
  auto a = make_tensor_value_info("a", DType::kFloat32, std::vector<DimArg>{4, "r"});
  auto b = make_tensor_value_info("b", DType::kFloat32, std::vector<DimArg>{"r", 4});
  auto y = make_tensor_value_info("y", DType::kFloat32, std::vector<DimArg>{1, 4});
  std::vector<float> w(16, 0.0f);
  for (int i = 0; i < 4; ++i) w[static_cast<size_t>(i * 5)] = 1.0f;  // identity
  auto g =
      make_graph({make_node("MatMul", {"x", "W"}, {"xw"}), make_node("MatMul", {"x", "a"}, {"xa"}),
                  make_node("MatMul", {"xa", "b"}, {"xab"}), make_node("Add", {"xw", "xab"}, {"y"})},
                 "lora", {x, a, b}, {y},
                 {named("W", Tensor::from_vector<float>({4, 4}, w)), named("a", Tensor::from_vector<float>({4, 0}, {})),
                  named("b", Tensor::from_vector<float>({0, 4}, {}))});
  return make_model(g, {{"", 13}});
}

TEST(LoraAdapter, ActiveAdaptersFeedTheirParameters) {
  auto s = std::move(Session::create(lora_model())).value();
  const Tensor x = Tensor::from_vector<float>({1, 4}, {1, 1, 1, 1});
  auto base = s->run({{"x", x}});
  ASSERT_TRUE(base.is_ok()) << base.status().message();
  EXPECT_EQ((*base)[0].to_vector<float>(), (std::vector<float>{1, 1, 1, 1}));

  RunOptions ro;
  ro.add_active_adapter(std::make_shared<const LoraAdapter>(two_params()));
  auto tuned = s->run({{"x", x}}, {}, &ro);
  ASSERT_TRUE(tuned.is_ok()) << tuned.status().message();
  // x @ a = [16, 20]; (x @ a) @ b = [16, 20, 0, 0].
  EXPECT_EQ((*tuned)[0].to_vector<float>(), (std::vector<float>{17, 21, 1, 1}));

  auto again = s->run({{"x", x}, {"a", Tensor::from_vector<float>({4, 0}, {})}}, {}, &ro);
  EXPECT_NE(again.status().message().find("parameter 'a' is an input that the run already feeds"), std::string::npos)
      << again.status().message();
  LoraAdapter stray;
  stray.parameters.emplace_back("q", Tensor::from_vector<float>({1}, {0}));
  RunOptions bad;
  bad.add_active_adapter(std::make_shared<const LoraAdapter>(stray));
  auto r = s->run({{"x", x}}, {}, &bad);
  EXPECT_NE(r.status().message().find("parameter 'q' is not an input of the model"), std::string::npos);
}

}  // namespace
}  // namespace kiln
