// kiln extract MODEL -i IN -o OUT -O SUB.onnx: onnx.utils.extract_model, plus --add-outputs for debugging.
#include <iostream>

#include "commands.h"
#include "kiln/ir/extract.h"
#include "kiln/onnx/check.h"
#include "kiln/onnx/model_io.h"

namespace kiln::cli {

void add_extract(CLI::App& root, std::function<int()>& run) {
  auto* cmd =
      root.add_subcommand("extract", "Cut a sub-model between tensors, and/or expose intermediate values as outputs");
  struct Args {
    std::string model, out;
    std::vector<std::string> inputs, outputs, extra;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file")->required();
  cmd->add_option("-i,--inputs", a->inputs, "Comma-separated input tensor names of the sub-model");
  cmd->add_option("-o,--outputs", a->outputs, "Comma-separated output tensor names of the sub-model");
  cmd->add_option("--add-outputs", a->extra, "Comma-separated intermediate values to add as graph outputs");
  cmd->add_option("-O,--output-model", a->out, "Where to write the result")->required();
  cmd->callback([&run, a] {
    run = [a] {
      auto inputs = split_list(a->inputs);
      auto outputs = split_list(a->outputs);
      auto extra = split_list(a->extra);
      if (outputs.empty() && extra.empty()) {
        std::cerr << "kiln: extract needs -o/--outputs or --add-outputs\n";
        return kExitUsage;
      }
      ir::Model model;
      int code = kExitOk;
      if (!load_or_report(a->model, model, code)) return code;
      ir::Model typed = model;
      Status st = onnx::infer_shapes(typed);
      if (!st.is_ok()) return report_error(st.with_context(a->model));
      ir::Model result;
      if (!outputs.empty()) {
        auto sub = ir::extract_model(typed, inputs, outputs);
        if (!sub.is_ok()) return report_error(sub.status().with_context(a->model));
        result = std::move(sub).value();
      } else {
        if (!inputs.empty()) {
          std::cerr << "kiln: -i/--inputs needs -o/--outputs\n";
          return kExitUsage;
        }
        result = std::move(model);
      }
      st = ir::add_outputs(result, typed, extra);
      if (!st.is_ok()) return report_error(st.with_context(a->model));
      ir::Report report = onnx::check_model(result);
      if (!report.valid()) {
        for (const auto& p : report.problems) std::cerr << p.to_string() << "\n";
        std::cerr << "kiln: the extracted model would be invalid; nothing written\n";
        return kExitInvalid;
      }
      st = onnx::save_model(result, a->out);
      if (!st.is_ok()) return report_error(st);
      std::cout << "wrote " << a->out << " (" << result.graph.nodes.size() << " nodes, " << result.graph.inputs.size()
                << " inputs, " << result.graph.outputs.size() << " outputs)\n";
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
