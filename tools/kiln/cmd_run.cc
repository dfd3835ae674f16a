// kiln run MODEL --input NAME=FILE ... [--output-dir DIR]: run a model on .npy / .pb inputs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>

#include "commands.h"
#include "kiln/core/npy.h"
#include "kiln/onnx/model_io.h"
#include "kiln/runtime/session.h"

namespace kiln::cli {
namespace {

// A .npy (by magic or extension) or a serialized TensorProto.
StatusOr<Tensor> read_input_file(const std::string& path) {
  if (path.size() > 4 && path.substr(path.size() - 4) == ".npy") return read_npy(path);
  if (path.size() > 3 && path.substr(path.size() - 3) == ".pb") {
    KILN_ASSIGN_OR_RETURN(auto t, onnx::load_tensor(path));
    return t.tensor;
  }
  return invalid_argument("'" + path + "': inputs must be .npy or .pb (TensorProto) files");
}

std::string file_name_for(const std::string& output) {
  std::string s = output;
  std::replace(s.begin(), s.end(), '/', '_');
  std::replace(s.begin(), s.end(), ':', '_');
  return s + ".npy";
}

std::string stats(const Tensor& t) {
  if (t.dtype() == DType::kString || t.num_elements() == 0) return "";
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
  const int64_t n = t.num_elements();
  auto visit = [&](double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  };
  switch (t.dtype()) {
    case DType::kFloat32:
      for (int64_t i = 0; i < n; ++i) visit(t.data<float>()[i]);
      break;
    case DType::kFloat64:
      for (int64_t i = 0; i < n; ++i) visit(t.data<double>()[i]);
      break;
    case DType::kFloat16:
      for (int64_t i = 0; i < n; ++i) visit(half_to_float(t.data<uint16_t>()[i]));
      break;
    case DType::kInt64:
      for (int64_t i = 0; i < n; ++i) visit(static_cast<double>(t.data<int64_t>()[i]));
      break;
    case DType::kInt32:
      for (int64_t i = 0; i < n; ++i) visit(t.data<int32_t>()[i]);
      break;
    case DType::kInt8:
      for (int64_t i = 0; i < n; ++i) visit(t.data<int8_t>()[i]);
      break;
    case DType::kUInt8:
    case DType::kBool:
      for (int64_t i = 0; i < n; ++i) visit(t.data<uint8_t>()[i]);
      break;
    default: return "";
  }
  char buf[128];
  std::snprintf(buf, sizeof buf, "  min %.6g  max %.6g  mean %.6g", lo, hi, sum / static_cast<double>(n));
  return buf;
}

}  // namespace

void add_run(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("run", "Run a model on .npy / .pb inputs and write its outputs as .npy");
  struct Args {
    std::string model, out_dir;
    std::vector<std::string> inputs;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file")->required();
  cmd->add_option("-i,--input", a->inputs, "NAME=FILE (.npy or .pb); repeat for each input");
  cmd->add_option("-d,--output-dir", a->out_dir, "Write every output to DIR/<name>.npy");
  cmd->add_option("--threads", a->threads, "Intra-op threads (0: one per core)");
  cmd->callback([&run, a] {
    run = [a] {
      SessionOptions options;
      options.intra_op_threads = a->threads;
      auto session = Session::create(a->model, options);
      if (!session.is_ok()) {
        std::cerr << "kiln: " << session.status().message() << "\n";
        return session.status().code() == StatusCode::kIoError || session.status().code() == StatusCode::kNotFound
                   ? kExitUsage
                   : kExitInvalid;
      }
      NamedTensors feeds;
      for (const auto& spec : a->inputs) {
        auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0) {
          std::cerr << "kiln: --input '" << spec << "' must be NAME=FILE\n";
          return kExitUsage;
        }
        auto t = read_input_file(spec.substr(eq + 1));
        if (!t.is_ok()) {
          std::cerr << "kiln: input '" << spec.substr(0, eq) << "': " << t.status().message() << "\n";
          return t.status().code() == StatusCode::kNotFound ? kExitUsage : kExitInvalid;
        }
        feeds.emplace_back(spec.substr(0, eq), std::move(t).value());
      }
      auto outputs = (*session)->run(feeds);
      if (!outputs.is_ok()) return report_error(outputs.status().with_context(a->model));
      if (!a->out_dir.empty()) std::filesystem::create_directories(a->out_dir);
      const auto& infos = (*session)->outputs();
      for (size_t i = 0; i < outputs->size(); ++i) {
        const Tensor& t = (*outputs)[i];
        std::cout << infos[i].name << "  " << dtype_name(t.dtype()) << dims_to_string(t.dims()) << stats(t) << "\n";
        if (!a->out_dir.empty()) {
          Status st = write_npy(a->out_dir + "/" + file_name_for(infos[i].name), t);
          if (!st.is_ok()) return report_error(st);
        }
      }
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
