// kiln optimize MODEL -O OUT [--opt-level L] [--pass NAME]...: writes the graph kiln runs, after the
// optimizer, so it can be inspected (kiln show, Netron). Fused operators are in the ai.kiln domain.
#include <iostream>

#include "commands.h"
#include "kiln/onnx/model_io.h"
#include "kiln/optimizer/optimizer.h"

namespace kiln::cli {

void add_optimize(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("optimize", "Write the optimized graph kiln runs (fused ops in ai.kiln)");
  struct Args {
    std::string model, out, opt_level = "all";
    std::vector<std::string> passes;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file")->required();
  cmd->add_option("-O,--output", a->out, "Where to write the optimized model")->required();
  add_opt_level_option(cmd, a->opt_level);
  cmd->add_option("--pass", a->passes, "Run only these passes, in this order (repeat or a,b,c)");
  cmd->callback([&run, a] {
    run = [a] {
      ir::Model model;
      int code = kExitOk;
      if (!load_or_report(a->model, model, code)) return code;
      const size_t before = model.graph.nodes.size();
      std::vector<opt::PassStat> stats;
      if (a->passes.empty()) {
        auto report = opt::optimize(model, *opt::parse_level(a->opt_level));
        if (!report.is_ok()) return report_error(report.status());
        stats = report->passes;
      } else {
        for (const auto& name : split_list(a->passes)) {
          auto n = opt::run_pass(model, name);
          if (!n.is_ok()) return report_error(n.status());
          stats.push_back({name, *n});
        }
      }
      for (const auto& s : stats) std::cout << "  " << s.pass << ": " << s.rewrites << "\n";
      Status st = onnx::save_model(model, a->out);
      if (!st.is_ok()) return report_error(st);
      std::cout << "nodes " << before << " -> " << model.graph.nodes.size() << "; wrote " << a->out << "\n";
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
