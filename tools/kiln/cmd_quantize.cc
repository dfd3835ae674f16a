// kiln quantize MODEL.onnx -O MODEL.int8.onnx --calib DATA [--method minmax|entropy|percentile] [--percentile P]
// [--per-channel] [--symmetric-activations] [--reduce-range] [--exclude NODE,...] [--samples N] [--report]
// [--dynamic] [--resize HxW] [--scale S] [--mean A,B,C] [--std A,B,C] [--rgb] [--preprocess pipeline.json]
// [--layout nchw|nhwc]: post-training quantization to a QDQ model (include/kiln/quantize/quantize.h) that kiln and
// ONNX Runtime both run.
//
// DATA is a folder (or one file) of .npy arrays, each a batch of the model's only input, or of PNG/JPEG images read
// as `kiln run` reads them (float32 BGR 0-255), then resized, scaled, normalized and swapped to RGB as the options
// say, or put through the preprocessing of a pipeline.json (the SDK's, docs/sdk.md: what the deployed task does to
// its images), and laid out NCHW or NHWC; a model with several inputs takes a folder per input, named after it,
// matched file by file in sorted order.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "kiln/core/npy.h"
#include "kiln/image/image.h"
#include "kiln/onnx/model_io.h"
#include "kiln/quantize/quantize.h"
#include "sdk/pipeline.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

// What calibration images go through: the SDK's transforms (--preprocess, or the options as transforms), then the
// layout.
struct Preprocess {
  sdk::Pipeline pipeline;
  bool nhwc = false;  // --layout nhwc: [1, H, W, C]
};

// --resize, --scale, --mean, --std and --rgb as the SDK's transforms: LoadImage (color), Resize to HxW (when given),
// then (x * scale - mean) / std per channel after the swap to RGB, which is Normalize with mean / scale and
// std / scale.
sdk::Pipeline options_pipeline(int height, int width, float scale, const std::vector<float>& mean,
                               const std::vector<float>& std, bool rgb) {
  using T = sdk::Transform;
  sdk::Pipeline p;
  p.preprocess.push_back(T{});  // LoadImage, color
  if (height > 0) {
    T resize;
    resize.kind = T::Kind::kResize;
    resize.height = height;
    resize.width = width;
    p.preprocess.push_back(resize);
  }
  T normalize;
  normalize.kind = T::Kind::kNormalize;
  normalize.to_rgb = rgb;
  for (size_t c = 0; c < 3; ++c) {
    normalize.mean.push_back((mean.empty() ? 0.0f : mean[c]) / scale);
    normalize.std.push_back((std.empty() ? 1.0f : std[c]) / scale);
  }
  p.preprocess.push_back(normalize);
  T to_tensor;
  to_tensor.kind = T::Kind::kImageToTensor;
  p.preprocess.push_back(to_tensor);
  return p;
}

bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".png" || e == ".jpg" || e == ".jpeg";
}

// The calibration files of DATA (a file, or a folder's .npy and image files in sorted order).
StatusOr<std::vector<fs::path>> data_files(const fs::path& data) {
  std::error_code ec;
  if (fs::is_regular_file(data, ec)) return std::vector<fs::path>{data};
  if (!fs::is_directory(data, ec)) return io_error("calibration data '" + data.string() + "' does not exist");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(data, ec)) {
    if (e.is_regular_file() && (e.path().extension() == ".npy" || is_image(e.path()))) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return invalid_argument("calibration data '" + data.string() + "' has no .npy, .png or .jpg files");
  }
  return files;
}

// [1, C, H, W] as [1, H, W, C].
Tensor to_nhwc(const Tensor& t) {
  const int64_t C = t.dims()[1], H = t.dims()[2], W = t.dims()[3];
  Tensor out = Tensor::allocate(DType::kFloat32, {1, H, W, C}).value();
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t i = 0; i < H * W; ++i) out.data<float>()[i * C + c] = t.data<float>()[c * H * W + i];
  }
  return out;
}

// One image as the model's input: [1, 3, H, W] (or [1, H, W, 3]) float32 after the preprocessing.
StatusOr<Tensor> load_image(const fs::path& path, const Preprocess& pre) {
  KILN_ASSIGN_OR_RETURN(Tensor t, image::read_nchw(path.string()));
  const int h = static_cast<int>(t.dims()[2]), w = static_cast<int>(t.dims()[3]);
  sdk::Image img{h, w, 3, std::vector<float>(static_cast<size_t>(h) * w * 3)};
  const float* p = t.data<float>();
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < h * w; ++i) img.data[static_cast<size_t>(i) * 3 + c] = p[static_cast<size_t>(c) * h * w + i];
  StatusOr<sdk::Prepared> prepared = pre.pipeline.apply(img);
  if (!prepared.is_ok()) return prepared.status().with_context(path.string());
  return pre.nhwc ? to_nhwc(prepared->input) : std::move(prepared->input);
}

// Tensors along dim 0 into one batch.
StatusOr<Tensor> concat_batch(const std::vector<Tensor>& parts, const std::string& input) {
  std::vector<int64_t> dims = parts[0].dims();
  int64_t n = 0;
  for (const Tensor& t : parts) {
    if (t.dtype() != parts[0].dtype() || t.rank() != parts[0].rank() ||
        !std::equal(t.dims().begin() + 1, t.dims().end(), dims.begin() + 1)) {
      return invalid_argument("input '" + input + "': calibration samples of different shapes cannot form a batch");
    }
    n += t.dims()[0];
  }
  dims[0] = n;
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(parts[0].dtype(), dims));
  size_t at = 0;
  for (const Tensor& t : parts) {
    std::memcpy(static_cast<uint8_t*>(out.raw_data()) + at, t.raw_data(), t.nbytes());
    at += t.nbytes();
  }
  return out;
}

// The calibration batches: per input, its files (DATA itself for a one-input model, DATA/<input> otherwise);
// images grouped into batches of the input's static batch size (1 when dynamic); at most `samples` samples.
StatusOr<std::vector<quant::Feeds>> load_batches(const ir::Model& model, const std::string& data, const Preprocess& pre,
                                                 int64_t samples) {
  std::vector<const ir::ValueInfo*> inputs;
  for (const auto& in : model.graph.inputs) {
    if (!model.graph.find_initializer(in.name)) inputs.push_back(&in);
  }
  if (inputs.empty()) return invalid_argument("the model has no inputs to calibrate");
  std::vector<std::vector<Tensor>> per_input;
  for (const ir::ValueInfo* in : inputs) {
    const fs::path dir = inputs.size() == 1 ? fs::path(data) : fs::path(data) / in->name;
    KILN_ASSIGN_OR_RETURN(auto files, data_files(dir));
    int64_t batch = 1;
    if (in->type.shape && !in->type.shape->dims().empty() && in->type.shape->dims()[0].is_known()) {
      batch = std::max<int64_t>(in->type.shape->dims()[0].value(), 1);
    }
    std::vector<Tensor> tensors, pending;
    int64_t taken = 0;
    for (const auto& f : files) {
      if (samples > 0 && taken >= samples) break;
      if (is_image(f)) {
        KILN_ASSIGN_OR_RETURN(Tensor t, load_image(f, pre));
        pending.push_back(std::move(t));
        ++taken;
        if (static_cast<int64_t>(pending.size()) == batch) {
          KILN_ASSIGN_OR_RETURN(Tensor b, concat_batch(pending, in->name));
          tensors.push_back(std::move(b));
          pending.clear();
        }
      } else {
        KILN_ASSIGN_OR_RETURN(Tensor t, read_npy(f.string()));
        taken += t.rank() > 0 ? t.dims()[0] : 1;
        tensors.push_back(std::move(t));
      }
    }
    if (!pending.empty()) {
      KILN_ASSIGN_OR_RETURN(Tensor b, concat_batch(pending, in->name));
      tensors.push_back(std::move(b));
    }
    per_input.push_back(std::move(tensors));
  }
  const size_t n = per_input[0].size();
  for (size_t i = 1; i < per_input.size(); ++i) {
    if (per_input[i].size() != n) {
      return invalid_argument("calibration data: input '" + inputs[i]->name + "' has " +
                              std::to_string(per_input[i].size()) + " batches, input '" + inputs[0]->name + "' " +
                              std::to_string(n));
    }
  }
  std::vector<quant::Feeds> batches(n);
  for (size_t b = 0; b < n; ++b) {
    for (size_t i = 0; i < inputs.size(); ++i) batches[b].emplace_back(inputs[i]->name, per_input[i][b]);
  }
  return batches;
}

bool parse_floats(const std::string& text, size_t count, std::vector<float>& out) {
  out.clear();
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    try {
      out.push_back(std::stof(text.substr(at, comma - at)));
    } catch (...) {
      return false;
    }
    at = comma + 1;
  }
  return out.size() == count;
}

}  // namespace

void add_quantize(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("quantize", "Post-training quantization to a QDQ ONNX model (INT8)");
  struct Args {
    std::string model, out, calib, method = "minmax", resize, mean, std, preprocess, layout = "nchw";
    double percentile = 99.999, scale = 1;
    bool per_channel = false, symmetric = false, reduce_range = false, report = false, dynamic = false, rgb = false;
    std::vector<std::string> exclude;
    int64_t samples = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The fp32 .onnx model")->required();
  cmd->add_option("-O,--output", a->out, "Where to write the QDQ model")->required();
  cmd->add_option("--calib", a->calib,
                  "Calibration data: a folder (or file) of .npy batches or PNG/JPEG images; a folder per input for "
                  "a model with several");
  cmd->add_option("--method", a->method, "minmax (default), entropy (TensorRT's KL calibration) or percentile")
      ->check(CLI::IsMember({"minmax", "entropy", "percentile"}));
  cmd->add_option("--percentile", a->percentile, "With --method percentile: the share of values kept (default 99.999)")
      ->check(CLI::Range(50.0, 100.0));
  cmd->add_flag("--per-channel", a->per_channel, "One weight scale per output channel (needs opset 13)");
  cmd->add_flag("--symmetric-activations", a->symmetric, "Activations as int8 with zero point 0 (else uint8)");
  cmd->add_flag("--reduce-range", a->reduce_range,
                "7-bit weights, which the int8 kernels of CPUs without VNNI or AMX compute exactly");
  cmd->add_option("--exclude", a->exclude, "Nodes to leave in float (names; repeat or a,b,c)");
  cmd->add_option("--samples", a->samples, "Use at most N calibration samples")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--report", a->report, "Print each quantized tensor's range and its error against fp32");
  cmd->add_flag("--dynamic", a->dynamic,
                "Dynamic quantization (no calibration): MatMul/Gemm weights int8, activations quantized per run");
  cmd->add_option("--resize", a->resize, "Images: resize to HxW (bilinear)");
  cmd->add_option("--scale", a->scale, "Images: multiply the 0-255 pixels by S (1/255 = 0.0039215686)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--mean", a->mean, "Images: subtract A,B,C per channel (after --scale)");
  cmd->add_option("--std", a->std, "Images: divide by A,B,C per channel");
  cmd->add_flag("--rgb", a->rgb, "Images: channels in RGB order (they are read as BGR, as cv2.imread does)");
  cmd->add_option("--preprocess", a->preprocess,
                  "Images: the preprocessing of this pipeline.json (docs/sdk.md) instead of --resize ... --rgb");
  cmd->add_option("--layout", a->layout, "Images: the model input's layout, nchw (default) or nhwc")
      ->check(CLI::IsMember({"nchw", "nhwc"}));
  cmd->callback([&run, a] {
    run = [a] {
      ir::Model model;
      int code = kExitOk;
      if (!load_or_report(a->model, model, code)) return code;
      quant::Options options;
      options.method = a->method == "entropy"      ? quant::Method::kEntropy
                       : a->method == "percentile" ? quant::Method::kPercentile
                                                   : quant::Method::kMinMax;
      options.percentile = a->percentile;
      options.per_channel = a->per_channel;
      options.symmetric_activations = a->symmetric;
      options.reduce_range = a->reduce_range;
      options.exclude = split_list(a->exclude);
      ir::Model out;
      StatusOr<quant::Report> report = quant::Report{};
      std::vector<quant::Feeds> batches;
      if (a->dynamic) {
        report = quant::quantize_dynamic(model, options, out);
      } else {
        if (a->calib.empty()) {
          std::cerr << "kiln: --calib DATA is required (or --dynamic)\n";
          return kExitUsage;
        }
        Preprocess pre;
        pre.nhwc = a->layout == "nhwc";
        if (!a->preprocess.empty()) {
          if (!a->resize.empty() || a->scale != 1 || !a->mean.empty() || !a->std.empty() || a->rgb) {
            std::cerr << "kiln: --preprocess gives the whole preprocessing: leave out --resize, --scale, --mean, "
                         "--std and --rgb\n";
            return kExitUsage;
          }
          auto pipeline = sdk::Pipeline::load(a->preprocess, "");
          if (!pipeline.is_ok()) {  // the file given with the option: a usage error, as a wrong --resize is
            std::cerr << "kiln: " << pipeline.status().message() << "\n";
            return kExitUsage;
          }
          pre.pipeline = std::move(*pipeline);
        } else {
          int height = 0, width = 0;
          std::vector<float> mean, std;
          if (!a->resize.empty() && std::sscanf(a->resize.c_str(), "%dx%d", &height, &width) != 2) {
            std::cerr << "kiln: --resize '" << a->resize << "' must be HxW\n";
            return kExitUsage;
          }
          if ((!a->mean.empty() && !parse_floats(a->mean, 3, mean)) ||
              (!a->std.empty() && !parse_floats(a->std, 3, std))) {
            std::cerr << "kiln: --mean and --std take three numbers, A,B,C\n";
            return kExitUsage;
          }
          pre.pipeline = options_pipeline(height, width, static_cast<float>(a->scale), mean, std, a->rgb);
        }
        auto loaded = load_batches(model, a->calib, pre, a->samples);
        if (!loaded.is_ok()) return report_error(loaded.status());
        batches = std::move(*loaded);
        ProgressBar bar;
        const int passes = options.method == quant::Method::kMinMax ? 1 : 2;
        options.progress = [&bar, passes](int pass, size_t done, size_t total) {
          bar.update(passes == 1 ? "calibration"
                     : pass == 1 ? "ranges"
                                 : "histograms",
                     (static_cast<double>(pass - 1) + static_cast<double>(done) / static_cast<double>(total)) / passes);
        };
        report = quant::quantize_static(model, batches, options, out);
        bar.finish();
      }
      if (!report.is_ok()) return report_error(report.status().with_context(a->model));
      Status st = onnx::save_model(out, a->out);
      if (!st.is_ok()) return report_error(st);
      std::cout << "wrote " << a->out << ": " << report->quantized.size() << " nodes quantized"
                << (a->dynamic ? " (dynamic)" : "") << ", " << batches.size() << " calibration batches\n";
      for (const auto& s : report->skipped) std::cout << "  left in float: " << s << "\n";
      if (a->report && !a->dynamic) {
        st = quant::report_errors(model, out, batches, *report);
        if (!st.is_ok()) return report_error(st);
        std::printf("  %-40s %12s %12s %12s %12s %10s %6s %10s\n", "tensor", "min", "max", "range lo", "range hi",
                    "scale", "zp", "rel error");
        for (const auto& r : report->ranges) {
          std::printf("  %-40s %12.5g %12.5g %12.5g %12.5g %10.4g %6d %10.4g\n", r.name.c_str(), r.min, r.max, r.lo,
                      r.hi, r.scale, r.zero_point, r.error);
        }
      }
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
