#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>

#include "commands.h"
#include "kiln/onnx/model_io.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/plan.h"

namespace kiln::cli {
namespace {

// "1x3x224x224" -> dims.
StatusOr<std::vector<int64_t>> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  size_t at = 0;
  while (at <= text.size()) {
    size_t x = text.find('x', at);
    std::string part = text.substr(at, x == std::string::npos ? std::string::npos : x - at);
    char* end = nullptr;
    long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || end != part.c_str() + part.size() || v < 0) {
      return invalid_argument("shape '" + text + "' must be dims separated by 'x', such as 1x3x224x224");
    }
    dims.push_back(v);
    if (x == std::string::npos) break;
    at = x + 1;
  }
  return dims;
}

}  // namespace

ProgressBar::ProgressBar() : tty_(isatty(STDERR_FILENO) != 0) {}

void ProgressBar::update(const std::string& stage, double fraction) {
  if (!tty_) {
    if (stage != last_) std::fprintf(stderr, "  %s...\n", stage.c_str());
    last_ = stage;
    return;
  }
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth + 0.5);
  std::fprintf(stderr, "\r  [%s%s] %3d%% %-12s", std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), ' ').c_str(), static_cast<int>(fraction * 100 + 0.5),
               stage.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (tty_) std::fprintf(stderr, "\n");
}

void add_precision_option(CLI::App* cmd, std::string& precision) {
  cmd->add_option("--precision", precision,
                  "fp32 (default), or bf16: convolutions and matrix products may multiply in bfloat16 with fp32 "
                  "accumulation where the CPU has AVX512-BF16 or AMX (elsewhere fp32, said once)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
}

void add_disable_kernel_option(CLI::App* cmd, std::vector<std::string>& kernels) {
  cmd->add_option("--disable-kernel", kernels,
                  "NAME: never select this fast kernel (nchwc_conv.dnnl, matmul.sgemm, ...: kiln optimize "
                  "--print-kernels lists them), to work around one or to measure another; repeat");
}

void add_opt_level_option(CLI::App* cmd, std::string& level) {
  cmd->add_option("--opt-level", level,
                  "Graph optimization level: disabled, basic, extended or all (0, 1, 2, 99; default all)")
      ->check([](const std::string& text) {
        auto parsed = opt::parse_level(text);
        return parsed.is_ok() ? std::string() : parsed.status().message();
      });
}

int exit_code_for(const Status& status) {
  switch (status.code()) {
    case StatusCode::kIoError: return kExitUsage;
    case StatusCode::kResourceExhausted:
    case StatusCode::kCancelled: return kExitStopped;
    default: return kExitInvalid;
  }
}

int report_error(const Status& status) {
  std::cerr << "kiln: " << status.message() << "\n";
  return exit_code_for(status);
}

void add_custom_ops_option(CLI::App* cmd, std::vector<std::string>& libraries) {
  cmd->add_option("--custom-ops", libraries,
                  "LIB: a shared library of custom operators (kiln/custom_op.h) for the model's own ops; repeat");
}

int load_custom_ops(const std::vector<std::string>& libraries, CustomOps& out) {
  auto loaded = CustomOps::load(libraries);
  if (!loaded.is_ok()) {
    std::cerr << "kiln: " << loaded.status().message() << "\n";
    return kExitUsage;
  }
  out = std::move(loaded).value();
  return kExitOk;
}

void add_limit_options(CLI::App* cmd, int64_t& memory_limit_mb, double& timeout_ms) {
  cmd->add_option("--memory-limit", memory_limit_mb,
                  "MB: the most memory one run may hold; an allocation over it stops the run (exit code 3)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--timeout-ms", timeout_ms, "MS: stop a run that takes longer (checked between nodes; exit code 3)")
      ->check(CLI::NonNegativeNumber);
}

bool load_or_report(const std::string& path, ir::Model& model, int& exit_code) {
  if (is_plan_file(path)) {
    std::cerr << "kiln: '" << path
              << "' is a kiln plan (.kplan), not an ONNX model: this command takes ONNX models (kiln run, bench, "
                 "show and check take plans too)\n";
    exit_code = kExitUsage;
    return false;
  }
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

int input_dims(const Session& s, const std::vector<std::string>& specs, std::vector<std::vector<int64_t>>& dims) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "kiln: --shape '" << spec << "' must be NAME=1x3x224x224\n";
      return kExitUsage;
    }
    auto parsed = parse_shape(spec.substr(eq + 1));
    if (!parsed.is_ok()) {
      std::cerr << "kiln: " << parsed.status().message() << "\n";
      return kExitUsage;
    }
    const std::string name = spec.substr(0, eq);
    if (std::none_of(s.inputs().begin(), s.inputs().end(), [&](const IoInfo& i) { return i.name == name; })) {
      std::cerr << "kiln: --shape: '" << name << "' is not an input of the model\n";
      return kExitUsage;
    }
    shapes[name] = *parsed;
  }
  dims.clear();
  for (const auto& in : s.inputs()) {
    if (auto it = shapes.find(in.name); it != shapes.end()) {
      dims.push_back(it->second);
    } else if (in.type.shape && in.type.shape->is_static()) {
      dims.push_back(*in.type.shape->static_dims());
    } else if (const ShapeProfile::Input* p = s.plan_info() && !s.plan_info()->profiles.empty()
                                                  ? s.plan_info()->profiles[0].find(in.name)
                                                  : nullptr) {
      dims.push_back(p->opt);  // a plan's input: its first profile's opt shape
    } else {
      std::cerr << "kiln: input '" << in.name << "' has shape " << in.type.to_string()
                << ": give its dims with --shape " << in.name << "=...\n";
      return kExitUsage;
    }
  }
  return kExitOk;
}

std::string mib_text(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
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
