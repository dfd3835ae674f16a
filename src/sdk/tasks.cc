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
    return invalid_argument(deploy_path + ": 'task' is '" + t->kind_ +
                            "' (known: restorer, classifier, detector, segmentor)");
  }
  if (!task.empty() && t->kind_ != task) {
    return invalid_argument(deploy_path + ": the folder holds a " + t->kind_ + ", not a " + task);
  }
  KILN_ASSIGN_OR_RETURN(std::string model, string_field(j, "model", deploy_path));
  KILN_ASSIGN_OR_RETURN(t->input_, string_field(j, "input", deploy_path));
  const size_t wanted_outputs = t->kind_ == "detector" ? 2 : 1;
  const std::string outputs_help = t->kind_ == "detector" ? "a list of two names: boxes and scores" : "a name";
  if (!j.contains("output")) return invalid_argument(deploy_path + ": 'output' is required (" + outputs_help + ")");
  if (j["output"].is_string() && wanted_outputs == 1) {
    t->outputs_.push_back(j["output"].get<std::string>());
  } else if (j["output"].is_array() && j["output"].size() == wanted_outputs) {
    for (const auto& o : j["output"]) {
      if (o.is_string()) t->outputs_.push_back(o.get<std::string>());
    }
  }
  if (t->outputs_.size() != wanted_outputs) {
    return invalid_argument(deploy_path + ": 'output' must be " + outputs_help + " for a " + t->kind_ + ", not " +
                            j["output"].dump());
  }
  if (model.find('/') != std::string::npos) {
    return invalid_argument(deploy_path + ": 'model' must be a file name in the folder, not '" + model + "'");
  }
  KILN_ASSIGN_OR_RETURN(t->pipeline_, Pipeline::load(dir + "/pipeline.json", t->kind_));
  KILN_ASSIGN_OR_RETURN(t->session_, Session::create(dir + "/" + model, options));
  const auto& ins = t->session_->inputs();
  if (std::none_of(ins.begin(), ins.end(), [&](const IoInfo& i) { return i.name == t->input_; })) {
    return invalid_argument(deploy_path + ": 'input' is '" + t->input_ + "', which is not an input of " + model);
  }
  const auto& outs = t->session_->outputs();
  for (const auto& name : t->outputs_) {
    if (std::none_of(outs.begin(), outs.end(), [&](const IoInfo& o) { return o.name == name; })) {
      return invalid_argument(deploy_path + ": 'output' is '" + name + "', which is not an output of " + model);
    }
  }
  return t;
}

StatusOr<Task::Inferred> Task::infer(const Image& image) const {
  Inferred r;
  KILN_ASSIGN_OR_RETURN(r.prepared, pipeline_.apply(image));
  KILN_ASSIGN_OR_RETURN(r.outputs, session_->run({{input_, r.prepared.input}}, outputs_));
  return r;
}

StatusOr<RestoredImage> restore(const Task& task, const Image& image) {
  KILN_ASSIGN_OR_RETURN(Task::Inferred inferred, task.infer(image));
  const Tensor& out = inferred.outputs[0];
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
  KILN_ASSIGN_OR_RETURN(Task::Inferred inferred, task.infer(image));
  const Tensor& out = inferred.outputs[0];
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

namespace {

float iou(const Detection& a, const Detection& b) {
  const float w = std::min(a.right, b.right) - std::max(a.left, b.left);
  const float h = std::min(a.bottom, b.bottom) - std::max(a.top, b.top);
  if (w <= 0 || h <= 0) return 0;
  const float inter = w * h;
  const float area_a = (a.right - a.left) * (a.bottom - a.top), area_b = (b.right - b.left) * (b.bottom - b.top);
  return inter / (area_a + area_b - inter);
}

}  // namespace

StatusOr<std::vector<Detection>> detect(const Task& task, const Image& image) {
  KILN_ASSIGN_OR_RETURN(Task::Inferred inferred, task.infer(image));
  const Postprocess& pp = task.pipeline().postprocess;
  const Tensor& boxes = inferred.outputs[0];
  const Tensor& scores = inferred.outputs[1];
  const auto& bd = boxes.dims();
  const auto& sd = scores.dims();
  if (boxes.dtype() != DType::kFloat32 || scores.dtype() != DType::kFloat32 || bd.size() != 3 || sd.size() != 3 ||
      bd[0] != 1 || sd[0] != 1 || bd[2] != 4 || sd[1] != bd[1] || sd[2] < 1) {
    return invalid_argument("the detector's outputs are boxes " + Shape::from_dims(bd).to_string() + " and scores " +
                            Shape::from_dims(sd).to_string() + ": expected float [1, N, 4] and [1, N, classes]");
  }
  const int64_t n = bd[1], classes = sd[2];
  const float* b = boxes.data<float>();
  const float* s = scores.data<float>();
  const Prepared& p = inferred.prepared;
  // Candidates per class above the threshold, in the model's pixels.
  std::vector<Detection> candidates;
  for (int64_t i = 0; i < n; ++i) {
    const float* bb = b + i * 4;
    float x0 = bb[0], y0 = bb[1], x1 = bb[2], y1 = bb[3];
    if (pp.cxcywh) {
      x0 = bb[0] - bb[2] / 2, y0 = bb[1] - bb[3] / 2, x1 = bb[0] + bb[2] / 2, y1 = bb[1] + bb[3] / 2;
    }
    for (int64_t c = 0; c < classes; ++c) {
      const float score = s[i * classes + c];
      if (score > pp.score_thr) candidates.push_back({x0, y0, x1, y1, static_cast<int>(c), score});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Detection& a, const Detection& d) { return a.score > d.score; });
  // Greedy NMS within each class (torchvision's batched_nms), then the best max_det overall.
  std::vector<Detection> kept;
  for (const Detection& d : candidates) {
    bool suppressed = false;
    for (const Detection& k : kept) {
      if (k.label_id == d.label_id && iou(k, d) > pp.iou_thr) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(d);
    if (kept.size() == static_cast<size_t>(pp.max_det)) break;
  }
  // Back to the source image: source = (model - shift) / scale, clipped to it.
  for (Detection& d : kept) {
    d.left = std::clamp((d.left - p.shift_x) / p.scale_x, 0.0f, static_cast<float>(p.source_width));
    d.right = std::clamp((d.right - p.shift_x) / p.scale_x, 0.0f, static_cast<float>(p.source_width));
    d.top = std::clamp((d.top - p.shift_y) / p.scale_y, 0.0f, static_cast<float>(p.source_height));
    d.bottom = std::clamp((d.bottom - p.shift_y) / p.scale_y, 0.0f, static_cast<float>(p.source_height));
  }
  return kept;
}

StatusOr<Segmentation> segment(const Task& task, const Image& image) {
  KILN_ASSIGN_OR_RETURN(Task::Inferred inferred, task.infer(image));
  const Tensor& out = inferred.outputs[0];
  const auto& d = out.dims();
  if (out.dtype() != DType::kFloat32 || d.size() != 4 || d[0] != 1 || d[1] < 1) {
    return invalid_argument("the segmentor's output is " + std::string(dtype_name(out.dtype())) + " " +
                            Shape::from_dims(d).to_string() + ": expected float [1, classes, H, W]");
  }
  const int64_t classes = d[1], h = d[2], w = d[3];
  const Prepared& p = inferred.prepared;
  Segmentation seg{p.source_height, p.source_width, static_cast<int>(classes),
                   std::vector<int>(static_cast<size_t>(p.source_height) * static_cast<size_t>(p.source_width))};
  const float* v = out.data<float>();
  const int64_t plane = h * w;
  for (int y = 0; y < seg.height; ++y) {
    const int64_t my = std::clamp<int64_t>(static_cast<int64_t>(std::floor(y * p.scale_y + p.shift_y)), 0, h - 1);
    for (int x = 0; x < seg.width; ++x) {
      const int64_t mx = std::clamp<int64_t>(static_cast<int64_t>(std::floor(x * p.scale_x + p.shift_x)), 0, w - 1);
      const float* px = v + my * w + mx;
      int best = 0;
      for (int64_t c = 1; c < classes; ++c) {
        if (px[c * plane] > px[best * plane]) best = static_cast<int>(c);
      }
      seg.mask[static_cast<size_t>(y) * static_cast<size_t>(seg.width) + static_cast<size_t>(x)] = best;
    }
  }
  return seg;
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
