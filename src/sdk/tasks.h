// Tasks after MMDeploy's SDK: a model folder (the model, deploy.json, pipeline.json) loaded once, applied to images.
// The C API (kiln_c.h's kiln_restorer_*, kiln_classifier_*), the CLI (`kiln pack`, `kiln task`) and Python's
// kiln.sdk are thin over this. docs/sdk.md describes the folder.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/runtime/session.h"
#include "sdk/pipeline.h"

namespace kiln::sdk {

class Task {
 public:
  // Loads DIR/deploy.json ({"version": 1, "task": "restorer", "model": "srcnn.onnx", "input": "input",
  // "output": "output"}; a detector's "output" is ["boxes", "scores"]), DIR/pipeline.json and the model. `task`: the
  // kind the caller wants ("restorer"...), checked against deploy.json's; "" takes any (kind() says which). Errors
  // name the file and the field.
  static StatusOr<std::unique_ptr<Task>> load(const std::string& dir, const std::string& task,
                                              const SessionOptions& options = {});

  const std::string& kind() const { return kind_; }
  const Pipeline& pipeline() const { return pipeline_; }
  struct Inferred {
    Prepared prepared;
    std::vector<Tensor> outputs;  // those deploy.json names, in its order
  };
  // Preprocesses and runs.
  StatusOr<Inferred> infer(const Image& image) const;

 private:
  std::string kind_, input_;
  std::vector<std::string> outputs_;
  Pipeline pipeline_;
  std::unique_ptr<Session> session_;
};

// A restorer's result: the output image, BGR (or gray) uint8, HWC.
struct RestoredImage {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};
StatusOr<RestoredImage> restore(const Task& task, const Image& image);

struct Classification {
  int label_id = 0;
  float score = 0;
};
// The top-k classes, best first (ties: the lower label first).
StatusOr<std::vector<Classification>> classify(const Task& task, const Image& image);

// A detected object: its box in the source image's pixels (left, top, right, bottom), class and score.
struct Detection {
  float left = 0, top = 0, right = 0, bottom = 0;
  int label_id = 0;
  float score = 0;
};
// Best first, at most the pipeline's max_det.
StatusOr<std::vector<Detection>> detect(const Task& task, const Image& image);

// A class per pixel of the source image, row-major.
struct Segmentation {
  int height = 0, width = 0, classes = 0;
  std::vector<int> mask;
};
StatusOr<Segmentation> segment(const Task& task, const Image& image);

// An image from 8-bit or float pixels, HWC, of `channels` 1 (gray) or 3 (`rgb`: RGB, else BGR), as BGR or gray.
StatusOr<Image> image_from_pixels(const void* data, int height, int width, int channels, bool rgb, bool is_float);

// The tasks `kiln pack` knows.
inline const std::vector<std::string>& task_kinds() {
  static const std::vector<std::string> kinds = {"restorer", "classifier", "detector", "segmentor"};
  return kinds;
}

}  // namespace kiln::sdk
