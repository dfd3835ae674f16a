// Model folders and the tasks' postprocessing.
#include "sdk/tasks.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace kiln::sdk {

namespace {

using json = nlohmann::json;

StatusOr<std::string> string_field(const json& j, const std::string& key, const std::string& file) {
  if (!j.contains(key)) return invalid_argument(file + ": '" + key + "' is required");
  if (!j[key].is_string() || j[key].get<std::string>().empty()) {
    return invalid_argument(file + ": '" + key + "' must be a non-empty string, not " + j[key].dump());
  }
  return j[key].get<std::string>();
}

}  // namespace

StatusOr<std::unique_ptr<Task>> Task::load(const std::string& dir, const std::string& task,
                                           const SessionOptions& options) {
  const std::string deploy_path = dir + "/deploy.json";
  std::ifstream in(deploy_path);
  if (!in) return not_found(deploy_path + ": cannot open it (is '" + dir + "' a model folder made by kiln pack?)");
  std::stringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(deploy_path + ": not a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "version" && key != "task" && key != "model" && key != "input" && key != "output") {
      return invalid_argument(deploy_path + ": unknown field '" + key +
                              "' (known: 'version', 'task', 'model', 'input', 'output')");
    }
  }
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() != 1) {
    return invalid_argument(deploy_path + ": 'version' must be 1" +
                            (j.contains("version") ? ", not " + j["version"].dump() : std::string(" (missing)")));
  }
  auto t = std::unique_ptr<Task>(new Task());
  KILN_ASSIGN_OR_RETURN(t->kind_, string_field(j, "task", deploy_path));
  if (std::find(task_kinds().begin(), task_kinds().end(), t->kind_) == task_kinds().end()) {
    return invalid_argument(deploy_path + ": 'task' is '" + t->kind_ + "' (known: restorer, classifier)");
  }
  if (t->kind_ != task) {
    return invalid_argument(deploy_path + ": the folder holds a " + t->kind_ + ", not a " + task);
  }
  KILN_ASSIGN_OR_RETURN(std::string model, string_field(j, "model", deploy_path));
  KILN_ASSIGN_OR_RETURN(t->input_, string_field(j, "input", deploy_path));
  KILN_ASSIGN_OR_RETURN(t->output_, string_field(j, "output", deploy_path));
  if (model.find('/') != std::string::npos) {
    return invalid_argument(deploy_path + ": 'model' must be a file name in the folder, not '" + model + "'");
  }
  KILN_ASSIGN_OR_RETURN(t->pipeline_, Pipeline::load(dir + "/pipeline.json", task));
  KILN_ASSIGN_OR_RETURN(t->session_, Session::create(dir + "/" + model, options));
  const auto& ins = t->session_->inputs();
  if (std::none_of(ins.begin(), ins.end(), [&](const IoInfo& i) { return i.name == t->input_; })) {
    return invalid_argument(deploy_path + ": 'input' is '" + t->input_ + "', which is not an input of " + model);
  }
  const auto& outs = t->session_->outputs();
  if (std::none_of(outs.begin(), outs.end(), [&](const IoInfo& o) { return o.name == t->output_; })) {
    return invalid_argument(deploy_path + ": 'output' is '" + t->output_ + "', which is not an output of " + model);
  }
  return t;
}

StatusOr<std::string> Task::kind_of(const std::string& dir) {
  const std::string path = dir + "/deploy.json";
  std::ifstream in(path);
  if (!in) return not_found(path + ": cannot open it (is '" + dir + "' a model folder made by kiln pack?)");
  std::stringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(path + ": not a JSON object");
  return string_field(j, "task", path);
}

StatusOr<Tensor> Task::infer(const Image& image) const {
  KILN_ASSIGN_OR_RETURN(Prepared p, pipeline_.apply(image));
  KILN_ASSIGN_OR_RETURN(auto outs, session_->run({{input_, p.input}}, {output_}));
  return outs[0];
}

StatusOr<RestoredImage> restore(const Task& task, const Image& image) {
  KILN_ASSIGN_OR_RETURN(Tensor out, task.infer(image));
  const Postprocess& pp = task.pipeline().postprocess;
  std::vector<int64_t> d = out.dims();
  if (d.size() == 4 && d[0] == 1) d.erase(d.begin());
  if (out.dtype() != DType::kFloat32 || d.size() != 3 || (d[0] != 1 && d[0] != 3)) {
    return invalid_argument("the restorer's output is " + std::string(dtype_name(out.dtype())) + " " +
                            Shape::from_dims(out.dims()).to_string() +
                            ": expected float [1, C, H, W] or [C, H, W] with C 1 or 3");
  }
  const int c = static_cast<int>(d[0]), h = static_cast<int>(d[1]), w = static_cast<int>(d[2]);
  if (!pp.mean.empty() && pp.mean.size() != static_cast<size_t>(c)) {
    return invalid_argument("pipeline.json: postprocess (Restore): " + std::to_string(pp.mean.size()) +
                            " means for an output of " + std::to_string(c) + " channels");
  }
  RestoredImage r{h, w, c, std::vector<uint8_t>(static_cast<size_t>(h) * w * c)};
  const float* src = out.data<float>();
  const size_t plane = static_cast<size_t>(h) * w;
  for (int ch = 0; ch < c; ++ch) {
    // The model's channel `ch` lands at BGR position 2 - ch when it is RGB.
    const int dst = pp.to_bgr && c == 3 ? 2 - ch : ch;
    for (size_t i = 0; i < plane; ++i) {
      float v = src[static_cast<size_t>(ch) * plane + i];
      if (!pp.mean.empty()) v = v * pp.std[static_cast<size_t>(ch)] + pp.mean[static_cast<size_t>(ch)];
      v *= pp.scale;
      // np.clip(v, 0, 255).astype(np.uint8), as kiln run --output-image writes images.
      v = std::isnan(v) ? 0.0f : std::min(255.0f, std::max(0.0f, v));
      r.pixels[i * static_cast<size_t>(c) + static_cast<size_t>(dst)] = static_cast<uint8_t>(v);
    }
  }
  return r;
}

StatusOr<std::vector<Classification>> classify(const Task& task, const Image& image) {
  KILN_ASSIGN_OR_RETURN(Tensor out, task.infer(image));
  const Postprocess& pp = task.pipeline().postprocess;
  if (out.dtype() != DType::kFloat32 || out.num_elements() < 1 || (out.rank() == 2 && out.dims()[0] != 1)) {
    return invalid_argument("the classifier's output is " + std::string(dtype_name(out.dtype())) + " " +
                            Shape::from_dims(out.dims()).to_string() + ": expected float [1, classes]");
  }
  const float* s = out.data<float>();
  const auto n = static_cast<size_t>(out.num_elements());
  std::vector<float> scores(s, s + n);
  if (pp.softmax) {
    const float m = *std::max_element(scores.begin(), scores.end());
    double sum = 0;
    for (float& v : scores) sum += (v = std::exp(v - m));
    for (float& v : scores) v = static_cast<float>(v / sum);
  }
  std::vector<int> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<int>(i);
  const size_t k = std::min(n, static_cast<size_t>(pp.topk));
  std::partial_sort(order.begin(), order.begin() + static_cast<long>(k), order.end(), [&](int a, int b) {
    return scores[static_cast<size_t>(a)] > scores[static_cast<size_t>(b)] ||
           (scores[static_cast<size_t>(a)] == scores[static_cast<size_t>(b)] && a < b);
  });
  std::vector<Classification> top;
  for (size_t i = 0; i < k; ++i) top.push_back({order[i], scores[static_cast<size_t>(order[i])]});
  return top;
}

StatusOr<Image> image_from_pixels(const void* data, int height, int width, int channels, bool rgb, bool is_float) {
  if (!data) return invalid_argument("the image's data is NULL");
  if (height < 1 || width < 1 || height > (1 << 16) || width > (1 << 16)) {
    return invalid_argument("an image of " + std::to_string(height) + "x" + std::to_string(width) +
                            " (expected 1 to 65536 on each side)");
  }
  if (channels != 1 && channels != 3) {
    return invalid_argument("an image of " + std::to_string(channels) + " channels (expected 1 or 3)");
  }
  Image img{height, width, channels, std::vector<float>(static_cast<size_t>(height) * width * channels)};
  for (size_t i = 0; i < img.data.size(); ++i) {
    img.data[i] =
        is_float ? static_cast<const float*>(data)[i] : static_cast<float>(static_cast<const uint8_t*>(data)[i]);
  }
  if (rgb && channels == 3) {
    for (size_t i = 0; i < img.data.size(); i += 3) std::swap(img.data[i], img.data[i + 2]);
  }
  return img;
}

}  // namespace kiln::sdk
