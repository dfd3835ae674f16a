// A task's preprocessing and postprocessing, read from its model folder's pipeline.json (docs/sdk.md): images
// (HWC, BGR as cv2.imread gives them) to the model's input tensor, and what the task makes of the outputs.
#pragma once

#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln::sdk {

// An image: height x width x channels, channel-last, float values (0-255 for 8-bit sources); BGR or gray.
struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<float> data;
  float at(int y, int x, int c) const {
    return data[(static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) *
                    static_cast<size_t>(channels) +
                static_cast<size_t>(c)];
  }
};

struct Transform {
  enum class Kind { kLoadImage, kResize, kCenterCrop, kPad, kNormalize, kImageToTensor };
  Kind kind = Kind::kLoadImage;
  // LoadImage: "color" (3 channels BGR; gray is repeated) or "grayscale".
  bool grayscale = false;
  // Resize: to height x width; with keep_ratio, scaled to fit inside it; or the short side to short_side.
  int height = 0, width = 0, short_side = 0;
  bool keep_ratio = false;
  bool nearest = false;  // interpolation "nearest" (else "bilinear", cv2's INTER_LINEAR)
  // Pad: to a multiple of size_divisor, or to height x width; with `value` ("pad_val" in mmcv's pipelines).
  int size_divisor = 0;
  float pad_val = 0;
  // Normalize: (x - mean) / std per channel, after swapping BGR to RGB when to_rgb.
  std::vector<float> mean, std;
  bool to_rgb = false;
};

struct Postprocess {
  enum class Kind { kRestore, kTopK, kNms, kArgMax };
  Kind kind = Kind::kRestore;
  // Restore: out * scale (+ mean/std denormalization when given), clipped to 0-255 and truncated to uint8; the
  // model's channels are RGB when to_bgr (swapped back to BGR).
  float scale = 1;
  std::vector<float> mean, std;
  bool to_bgr = false;
  // TopK: the k best classes of the first output's row, scored by softmax when `softmax` (else raw).
  int topk = 5;
  bool softmax = false;
  // Nms (detector): outputs `boxes` [1, N, 4] (xyxy, or cxcywh with box_format "cxcywh", in the model input's
  // pixels) and `scores` [1, N, classes]; per class, boxes scoring above score_thr, greedy NMS at iou_thr, then the
  // max_det best overall; mapped back to the source image (undoing Resize) and clipped to it.
  float score_thr = 0.25f, iou_thr = 0.45f;
  int max_det = 100;
  bool cxcywh = false;
  // ArgMax (segmentor): the class of each pixel of output [1, classes, H, W] (the first class of equal scores),
  // taken for each source pixel (y, x) at the model pixel (floor(y * scale_y + shift_y), floor(x * scale_x +
  // shift_x)), clamped: nearest-neighbour back to the source image.
};

// What preprocessing did, for postprocessing that maps back to the source image.
struct Prepared {
  Tensor input;  // [1, C, H, W] float32
  int source_height = 0, source_width = 0;
  // Where a source pixel lands in the tensor: model = source * scale + shift, per axis (Resize scales, CenterCrop
  // shifts, Pad adds at the bottom and right only).
  float scale_y = 1, scale_x = 1;
  float shift_y = 0, shift_x = 0;
};

struct Pipeline {
  std::vector<Transform> preprocess;
  Postprocess postprocess;

  // Reads pipeline.json; every error names the file, the transform (its index and type) and the field. An empty
  // task reads the preprocessing only (a postprocess, if any, is not read).
  static StatusOr<Pipeline> load(const std::string& path, const std::string& task);
  // The default pipeline of a task ("restorer": the tutorial's SRCNN, BGR pixels 0-255 in and out; "classifier":
  // ImageNet's resize to 256, center crop 224, mean/std on RGB, top-5 of softmax; "detector": YOLO's letterbox to
  // 640x640 padded with 114, RGB 0-1, NMS at 0.25 / 0.45; "segmentor": ImageNet's mean/std on RGB, argmax).
  static std::string default_json(const std::string& task);

  StatusOr<Prepared> apply(const Image& image) const;
};

// Resizes (bilinear with half-pixel centers as cv2.INTER_LINEAR, or cv2.INTER_NEAREST).
Image resize(const Image& src, int height, int width, bool nearest);

}  // namespace kiln::sdk
