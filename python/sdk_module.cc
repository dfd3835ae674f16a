// kiln.sdk: the vision tasks of a model folder made by `kiln pack` (src/sdk, docs/sdk.md).
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "module.h"
#include "sdk/tasks.h"

namespace kiln::python {
namespace {

StatusOr<sdk::Image> image_from_numpy(const py::array& a) {
  if (a.ndim() != 2 && a.ndim() != 3) {
    return invalid_argument("the image must be an H x W (gray) or H x W x 3 (BGR) array, not of rank " +
                            std::to_string(a.ndim()));
  }
  const int channels = a.ndim() == 2 ? 1 : static_cast<int>(a.shape(2));
  if (py::isinstance<py::array_t<uint8_t>>(a)) {
    auto c = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
    return sdk::image_from_pixels(c.data(), static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), channels, false,
                                  false);
  }
  if (!py::isinstance<py::array_t<float>>(a)) {
    return invalid_argument("the image's dtype must be uint8 or float32, not " +
                            py::str(a.dtype()).cast<std::string>());
  }
  auto c = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  return sdk::image_from_pixels(c.data(), static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), channels, false,
                                true);
}

class PyTask {
 public:
  PyTask(const std::string& model_dir, const std::string& kind, const std::string& device, int device_id) {
    if (device != "cpu" || device_id != 0) {
      raise(invalid_argument("device '" + device + "' " + std::to_string(device_id) +
                             " is not available (kiln runs on the CPU: \"cpu\", 0)"));
    }
    task_ = value_or_raise(sdk::Task::load(model_dir, kind));
  }
  const sdk::Task& task() const { return *task_; }

 private:
  std::unique_ptr<sdk::Task> task_;
};

struct PyRestorer : PyTask {
  using PyTask::PyTask;
};
struct PyClassifier : PyTask {
  using PyTask::PyTask;
};
struct PyDetector : PyTask {
  using PyTask::PyTask;
};
struct PySegmentor : PyTask {
  using PyTask::PyTask;
};

// [(left, top, right, bottom, label_id, score), ...], best first.
std::vector<std::tuple<float, float, float, float, int, float>> detect_image(const PyDetector& t,
                                                                             const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<std::vector<sdk::Detection>> found = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    found = sdk::detect(t.task(), img);
  }
  if (!found.is_ok()) raise(found.status());
  std::vector<std::tuple<float, float, float, float, int, float>> out;
  for (const auto& d : *found) out.emplace_back(d.left, d.top, d.right, d.bottom, d.label_id, d.score);
  return out;
}

// An H x W int32 array of class ids.
py::array segment_image(const PySegmentor& t, const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<sdk::Segmentation> seg = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    seg = sdk::segment(t.task(), img);
  }
  if (!seg.is_ok()) raise(seg.status());
  py::array_t<int32_t> a({static_cast<py::ssize_t>(seg->height), static_cast<py::ssize_t>(seg->width)});
  std::copy(seg->mask.begin(), seg->mask.end(), a.mutable_data());
  return a;
}

py::array restore_image(const PyRestorer& t, const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<sdk::RestoredImage> r = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    r = sdk::restore(t.task(), img);
  }
  if (!r.is_ok()) raise(r.status());
  const sdk::RestoredImage& out = *r;
  std::vector<py::ssize_t> shape = {out.height, out.width};
  if (out.channels != 1) shape.push_back(out.channels);
  py::array_t<uint8_t> a(shape);
  std::memcpy(a.mutable_data(), out.pixels.data(), out.pixels.size());
  return a;
}

std::vector<std::pair<int, float>> classify_image(const PyClassifier& t, const py::array& image) {
  auto img = value_or_raise(image_from_numpy(image));
  StatusOr<std::vector<sdk::Classification>> top = invalid_argument("");
  {
    py::gil_scoped_release nogil;
    top = sdk::classify(t.task(), img);
  }
  std::vector<std::pair<int, float>> out;
  if (!top.is_ok()) raise(top.status());
  for (const auto& c : *top) out.emplace_back(c.label_id, c.score);
  return out;
}

}  // namespace

void bind_sdk(py::module_& m) {
  auto sdk_m = m.def_submodule("sdk", "The vision tasks of a model folder made by `kiln pack` (MMDeploy's SDK)");
  py::class_<PyRestorer>(sdk_m, "Restorer")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PyRestorer(dir, "restorer", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &restore_image, py::arg("image"),
           "The restored image (H x W x 3 BGR uint8) of an H x W x 3 BGR image (uint8 or float32)");
  py::class_<PyClassifier>(sdk_m, "Classifier")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PyClassifier(dir, "classifier", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &classify_image, py::arg("image"), "[(label_id, score), ...], best first");
  py::class_<PyDetector>(sdk_m, "Detector")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PyDetector(dir, "detector", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &detect_image, py::arg("image"),
           "[(left, top, right, bottom, label_id, score), ...] in the image's pixels, best first");
  py::class_<PySegmentor>(sdk_m, "Segmentor")
      .def(py::init([](const std::string& dir, const std::string& device, int device_id) {
             return PySegmentor(dir, "segmentor", device, device_id);
           }),
           py::arg("model_dir"), py::arg("device_name") = "cpu", py::arg("device_id") = 0)
      .def("__call__", &segment_image, py::arg("image"), "The class of each pixel: an H x W int32 array");
}

}  // namespace kiln::python
