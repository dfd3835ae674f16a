// kiln convert MODEL -O OUT: load into kiln's IR and save back, optionally moving weights to external data.
#include <iostream>

#include "commands.h"
#include "kiln/onnx/model_io.h"

namespace kiln::cli {

void add_convert(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("convert", "Re-save a model through kiln (inline or external weights)");
  struct Args {
    std::string model, out;
    bool external = false;
    size_t threshold = 1024;
    std::string location;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file")->required();
  cmd->add_option("-O,--output", a->out, "Where to write the model")->required();
  cmd->add_flag("--external-data", a->external, "Write large tensors to a separate data file");
  cmd->add_option("--size-threshold", a->threshold, "Bytes from which a tensor goes to external data (1024)");
  cmd->add_option("--location", a->location, "External data file name, relative to OUT (default OUT.data)");
  cmd->callback([&run, a] {
    run = [a] {
      ir::Model model;
      int code = kExitOk;
      if (!load_or_report(a->model, model, code)) return code;
      onnx::SaveOptions opt;
      opt.external_data = a->external;
      opt.size_threshold = a->threshold;
      opt.location = a->location;
      Status st = onnx::save_model(model, a->out, opt);
      if (!st.is_ok()) return report_error(st);
      std::cout << "wrote " << a->out << "\n";
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
