#include <iostream>

#include "commands.h"
#include "kiln/onnx/model_io.h"
#include "kiln/optimizer/optimizer.h"

namespace kiln::cli {

void add_opt_level_option(CLI::App* cmd, std::string& level) {
  cmd->add_option("--opt-level", level,
                  "Graph optimization level: disabled, basic, extended or all (0, 1, 2, 99; default all)")
      ->check([](const std::string& text) {
        auto parsed = opt::parse_level(text);
        return parsed.is_ok() ? std::string() : parsed.status().message();
      });
}

int report_error(const Status& status) {
  std::cerr << "kiln: " << status.message() << "\n";
  return status.code() == StatusCode::kIoError ? kExitUsage : kExitInvalid;
}

bool load_or_report(const std::string& path, ir::Model& model, int& exit_code) {
  auto loaded = onnx::load_model(path);
  if (!loaded.is_ok()) {
    std::cerr << "kiln: " << loaded.status().message() << "\n";
    // A file that cannot be read or is not an ONNX model at all is an input error (2); a model whose
    // content is malformed (tensor sizes, attribute types) is an invalid model (1).
    exit_code = loaded.status().code() == StatusCode::kInvalidModel ? kExitInvalid : kExitUsage;
    return false;
  }
  model = std::move(loaded).value();
  return true;
}

std::vector<std::string> split_list(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    size_t start = 0;
    while (start <= item.size()) {
      size_t comma = item.find(',', start);
      if (comma == std::string::npos) comma = item.size();
      if (comma > start) out.push_back(item.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace kiln::cli
