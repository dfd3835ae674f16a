// kiln check MODEL: ONNX's checker plus kiln's structural checks; one problem per line.
#include <iostream>

#include "commands.h"
#include "kiln/onnx/check.h"
#include "kiln/runtime/kernels.h"
#include "kiln/runtime/plan.h"

namespace kiln::cli {

void add_check(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("check", "Validate a model: ONNX checker, shape inference and kiln's checks");
  auto path = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  auto libraries = std::make_shared<std::vector<std::string>>();
  cmd->add_option("model", *path,
                  "The .onnx file, or a .kplan plan (its structure, CPU needs and every weight's checksum)")
      ->required();
  cmd->add_flag("-q,--quiet", *quiet, "Print only errors");
  add_custom_ops_option(cmd, *libraries);
  cmd->callback([&run, path, quiet, libraries] {
    run = [path, quiet, libraries] {
      if (is_plan_file(*path)) return check_plan(*path, *quiet);
      CustomOps custom;
      if (int code = load_custom_ops(*libraries, custom); code != kExitOk) return code;
      ir::Model model;
      int code = kExitOk;
      if (!load_or_report(*path, model, code)) return code;
      ir::Report report = onnx::check_model(model, &custom);
      if (report.valid()) report_unrunnable_nodes(model, report, &custom);
      for (const auto& p : report.problems) {
        if (*quiet && p.severity != ir::Problem::Severity::kError) continue;
        std::cout << p.to_string() << "\n";
      }
      size_t errors = report.count(ir::Problem::Severity::kError);
      if (errors) {
        std::cout << *path << ": invalid (" << errors << (errors == 1 ? " error" : " errors") << ")\n";
        return kExitInvalid;
      }
      if (!*quiet) {
        auto opset = model.opset("");
        std::cout << *path << ": valid (" << model.graph.nodes.size() << " nodes"
                  << (opset ? ", opset " + std::to_string(*opset) : std::string()) << ")\n";
      }
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
