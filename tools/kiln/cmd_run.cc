// kiln run MODEL --input NAME=VALUE ... [--output-dir DIR] [--output-image NAME=FILE]: run a model on .npy / .pb
// files, PNG/JPEG images (float NCHW, BGR, 0-255 as cv2.imread gives) or inline values ("1,1,4,4").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>

#include "commands.h"
#include "kiln/core/npy.h"
#include "kiln/image/image.h"
#include "kiln/onnx/model_io.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/session.h"

namespace kiln::cli {
namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  std::string tail = s.substr(s.size() - suffix.size());
  std::transform(tail.begin(), tail.end(), tail.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return tail == suffix;
}

bool is_image(const std::string& path) {
  return has_suffix(path, ".png") || has_suffix(path, ".jpg") || has_suffix(path, ".jpeg");
}

// "1,1,4,4" / "3" / "-0.5,2e3": numbers separated by commas. Empty when `text` is not such a list.
std::vector<double> parse_numbers(const std::string& text) {
  std::vector<double> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    std::string part = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    char* end = nullptr;
    double v = std::strtod(part.c_str(), &end);
    if (part.empty() || end != part.c_str() + part.size()) return {};
    out.push_back(v);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// Inline values as a tensor of the input's declared dtype; shape [n], or the declared shape when it is fully
// known and holds n elements (a scalar for rank 0).
StatusOr<Tensor> inline_tensor(const IoInfo& info, const std::vector<double>& values) {
  DType dtype = info.type.elem_type == DType::kUndefined ? DType::kFloat32 : info.type.elem_type;
  std::vector<int64_t> dims{static_cast<int64_t>(values.size())};
  if (info.type.shape && info.type.shape->is_static()) {
    if (info.type.shape->num_elements() == static_cast<int64_t>(values.size())) dims = *info.type.shape->static_dims();
  }
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(dtype, dims));
  for (size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    switch (dtype) {
      case DType::kFloat32: t.data<float>()[i] = static_cast<float>(v); break;
      case DType::kFloat64: t.data<double>()[i] = v; break;
      case DType::kInt64: t.data<int64_t>()[i] = static_cast<int64_t>(v); break;
      case DType::kInt32: t.data<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::kBool: t.data<uint8_t>()[i] = v != 0; break;
      default:
        return invalid_argument(std::string("inline values cannot make a ") + dtype_name(dtype) +
                                " tensor; pass a .npy file");
    }
  }
  return t;
}

// float32 -> bfloat16 (round to nearest even), for a bfloat16 input given as the float32 .npy `kiln run` writes for
// bfloat16 outputs (numpy has no bfloat16).
Tensor to_bfloat16(const Tensor& f) {
  Tensor b = std::move(Tensor::allocate(DType::kBFloat16, f.dims())).value();
  for (int64_t i = 0; i < f.num_elements(); ++i) b.data<uint16_t>()[i] = float_to_bfloat16(f.data<float>()[i]);
  return b;
}

// A .npy, a serialized TensorProto (.pb), a PNG/JPEG image, or inline numbers.
StatusOr<Tensor> read_input(const std::string& value, const IoInfo* info) {
  if (has_suffix(value, ".npy")) {
    KILN_ASSIGN_OR_RETURN(Tensor t, read_npy(value));
    if (info && info->type.elem_type == DType::kBFloat16 && t.dtype() == DType::kFloat32) return to_bfloat16(t);
    return t;
  }
  if (has_suffix(value, ".pb")) {
    KILN_ASSIGN_OR_RETURN(auto t, onnx::load_tensor(value));
    return t.tensor;
  }
  if (is_image(value)) return image::read_nchw(value);
  std::vector<double> numbers = parse_numbers(value);
  if (!numbers.empty() && info) return inline_tensor(*info, numbers);
  return invalid_argument(
      "'" + value + "': expected a .npy, .pb (TensorProto), .png or .jpg file, or inline numbers such as 1,1,4,4");
}

std::string file_name_for(const std::string& output, const std::string& format) {
  std::string s = output;
  std::replace(s.begin(), s.end(), '/', '_');
  std::replace(s.begin(), s.end(), ':', '_');
  return s + "." + format;
}

// Writes output `name` as DIR/<name>.npy, or .pb (a TensorProto: every dtype exactly) with format "pb". numpy has no
// bfloat16: such an output goes to .npy as float32 (exact), with a notice on stderr.
Status write_output(const std::string& dir, const std::string& name, const Tensor& t, const std::string& format) {
  const std::string path = dir + "/" + file_name_for(name, format);
  if (format == "pb") return onnx::save_tensor(t, name, path);
  if (t.dtype() == DType::kBFloat16) {
    Tensor f = std::move(Tensor::allocate(DType::kFloat32, t.dims())).value();
    for (int64_t i = 0; i < t.num_elements(); ++i) f.data<float>()[i] = bfloat16_to_float(t.data<uint16_t>()[i]);
    std::cerr << "kiln: output '" << name << "' is bfloat16, which numpy lacks: " << path
              << " holds it as float32 (exact); --output-format pb writes it as bfloat16\n";
    return write_npy(path, f);
  }
  return write_npy(path, t);
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
    std::vector<std::string> inputs, images;
    int threads = 0;
    std::string opt_level = "all", precision = "fp32";
    bool reference = false, no_tune = false;
    std::vector<std::string> disabled_kernels;
    int64_t memory_limit_mb = 0;
    double timeout_ms = 0;
    std::string output_format = "npy";
    std::vector<std::string> custom_ops;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file or .kplan plan (kiln build)")->required();
  cmd->add_option("-i,--input", a->inputs,
                  "NAME=VALUE: a .npy, .pb, .png or .jpg file, or inline numbers (1,1,4,4); repeat for each input");
  cmd->add_option("--output-image", a->images, "NAME=FILE: also write output NAME as a PNG/JPEG image");
  cmd->add_option("-d,--output-dir", a->out_dir, "Write every output to DIR/<name>.npy (or .pb)");
  cmd->add_option("--output-format", a->output_format,
                  "npy (default; strings as numpy str arrays, bfloat16 as float32) or pb (TensorProto, every dtype "
                  "exactly)")
      ->check(CLI::IsMember({"npy", "pb"}));
  cmd->add_option("--threads", a->threads, "Intra-op threads (0: one per core)");
  add_opt_level_option(cmd, a->opt_level);
  add_precision_option(cmd, a->precision);
  add_disable_kernel_option(cmd, a->disabled_kernels);
  cmd->add_flag("--reference,--reference-kernels", a->reference,
                "Run every operator's plain reference kernel (slow; for checking the fast kernels)");
  cmd->add_flag("--no-tune", a->no_tune,
                "Take each node's first-guess kernel instead of timing the candidates on the first run");
  add_limit_options(cmd, a->memory_limit_mb, a->timeout_ms);
  add_custom_ops_option(cmd, a->custom_ops);
  cmd->callback([&run, a] {
    run = [a] {
      CustomOps custom;
      if (int code = load_custom_ops(a->custom_ops, custom); code != kExitOk) return code;
      SessionOptions options;
      options.custom_op_libraries = a->custom_ops;
      options.intra_op_threads = a->threads;
      options.optimization_level = *opt::parse_level(a->opt_level);
      options.reference_kernels = a->reference;
      options.tune = !a->no_tune;
      options.disabled_kernels = a->disabled_kernels;
      options.precision = a->precision;
      options.memory_limit_mb = a->memory_limit_mb;
      auto session = Session::create(a->model, options);
      if (!session.is_ok()) {
        std::cerr << "kiln: " << session.status().message() << "\n";
        return session.status().code() == StatusCode::kNotFound ? kExitUsage : exit_code_for(session.status());
      }
      NamedTensors feeds;
      for (const auto& spec : a->inputs) {
        auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0) {
          std::cerr << "kiln: --input '" << spec << "' must be NAME=FILE\n";
          return kExitUsage;
        }
        const std::string name = spec.substr(0, eq);
        const IoInfo* info = nullptr;
        for (const auto& i : (*session)->inputs()) {
          if (i.name == name) info = &i;
        }
        auto t = read_input(spec.substr(eq + 1), info);
        if (!t.is_ok()) {
          std::cerr << "kiln: input '" << spec.substr(0, eq) << "': " << t.status().message() << "\n";
          return t.status().code() == StatusCode::kNotFound ? kExitUsage : kExitInvalid;
        }
        feeds.emplace_back(spec.substr(0, eq), std::move(t).value());
      }
      std::vector<std::pair<std::string, std::string>> images;
      for (const auto& spec : a->images) {
        auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0) {
          std::cerr << "kiln: --output-image '" << spec << "' must be NAME=FILE\n";
          return kExitUsage;
        }
        const std::string name = spec.substr(0, eq);
        const auto& outs = (*session)->outputs();
        if (std::none_of(outs.begin(), outs.end(), [&](const IoInfo& o) { return o.name == name; })) {
          std::cerr << "kiln: --output-image: '" << name << "' is not an output of the model\n";
          return kExitUsage;
        }
        images.emplace_back(name, spec.substr(eq + 1));
      }
      RunOptions run_options;
      run_options.timeout_ms = a->timeout_ms;
      NamedValues values;
      for (auto& [name, t] : feeds) values.emplace_back(name, Value(std::move(t)));
      auto outputs = (*session)->run_values(values, {}, &run_options);
      if (!outputs.is_ok()) return report_error(outputs.status().with_context(a->model));
      if (!a->out_dir.empty()) std::filesystem::create_directories(a->out_dir);
      const auto& infos = (*session)->outputs();
      for (size_t i = 0; i < outputs->size(); ++i) {
        const Value& v = (*outputs)[i];
        const std::string& oname = infos[i].name;
        if (!v.is_tensor()) {
          // A sequence: each item as <name>_<i>; an empty optional: nothing to write.
          std::cout << oname << "  " << v.describe() << "\n";
          for (size_t k = 0; v.is_sequence() && k < v.items().size(); ++k) {
            const Tensor& t = v.items()[k];
            std::cout << "  [" << k << "]  " << dtype_name(t.dtype()) << dims_to_string(t.dims()) << stats(t) << "\n";
            if (a->out_dir.empty()) continue;
            Status st = write_output(a->out_dir, oname + "_" + std::to_string(k), t, a->output_format);
            if (!st.is_ok()) return report_error(st);
          }
          continue;
        }
        const Tensor& t = v.tensor();
        std::cout << oname << "  " << dtype_name(t.dtype()) << dims_to_string(t.dims()) << stats(t) << "\n";
        if (!a->out_dir.empty()) {
          Status st = write_output(a->out_dir, oname, t, a->output_format);
          if (!st.is_ok()) return report_error(st);
        }
        for (const auto& [name, path] : images) {
          if (name != oname) continue;
          Status st = image::write_nchw(t, path);
          if (!st.is_ok()) return report_error(st.with_context("output '" + name + "'"));
          std::cout << "  wrote " << path << "\n";
        }
      }
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
