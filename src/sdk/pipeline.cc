// pipeline.json: parsing (errors name the file, the transform and the field) and the transforms themselves.
#include "sdk/pipeline.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace kiln::sdk {

namespace {

using json = nlohmann::json;

// Reads the fields of one JSON object, naming `where` in every error and refusing fields it does not know.
class Fields {
 public:
  Fields(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  Status status() const { return status_; }
  bool ok() const { return status_.is_ok(); }

  int integer(const std::string& key, int def, int min) {
    seen_.insert(key);
    if (!j_.contains(key)) return def;
    const json& v = j_[key];
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > (1 << 20)) {
      fail(key, "an integer from " + std::to_string(min) + " to " + std::to_string(1 << 20), v);
      return def;
    }
    return v.get<int>();
  }
  float number(const std::string& key, float def) {
    seen_.insert(key);
    if (!j_.contains(key)) return def;
    const json& v = j_[key];
    if (!v.is_number()) {
      fail(key, "a number", v);
      return def;
    }
    return v.get<float>();
  }
  bool boolean(const std::string& key, bool def) {
    seen_.insert(key);
    if (!j_.contains(key)) return def;
    const json& v = j_[key];
    if (!v.is_boolean()) {
      fail(key, "true or false", v);
      return def;
    }
    return v.get<bool>();
  }
  std::string choice(const std::string& key, const std::string& def, const std::vector<std::string>& allowed) {
    seen_.insert(key);
    if (!j_.contains(key)) return def;
    const json& v = j_[key];
    std::string options;
    for (const auto& a : allowed) options += (options.empty() ? "\"" : ", \"") + a + "\"";
    if (!v.is_string() || std::find(allowed.begin(), allowed.end(), v.get<std::string>()) == allowed.end()) {
      fail(key, "one of " + options, v);
      return def;
    }
    return v.get<std::string>();
  }
  // A list of `n` numbers (n = 0: any length of at least 1); `positive` requires each > 0.
  std::vector<float> numbers(const std::string& key, size_t n, bool positive = false) {
    seen_.insert(key);
    if (!j_.contains(key)) return {};
    const json& v = j_[key];
    std::vector<float> out;
    bool good = v.is_array() && (n == 0 ? !v.empty() : v.size() == n);
    for (size_t i = 0; good && i < v.size(); ++i) {
      good = v[i].is_number() && (!positive || v[i].get<double>() > 0);
      if (good) out.push_back(v[i].get<float>());
    }
    if (!good) {
      fail(key,
           (n ? "a list of " + std::to_string(n) : std::string("a list of")) +
               (positive ? " positive numbers" : " numbers"),
           v);
      return {};
    }
    return out;
  }
  bool has(const std::string& key) const { return j_.contains(key); }
  void require(const std::string& key, const std::string& why) {
    if (ok() && !j_.contains(key)) status_ = invalid_argument(where_ + ": '" + key + "' is required (" + why + ")");
  }
  void error(const std::string& message) {
    if (ok()) status_ = invalid_argument(where_ + ": " + message);
  }
  // Fields that are not known (`type` always is).
  void finish() {
    if (!ok()) return;
    for (const auto& [key, value] : j_.items()) {
      if (key != "type" && !seen_.count(key)) {
        std::string known;
        for (const auto& s : seen_) known += (known.empty() ? "'" : ", '") + s + "'";
        status_ = invalid_argument(where_ + ": unknown field '" + key + "'" +
                                   (known.empty() ? " (it takes no fields)" : " (known: " + known + ")"));
        return;
      }
    }
  }

 private:
  void fail(const std::string& key, const std::string& expected, const json& got) {
    if (ok()) status_ = invalid_argument(where_ + ": '" + key + "' must be " + expected + ", not " + got.dump());
  }
  const json& j_;
  std::string where_;
  std::set<std::string> seen_;
  Status status_;
};

StatusOr<Transform> parse_transform(const json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return invalid_argument(where + ": a transform must be an object with a \"type\"");
  }
  const std::string type = j["type"].get<std::string>();
  const std::string at = where + " (" + type + ")";
  Fields f(j, at);
  Transform t;
  if (type == "LoadImage") {
    t.kind = Transform::Kind::kLoadImage;
    t.grayscale = f.choice("color_type", "color", {"color", "grayscale"}) == "grayscale";
  } else if (type == "Resize") {
    t.kind = Transform::Kind::kResize;
    t.height = f.integer("height", 0, 1);
    t.width = f.integer("width", 0, 1);
    t.short_side = f.integer("short_side", 0, 1);
    t.keep_ratio = f.boolean("keep_ratio", false);
    t.nearest = f.choice("interpolation", "bilinear", {"bilinear", "nearest"}) == "nearest";
    if (f.ok() && !t.short_side && (!t.height || !t.width)) {
      f.error("give 'height' and 'width', or 'short_side'");
    }
    if (f.ok() && t.short_side && (t.height || t.width)) f.error("'short_side' excludes 'height' and 'width'");
  } else if (type == "CenterCrop") {
    t.kind = Transform::Kind::kCenterCrop;
    f.require("height", "the crop's size");
    f.require("width", "the crop's size");
    t.height = f.integer("height", 1, 1);
    t.width = f.integer("width", 1, 1);
  } else if (type == "Pad") {
    t.kind = Transform::Kind::kPad;
    t.size_divisor = f.integer("size_divisor", 0, 1);
    t.height = f.integer("height", 0, 1);
    t.width = f.integer("width", 0, 1);
    // "value" (the padding value); mmcv's and MMDeploy's pipelines call it "pad_val", which is taken too.
    t.pad_val = f.number("value", 0);
    if (f.has("pad_val")) {
      if (f.has("value")) f.error("give 'value' or 'pad_val', not both");
      t.pad_val = f.number("pad_val", 0);
    }
    if (f.ok() && !t.size_divisor && (!t.height || !t.width)) f.error("give 'size_divisor', or 'height' and 'width'");
  } else if (type == "Normalize") {
    t.kind = Transform::Kind::kNormalize;
    f.require("mean", "one per channel");
    f.require("std", "one per channel");
    t.mean = f.numbers("mean", 0);
    t.std = f.numbers("std", t.mean.empty() ? 0 : t.mean.size(), /*positive=*/true);
    t.to_rgb = f.boolean("to_rgb", false);
  } else if (type == "ImageToTensor" || type == "HWC2CHW") {
    t.kind = Transform::Kind::kImageToTensor;
  } else {
    return invalid_argument(where + ": unknown transform type '" + type +
                            "' (known: LoadImage, Resize, CenterCrop, Pad, Normalize, ImageToTensor)");
  }
  f.finish();
  if (!f.ok()) return f.status();
  return t;
}

StatusOr<Postprocess> parse_postprocess(const json& j, const std::string& where, const std::string& task) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return invalid_argument(where + ": it must be an object with a \"type\"");
  }
  const std::string type = j["type"].get<std::string>();
  const std::string at = where + " (" + type + ")";
  Fields f(j, at);
  Postprocess p;
  const std::string expected = task == "restorer"     ? "Restore"
                               : task == "classifier" ? "TopK"
                               : task == "detector"   ? "NMS"
                               : task == "segmentor"  ? "ArgMax"
                                                      : "";
  if (type != expected) {
    return invalid_argument(where + ": type '" + type + "' is not a " + task + "'s (expected '" + expected + "')");
  }
  if (type == "Restore") {
    p.kind = Postprocess::Kind::kRestore;
    p.scale = f.number("scale", 1);
    p.mean = f.numbers("mean", 0);
    p.std = f.numbers("std", p.mean.empty() ? 0 : p.mean.size(), /*positive=*/true);
    p.to_bgr = f.boolean("to_bgr", false);
    if (f.ok() && p.mean.empty() != p.std.empty()) f.error("'mean' and 'std' go together");
  } else if (type == "TopK") {
    p.kind = Postprocess::Kind::kTopK;
    p.topk = f.integer("topk", 5, 1);
    p.softmax = f.boolean("softmax", false);
  } else if (type == "NMS") {
    p.kind = Postprocess::Kind::kNms;
    p.score_thr = f.number("score_thr", 0.25f);
    p.iou_thr = f.number("iou_thr", 0.45f);
    p.max_det = f.integer("max_det", 100, 1);
    p.cxcywh = f.choice("box_format", "xyxy", {"xyxy", "cxcywh"}) == "cxcywh";
    if (f.ok() && (p.iou_thr <= 0 || p.iou_thr > 1)) f.error("'iou_thr' must be in (0, 1]");
  } else {
    p.kind = Postprocess::Kind::kArgMax;
  }
  f.finish();
  if (!f.ok()) return f.status();
  return p;
}

}  // namespace

std::string Pipeline::default_json(const std::string& task) {
  if (task == "detector") {
    return R"({
  "preprocess": [
    {"type": "LoadImage", "color_type": "color"},
    {"type": "Resize", "height": 640, "width": 640, "keep_ratio": true},
    {"type": "Pad", "height": 640, "width": 640, "value": 114},
    {"type": "Normalize", "mean": [0, 0, 0], "std": [255, 255, 255], "to_rgb": true},
    {"type": "ImageToTensor"}
  ],
  "postprocess": {"type": "NMS", "score_thr": 0.25, "iou_thr": 0.45, "max_det": 100, "box_format": "xyxy"}
}
)";
  }
  if (task == "segmentor") {
    return R"({
  "preprocess": [
    {"type": "LoadImage", "color_type": "color"},
    {"type": "Normalize", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": true},
    {"type": "ImageToTensor"}
  ],
  "postprocess": {"type": "ArgMax"}
}
)";
  }
  if (task == "classifier") {
    return R"({
  "preprocess": [
    {"type": "LoadImage", "color_type": "color"},
    {"type": "Resize", "short_side": 256, "interpolation": "bilinear"},
    {"type": "CenterCrop", "height": 224, "width": 224},
    {"type": "Normalize", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": true},
    {"type": "ImageToTensor"}
  ],
  "postprocess": {"type": "TopK", "topk": 5, "softmax": true}
}
)";
  }
  return R"({
  "preprocess": [
    {"type": "LoadImage", "color_type": "color"},
    {"type": "ImageToTensor"}
  ],
  "postprocess": {"type": "Restore"}
}
)";
}

StatusOr<Pipeline> Pipeline::load(const std::string& path, const std::string& task) {
  std::ifstream in(path);
  if (!in) return not_found(path + ": cannot open it");
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
  if (!j.is_object()) return invalid_argument(path + ": expected a JSON object with 'preprocess' and 'postprocess'");
  Pipeline p;
  for (const auto& [key, value] : j.items()) {
    if (key != "preprocess" && key != "postprocess") {
      return invalid_argument(path + ": unknown field '" + key + "' (known: 'preprocess', 'postprocess')");
    }
  }
  if (!j.contains("preprocess") || !j["preprocess"].is_array() || j["preprocess"].empty()) {
    return invalid_argument(path + ": 'preprocess' must be a non-empty list of transforms");
  }
  for (size_t i = 0; i < j["preprocess"].size(); ++i) {
    KILN_ASSIGN_OR_RETURN(Transform t,
                          parse_transform(j["preprocess"][i], path + ": preprocess[" + std::to_string(i) + "]"));
    p.preprocess.push_back(std::move(t));
  }
  if (p.preprocess.back().kind != Transform::Kind::kImageToTensor) {
    return invalid_argument(path + ": preprocess must end with ImageToTensor (the model takes NCHW tensors)");
  }
  if (task.empty()) return p;  // the preprocessing only (kiln quantize --preprocess): any postprocess is left unread
  if (!j.contains("postprocess")) return invalid_argument(path + ": 'postprocess' is required");
  KILN_ASSIGN_OR_RETURN(p.postprocess, parse_postprocess(j["postprocess"], path + ": postprocess", task));
  return p;
}

Image resize(const Image& src, int height, int width, bool nearest) {
  Image out{height, width, src.channels, std::vector<float>(static_cast<size_t>(height) * width * src.channels)};
  const double sy = static_cast<double>(src.height) / height, sx = static_cast<double>(src.width) / width;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      float* o = &out.data[(static_cast<size_t>(y) * width + x) * src.channels];
      if (nearest) {
        const int yy = std::min(static_cast<int>(std::floor(y * sy)), src.height - 1);
        const int xx = std::min(static_cast<int>(std::floor(x * sx)), src.width - 1);
        for (int c = 0; c < src.channels; ++c) o[c] = src.at(yy, xx, c);
        continue;
      }
      const double fy = std::max(0.0, (y + 0.5) * sy - 0.5), fx = std::max(0.0, (x + 0.5) * sx - 0.5);
      const int y0 = std::min(static_cast<int>(fy), src.height - 1), x0 = std::min(static_cast<int>(fx), src.width - 1);
      const int y1 = std::min(y0 + 1, src.height - 1), x1 = std::min(x0 + 1, src.width - 1);
      const double wy = fy - y0, wx = fx - x0;
      for (int c = 0; c < src.channels; ++c) {
        const double top = src.at(y0, x0, c) * (1 - wx) + src.at(y0, x1, c) * wx;
        const double bottom = src.at(y1, x0, c) * (1 - wx) + src.at(y1, x1, c) * wx;
        o[c] = static_cast<float>(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return out;
}

StatusOr<Prepared> Pipeline::apply(const Image& source) const {
  Prepared p;
  p.source_height = source.height;
  p.source_width = source.width;
  Image img = source;
  for (const Transform& t : preprocess) {
    switch (t.kind) {
      case Transform::Kind::kLoadImage:
        if (t.grayscale && img.channels == 3) {
          Image g{img.height, img.width, 1, std::vector<float>(static_cast<size_t>(img.height) * img.width)};
          // cv2.COLOR_BGR2GRAY's weights.
          for (size_t i = 0; i < g.data.size(); ++i) {
            g.data[i] = 0.114f * img.data[3 * i] + 0.587f * img.data[3 * i + 1] + 0.299f * img.data[3 * i + 2];
          }
          img = std::move(g);
        } else if (!t.grayscale && img.channels == 1) {
          Image c{img.height, img.width, 3, std::vector<float>(static_cast<size_t>(img.height) * img.width * 3)};
          for (size_t i = 0; i < img.data.size(); ++i)
            c.data[3 * i] = c.data[3 * i + 1] = c.data[3 * i + 2] = img.data[i];
          img = std::move(c);
        }
        break;
      case Transform::Kind::kResize: {
        int h = t.height, w = t.width;
        if (t.short_side) {
          // As torchvision's Resize(int): the short side to short_side, the long one to int(short_side * long /
          // short) (truncated).
          if (img.height <= img.width) {
            h = t.short_side;
            w = std::max(1, static_cast<int>(static_cast<int64_t>(t.short_side) * img.width / img.height));
          } else {
            w = t.short_side;
            h = std::max(1, static_cast<int>(static_cast<int64_t>(t.short_side) * img.height / img.width));
          }
        } else if (t.keep_ratio) {
          // As mmcv's rescale: the largest scale that fits, sides int(side * scale + 0.5).
          const double s =
              std::min(static_cast<double>(t.height) / img.height, static_cast<double>(t.width) / img.width);
          h = std::max(1, static_cast<int>(img.height * s + 0.5));
          w = std::max(1, static_cast<int>(img.width * s + 0.5));
        }
        const float sy = static_cast<float>(h) / img.height, sx = static_cast<float>(w) / img.width;
        p.scale_y *= sy;
        p.scale_x *= sx;
        p.shift_y *= sy;
        p.shift_x *= sx;
        img = resize(img, h, w, t.nearest);
        break;
      }
      case Transform::Kind::kCenterCrop: {
        if (t.height > img.height || t.width > img.width) {
          return invalid_argument("CenterCrop of " + std::to_string(t.height) + "x" + std::to_string(t.width) +
                                  " from an image of " + std::to_string(img.height) + "x" + std::to_string(img.width));
        }
        // As torchvision and mmcv: the top-left corner at Python's round((size - crop) / 2), half to even.
        const int y0 = static_cast<int>(std::nearbyint((img.height - t.height) / 2.0));
        const int x0 = static_cast<int>(std::nearbyint((img.width - t.width) / 2.0));
        p.shift_y -= static_cast<float>(y0);
        p.shift_x -= static_cast<float>(x0);
        Image c{t.height, t.width, img.channels, {}};
        c.data.reserve(static_cast<size_t>(t.height) * t.width * img.channels);
        for (int y = 0; y < t.height; ++y) {
          const float* row = &img.data[(static_cast<size_t>(y0 + y) * img.width + x0) * img.channels];
          c.data.insert(c.data.end(), row, row + static_cast<size_t>(t.width) * img.channels);
        }
        img = std::move(c);
        break;
      }
      case Transform::Kind::kPad: {
        int h = t.height, w = t.width;
        if (t.size_divisor) {
          h = (img.height + t.size_divisor - 1) / t.size_divisor * t.size_divisor;
          w = (img.width + t.size_divisor - 1) / t.size_divisor * t.size_divisor;
        }
        if (h < img.height || w < img.width) {
          return invalid_argument("Pad to " + std::to_string(h) + "x" + std::to_string(w) + " of an image of " +
                                  std::to_string(img.height) + "x" + std::to_string(img.width));
        }
        Image padded{h, w, img.channels, std::vector<float>(static_cast<size_t>(h) * w * img.channels, t.pad_val)};
        for (int y = 0; y < img.height; ++y) {
          std::copy_n(&img.data[static_cast<size_t>(y) * img.width * img.channels],
                      static_cast<size_t>(img.width) * img.channels,
                      &padded.data[static_cast<size_t>(y) * w * img.channels]);
        }
        img = std::move(padded);
        break;
      }
      case Transform::Kind::kNormalize: {
        if (t.mean.size() != static_cast<size_t>(img.channels)) {
          return invalid_argument("Normalize has " + std::to_string(t.mean.size()) + " means for an image of " +
                                  std::to_string(img.channels) + " channels");
        }
        const size_t n = static_cast<size_t>(img.height) * img.width;
        for (size_t i = 0; i < n; ++i) {
          float* px = &img.data[i * img.channels];
          if (t.to_rgb && img.channels == 3) std::swap(px[0], px[2]);
          for (int c = 0; c < img.channels; ++c) px[c] = (px[c] - t.mean[c]) / t.std[c];
        }
        break;
      }
      case Transform::Kind::kImageToTensor: {
        KILN_ASSIGN_OR_RETURN(p.input, Tensor::allocate(DType::kFloat32, {1, img.channels, img.height, img.width}));
        float* out = p.input.data<float>();
        const size_t plane = static_cast<size_t>(img.height) * img.width;
        for (size_t i = 0; i < plane; ++i) {
          for (int c = 0; c < img.channels; ++c)
            out[static_cast<size_t>(c) * plane + i] = img.data[i * img.channels + c];
        }
        break;
      }
    }
  }
  return p;
}

}  // namespace kiln::sdk
