// The foundation against the ONNX node test suite (generated from python3-onnx at test time): every model
// loads, passes `kiln check`, and survives save -> load unchanged; every test tensor (.pb) loads with the
// dtype the model declares. (Running the cases is the runtime's conformance runner.)
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "kiln/onnx/check.h"
#include "kiln/onnx/model_io.h"

namespace kiln::onnx {
namespace {
namespace fs = std::filesystem;

std::vector<fs::path> cases() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(KILN_NODE_TESTS) / "node")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(NodeSuite, EveryModelLoadsChecksAndRoundTrips) {
  auto all = cases();
  ASSERT_GE(all.size(), 900u) << "the node suite was not generated in " << KILN_NODE_TESTS;
  std::vector<std::string> failures;
  size_t tensors = 0, non_tensor_files = 0;
  for (const auto& dir : all) {
    const std::string name = dir.filename().string();
    auto model = load_model((dir / "model.onnx").string());
    if (!model.is_ok()) {
      failures.push_back(name + ": load: " + model.status().message());
      continue;
    }
    auto report = check_model(*model);
    if (!report.valid()) {
      std::string msg;
      for (const auto& p : report.problems) msg += " | " + p.to_string();
      failures.push_back(name + ": check" + msg);
    }
    auto bytes = serialize_model(*model);
    if (!bytes.is_ok()) {
      failures.push_back(name + ": serialize: " + bytes.status().message());
      continue;
    }
    auto again = load_model_from_bytes(bytes->data(), bytes->size(), dir.string(), name);
    if (!again.is_ok() || *serialize_model(*again) != *bytes) {
      failures.push_back(name + ": save -> load -> save changed the model");
    }
    for (const auto& set : fs::directory_iterator(dir)) {
      if (!set.is_directory()) continue;
      for (const auto& f : fs::directory_iterator(set.path())) {
        const std::string file = f.path().filename().string();
        auto t = load_tensor(f.path().string());
        if (!t.is_ok()) {
          ++non_tensor_files;  // SequenceProto / OptionalProto data of the sequence and optional cases
          continue;
        }
        ++tensors;
        // input_K.pb matches the K-th non-initializer graph input's declared element type.
        bool is_input = file.rfind("input_", 0) == 0;
        size_t k = static_cast<size_t>(std::atoi(file.c_str() + (is_input ? 6 : 7)));
        const auto& list = is_input ? model->graph.inputs : model->graph.outputs;
        // onnx 1.12 writes bfloat16 test data as uint16 (numpy has no bfloat16): the same bits, another label.
        const bool bf16_as_uint16 =
            k < list.size() && list[k].type.elem_type == DType::kBFloat16 && t->tensor.dtype() == DType::kUInt16;
        if (k < list.size() && list[k].type.is_tensor() && list[k].type.elem_type != t->tensor.dtype() &&
            !bf16_as_uint16) {
          failures.push_back(name + "/" + file + ": dtype " + dtype_name(t->tensor.dtype()) +
                             " but the model declares " + dtype_name(list[k].type.elem_type));
        }
      }
    }
  }
  std::string text;
  for (const auto& f : failures) text += f + "\n";
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << all.size() << " cases failed:\n" << text;
  std::cout << all.size() << " models, " << tensors << " tensors loaded, " << non_tensor_files
            << " sequence/optional data files skipped\n";
  EXPECT_GT(tensors, 2000u);
}

}  // namespace
}  // namespace kiln::onnx
