// Builds the tutorial's `output = a*x + b` model with kiln's onnx.helper-like API, checks it and saves it.
//   linear_func [OUT.onnx]      (default: linear_func.onnx)
#include <iostream>

#include "kiln/ir/builder.h"
#include "kiln/onnx/check.h"
#include "kiln/onnx/model_io.h"

int main(int argc, char** argv) {
  using namespace kiln;
  using namespace kiln::ir::helper;
  const std::string path = argc > 1 ? argv[1] : "linear_func.onnx";

  auto a = make_tensor_value_info("a", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto x = make_tensor_value_info("x", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto b = make_tensor_value_info("b", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto output = make_tensor_value_info("output", DType::kFloat32, std::vector<DimArg>{10, 10});
  auto mul = make_node("Mul", {"a", "x"}, {"c"});
  auto add = make_node("Add", {"c", "b"}, {"output"});
  auto graph = make_graph({mul, add}, "linear_func", {a, x, b}, {output});
  auto model = make_model(std::move(graph));

  auto report = onnx::check_model(model);
  for (const auto& p : report.problems) std::cerr << p.to_string() << "\n";
  if (!report.valid()) return 1;
  auto st = onnx::save_model(model, path);
  if (!st.is_ok()) {
    std::cerr << st.message() << "\n";
    return 1;
  }
  std::cout << "Model correct; saved " << path << "\n";
  return 0;
}
