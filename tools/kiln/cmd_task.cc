// kiln pack MODEL --task T -O DIR: a model folder for the SDK's tasks (the model, deploy.json, pipeline.json).
// kiln task DIR IMAGE... [-O OUT]: runs the folder's task on images (restored images, the top classes, detections
// drawn on the image, a coloured mask).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "kiln/image/image.h"
#include "kiln/onnx/model_io.h"
#include "sdk/tasks.h"

namespace kiln::cli {

namespace {

namespace fs = std::filesystem;

Status write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return io_error(path.string() + ": cannot write it");
  return Status::ok();
}

int pack(const std::string& model_path, const std::string& task, const std::string& pipeline_path, std::string input,
         std::vector<std::string> outputs, const std::string& out_dir) {
  ir::Model model;
  int code = kExitOk;
  if (!load_or_report(model_path, model, code)) return code;
  if (input.empty()) {
    for (const auto& i : model.graph.inputs) {
      if (!model.graph.find_initializer(i.name)) {
        input = i.name;
        break;
      }
    }
  }
  const size_t wanted = task == "detector" ? 2 : 1;
  if (outputs.empty()) {
    for (size_t i = 0; i < model.graph.outputs.size() && i < wanted; ++i)
      outputs.push_back(model.graph.outputs[i].name);
  }
  if (outputs.size() != wanted) {
    std::cerr << "kiln: a " << task << " takes " << wanted << (wanted == 1 ? " output" : " outputs (boxes, scores)")
              << "; give them with --output\n";
    return kExitUsage;
  }
  const nlohmann::json output = wanted == 1 ? nlohmann::json(outputs[0]) : nlohmann::json(outputs);
  std::string pipeline = sdk::Pipeline::default_json(task);
  if (!pipeline_path.empty()) {
    auto checked = sdk::Pipeline::load(pipeline_path, task);
    if (!checked.is_ok()) return report_error(checked.status());
    std::ifstream in(pipeline_path);
    pipeline.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::error_code ec;
  if (fs::exists(out_dir, ec)) {
    std::cerr << "kiln: '" << out_dir << "' exists; give a new folder\n";
    return kExitUsage;
  }
  // Written beside the destination, then renamed: a failure leaves nothing at OUT.
  const fs::path tmp = fs::path(out_dir).string() + ".tmp-" + std::to_string(::getpid());
  fs::create_directories(tmp, ec);
  if (ec) {
    std::cerr << "kiln: cannot create '" << tmp.string() << "': " << ec.message() << "\n";
    return kExitUsage;
  }
  const std::string model_file = fs::path(model_path).filename().string();
  nlohmann::json deploy = {{"version", 1}, {"task", task}, {"model", model_file}, {"input", input}, {"output", output}};
  Status st = onnx::save_model(model, (tmp / model_file).string());
  if (st.is_ok()) st = write_text(tmp / "deploy.json", deploy.dump(2) + "\n");
  if (st.is_ok()) st = write_text(tmp / "pipeline.json", pipeline);
  if (st.is_ok()) {
    // The folder must load as the task it claims to be.
    auto loaded = sdk::Task::load(tmp.string(), task);
    if (!loaded.is_ok()) st = loaded.status();
  }
  if (st.is_ok()) {
    fs::rename(tmp, out_dir, ec);
    if (ec) st = io_error("cannot rename '" + tmp.string() + "' to '" + out_dir + "': " + ec.message());
  }
  if (!st.is_ok()) {
    fs::remove_all(tmp, ec);
    return report_error(st);
  }
  std::cout << out_dir << ": " << task << " (" << model_file << ", input '" << input << "', output " << output.dump()
            << ")\n";
  return kExitOk;
}

StatusOr<sdk::Image> read_image(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(Tensor t, image::read_nchw(path));
  const auto h = static_cast<int>(t.dims()[2]), w = static_cast<int>(t.dims()[3]);
  sdk::Image img{h, w, 3, std::vector<float>(static_cast<size_t>(h) * w * 3)};
  const float* src = t.data<float>();
  const size_t plane = static_cast<size_t>(h) * w;
  for (size_t i = 0; i < plane; ++i) {
    for (size_t c = 0; c < 3; ++c) img.data[i * 3 + c] = src[c * plane + i];
  }
  return img;
}

// A restored image, drawn detections or a coloured mask (HWC uint8, BGR) written as PNG/JPEG.
Status write_hwc(const std::vector<uint8_t>& pixels, int height, int width, int channels, const std::string& dest) {
  KILN_ASSIGN_OR_RETURN(Tensor out, Tensor::allocate(DType::kFloat32, {1, channels, height, width}));
  const size_t plane = static_cast<size_t>(height) * static_cast<size_t>(width);
  for (size_t i = 0; i < plane; ++i) {
    for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
      out.data<float>()[c * plane + i] = pixels[i * static_cast<size_t>(channels) + c];
    }
  }
  return image::write_nchw(out, dest);
}

// A colour per class, the same on every run (PASCAL VOC's palette: the bits of the label spread over B, G, R).
std::array<uint8_t, 3> class_colour(int label) {
  std::array<uint8_t, 3> bgr{};
  int c = label;
  for (int bit = 7; c && bit >= 0; --bit, c >>= 3) {
    bgr[2] = static_cast<uint8_t>(bgr[2] | (((c >> 0) & 1) << bit));
    bgr[1] = static_cast<uint8_t>(bgr[1] | (((c >> 1) & 1) << bit));
    bgr[0] = static_cast<uint8_t>(bgr[0] | (((c >> 2) & 1) << bit));
  }
  return bgr;
}

int task(const std::string& dir, const std::vector<std::string>& images, const std::string& out_dir) {
  auto t = sdk::Task::load(dir, "");
  if (!t.is_ok()) return report_error(t.status());
  const std::string& kind = (*t)->kind();
  for (const auto& path : images) {
    auto img = read_image(path);
    if (!img.is_ok()) {
      std::cerr << "kiln: " << img.status().message() << "\n";
      return kExitUsage;
    }
    const std::string dest = (fs::path(out_dir) / (fs::path(path).stem().string() + ".png")).string();
    if (kind == "restorer") {
      auto r = sdk::restore(**t, *img);
      if (!r.is_ok()) return report_error(r.status().with_context(path));
      Status st = write_hwc(r->pixels, r->height, r->width, r->channels, dest);
      if (!st.is_ok()) return report_error(st);
      std::cout << path << " -> " << dest << " (" << r->width << "x" << r->height << ")\n";
    } else if (kind == "detector") {
      auto found = sdk::detect(**t, *img);
      if (!found.is_ok()) return report_error(found.status().with_context(path));
      std::vector<uint8_t> pixels(img->data.begin(), img->data.end());  // BGR 0-255
      const int h = img->height, w = img->width;
      for (const auto& d : *found) {
        const auto colour = class_colour(d.label_id + 1);
        const int x0 = std::clamp(static_cast<int>(d.left), 0, w - 1);
        const int x1 = std::clamp(static_cast<int>(d.right), 0, w - 1);
        const int y0 = std::clamp(static_cast<int>(d.top), 0, h - 1);
        const int y1 = std::clamp(static_cast<int>(d.bottom), 0, h - 1);
        auto put = [&](int y, int x) {
          for (size_t c = 0; c < 3; ++c)
            pixels[(static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x)) * 3 + c] = colour[c];
        };
        for (int x = x0; x <= x1; ++x) put(y0, x), put(y1, x);
        for (int y = y0; y <= y1; ++y) put(y, x0), put(y, x1);
        std::cout << path << ": " << d.label_id << " (" << d.score << ") [" << d.left << ", " << d.top << ", "
                  << d.right << ", " << d.bottom << "]\n";
      }
      Status st = write_hwc(pixels, h, w, 3, dest);
      if (!st.is_ok()) return report_error(st);
      std::cout << path << ": " << found->size() << " detections -> " << dest << "\n";
    } else if (kind == "segmentor") {
      auto seg = sdk::segment(**t, *img);
      if (!seg.is_ok()) return report_error(seg.status().with_context(path));
      std::vector<uint8_t> pixels(seg->mask.size() * 3);
      std::vector<int64_t> counts(static_cast<size_t>(seg->classes));
      for (size_t i = 0; i < seg->mask.size(); ++i) {
        const auto colour = class_colour(seg->mask[i]);
        std::copy(colour.begin(), colour.end(), pixels.begin() + static_cast<long>(i * 3));
        ++counts[static_cast<size_t>(seg->mask[i])];
      }
      Status st = write_hwc(pixels, seg->height, seg->width, 3, dest);
      if (!st.is_ok()) return report_error(st);
      std::cout << path << ":";
      for (size_t c = 0; c < counts.size(); ++c) {
        if (counts[c]) std::cout << " " << c << " (" << counts[c] << " px)";
      }
      std::cout << " -> " << dest << "\n";
    } else {
      auto top = sdk::classify(**t, *img);
      if (!top.is_ok()) return report_error(top.status().with_context(path));
      std::cout << path << ":";
      for (const auto& c : *top) std::cout << " " << c.label_id << " (" << c.score << ")";
      std::cout << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void add_pack(CLI::App& root, std::function<int()>& run) {
  auto* cmd =
      root.add_subcommand("pack", "Make a model folder for the SDK's tasks: the model, deploy.json, pipeline.json");
  struct Args {
    std::string model, task, pipeline, input, out;
    std::vector<std::string> outputs;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file")->required();
  cmd->add_option("--task", a->task, "restorer, classifier, detector or segmentor")
      ->required()
      ->check(CLI::IsMember(sdk::task_kinds()));
  cmd->add_option("--pipeline", a->pipeline, "pipeline.json to use (default: the task's; docs/sdk.md)");
  cmd->add_option("--input", a->input, "The model input the images go to (default: the first)");
  cmd->add_option(
      "--output", a->outputs,
      "The model output the task reads (default: the first; a detector's boxes then scores: the first two)");
  cmd->add_option("-O,--output-dir", a->out, "The folder to write (must not exist)")->required();
  cmd->callback(
      [&run, a] { run = [a] { return pack(a->model, a->task, a->pipeline, a->input, a->outputs, a->out); }; });
}

void add_task(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand(
      "task", "Run a model folder's task on images: restored images, top classes, boxes drawn, coloured masks");
  struct Args {
    std::string dir, out = ".";
    std::vector<std::string> images;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("dir", a->dir, "A folder made by kiln pack")->required();
  cmd->add_option("images", a->images, "PNG or JPEG images")->required();
  cmd->add_option("-O,--output-dir", a->out,
                  "Where restored images, drawn detections and coloured masks go, as <image name>.png (default: .)");
  cmd->callback([&run, a] { run = [a] { return task(a->dir, a->images, a->out); }; });
}

}  // namespace kiln::cli
