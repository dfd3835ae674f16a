// kiln's C++ API for applications: header-only RAII wrappers over the C API (kiln_c.h), so that a program built
// with any C++ compiler links libkiln.so through its stable C ABI. Errors are thrown as kiln::sdk::Error (the code
// and message of the kiln_status), as ONNX Runtime's C++ API throws Ort::Exception.
//
//   kiln::sdk::Session session("srcnn.onnx");
//   auto x = kiln::sdk::Tensor::from_data<float>({1, 3, 256, 256}, pixels);
//   auto outputs = session.run({{"input", &x}});
//   const float* y = outputs[0].data<float>();
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln_c.h"

namespace kiln::sdk {

class Error : public std::runtime_error {
 public:
  Error(int32_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int32_t code() const { return code_; }  // a kiln_status_code_t

 private:
  int32_t code_;
};

// Throws the status as an Error (and releases it); does nothing for NULL.
inline void check(kiln_status* status) {
  if (!status) return;
  Error e(kiln_status_code(status), kiln_status_message(status));
  kiln_status_release(status);
  throw e;
}

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr int32_t value = KILN_DTYPE_FLOAT;
};
template <>
struct DTypeOf<double> {
  static constexpr int32_t value = KILN_DTYPE_DOUBLE;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr int32_t value = KILN_DTYPE_UINT8;
};
template <>
struct DTypeOf<int8_t> {
  static constexpr int32_t value = KILN_DTYPE_INT8;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr int32_t value = KILN_DTYPE_INT32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr int32_t value = KILN_DTYPE_INT64;
};

// A tensor that owns its kiln_tensor handle (move-only).
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(kiln_tensor* handle) : handle_(handle) {}
  Tensor(Tensor&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  Tensor& operator=(Tensor&& o) noexcept {
    if (this != &o) {
      kiln_tensor_release(handle_);
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor() { kiln_tensor_release(handle_); }

  // A copy of `values` (row-major) with dims `shape`.
  template <typename T>
  static Tensor from_data(const std::vector<int64_t>& shape, const std::vector<T>& values) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (n != static_cast<int64_t>(values.size())) {
      throw Error(KILN_INVALID_ARGUMENT, "kiln::sdk::Tensor::from_data: " + std::to_string(values.size()) +
                                             " values for a shape of " + std::to_string(n) + " elements");
    }
    kiln_tensor* t = nullptr;
    check(kiln_tensor_create(DTypeOf<T>::value, shape.data(), shape.size(), values.data(), &t));
    return Tensor(t);
  }
  // A view of the caller's memory (not copied), which must outlive the tensor.
  template <typename T>
  static Tensor borrow(const std::vector<int64_t>& shape, T* data) {
    kiln_tensor* t = nullptr;
    check(kiln_tensor_create_borrowed(DTypeOf<T>::value, shape.data(), shape.size(), data, &t));
    return Tensor(t);
  }

  kiln_tensor* get() const { return handle_; }
  int32_t dtype() const {
    int32_t d = 0;
    check(kiln_tensor_dtype(handle_, &d));
    return d;
  }
  std::vector<int64_t> shape() const {
    size_t rank = 0;
    const int64_t* dims = nullptr;
    check(kiln_tensor_rank(handle_, &rank));
    check(kiln_tensor_shape(handle_, &dims));
    return std::vector<int64_t>(dims, dims + rank);
  }
  int64_t size() const {
    int64_t n = 0;
    check(kiln_tensor_element_count(handle_, &n));
    return n;
  }
  // The elements; T must match the dtype.
  template <typename T>
  T* data() const {
    if (dtype() != DTypeOf<T>::value) {
      throw Error(KILN_INVALID_ARGUMENT, "kiln::sdk::Tensor::data: the tensor's dtype is " + std::to_string(dtype()) +
                                             ", not " + std::to_string(DTypeOf<T>::value));
    }
    void* p = nullptr;
    check(kiln_tensor_data(handle_, &p));
    return static_cast<T*>(p);
  }

 private:
  kiln_tensor* handle_ = nullptr;
};

struct SessionOptions {
  int32_t threads = 0;     // 0: one per physical core
  int32_t opt_level = 99;  // 0, 1, 2 or 99
  int64_t memory_limit_mb = 0;
};

// A graph input or output: name, dtype, dims (-1 where symbolic or unknown; `dim_names` gives the symbols) and
// rank (-1 when unknown).
struct IoInfo {
  std::string name;
  int32_t dtype = KILN_DTYPE_UNDEFINED;
  int64_t rank = -1;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_names;
};

// A session that owns its kiln_session handle (move-only). run() may be called from several threads at once.
class Session {
 public:
  explicit Session(const std::string& path, const SessionOptions& options = {}) {
    kiln_session_options* o = nullptr;
    check(kiln_session_options_create(&o));
    kiln_status* s = kiln_session_options_set_threads(o, options.threads);
    if (!s) s = kiln_session_options_set_opt_level(o, options.opt_level);
    if (!s) s = kiln_session_options_set_memory_limit_mb(o, options.memory_limit_mb);
    if (!s) s = kiln_session_create(path.c_str(), o, &handle_);
    kiln_session_options_release(o);
    check(s);
  }
  Session(Session&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  Session& operator=(Session&& o) noexcept {
    if (this != &o) {
      kiln_session_release(handle_);
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { kiln_session_release(handle_); }

  kiln_session* get() const { return handle_; }
  std::vector<IoInfo> inputs() const { return io(true); }
  std::vector<IoInfo> outputs() const { return io(false); }

  // Runs on named inputs; returns `output_names`' tensors, or every output in the model's order when empty.
  std::vector<Tensor> run(const std::vector<std::pair<std::string, const Tensor*>>& inputs,
                          const std::vector<std::string>& output_names = {}) const {
    const Args a(inputs, output_names);
    size_t n_out = a.wanted.size();
    if (a.wanted.empty()) check(kiln_session_output_count(handle_, &n_out));
    std::vector<kiln_tensor*> raw(n_out, nullptr);
    check(kiln_session_run(handle_, a.names.data(), a.values.data(), a.names.size(), a.wanted_or_null(), n_out,
                           raw.data()));
    std::vector<Tensor> out;
    for (kiln_tensor* t : raw) out.emplace_back(t);
    return out;
  }

  // Runs writing the outputs into `outputs` (tensors of the outputs' dtypes and shapes, typically over your own
  // buffers: kiln_session_run_into), in the order of `output_names`, or of the model's outputs when it is empty.
  void run_into(const std::vector<std::pair<std::string, const Tensor*>>& inputs, const std::vector<Tensor*>& outputs,
                const std::vector<std::string>& output_names = {}) const {
    const Args a(inputs, output_names);
    std::vector<kiln_tensor*> outs;
    for (Tensor* t : outputs) outs.push_back(t ? t->get() : nullptr);
    check(kiln_session_run_into(handle_, nullptr, a.names.data(), a.values.data(), a.names.size(), a.wanted_or_null(),
                                outs.size(), outs.data()));
  }

 private:
  // A run's arguments as the C API takes them (views of `inputs` and `output_names`, which outlive the call).
  struct Args {
    Args(const std::vector<std::pair<std::string, const Tensor*>>& inputs,
         const std::vector<std::string>& output_names) {
      for (const auto& [name, tensor] : inputs) {
        names.push_back(name.c_str());
        values.push_back(tensor ? tensor->get() : nullptr);
      }
      for (const auto& n : output_names) wanted.push_back(n.c_str());
    }
    const char* const* wanted_or_null() const { return wanted.empty() ? nullptr : wanted.data(); }
    std::vector<const char*> names;
    std::vector<const kiln_tensor*> values;
    std::vector<const char*> wanted;
  };

  std::vector<IoInfo> io(bool inputs) const {
    size_t n = 0;
    check(inputs ? kiln_session_input_count(handle_, &n) : kiln_session_output_count(handle_, &n));
    std::vector<IoInfo> out(n);
    for (size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      const int64_t* dims = nullptr;
      IoInfo& info = out[i];
      check(inputs ? kiln_session_input_name(handle_, i, &name) : kiln_session_output_name(handle_, i, &name));
      check(inputs ? kiln_session_input_dtype(handle_, i, &info.dtype)
                   : kiln_session_output_dtype(handle_, i, &info.dtype));
      check(inputs ? kiln_session_input_shape(handle_, i, &dims, &info.rank)
                   : kiln_session_output_shape(handle_, i, &dims, &info.rank));
      info.name = name;
      for (int64_t d = 0; d < info.rank; ++d) {
        const char* symbol = nullptr;
        check(inputs ? kiln_session_input_dim_name(handle_, i, static_cast<size_t>(d), &symbol)
                     : kiln_session_output_dim_name(handle_, i, static_cast<size_t>(d), &symbol));
        info.dims.push_back(dims[d]);
        info.dim_names.emplace_back(symbol);
      }
    }
    return out;
  }

  kiln_session* handle_ = nullptr;
};

// An image for the tasks: a view of the caller's pixels (HWC, rows packed), as kiln_mat.
struct Mat {
  const void* data = nullptr;
  int height = 0, width = 0, channels = 3;
  int format = KILN_PIXEL_FORMAT_BGR;
  int type = KILN_DATA_TYPE_UINT8;
  kiln_mat to_c() const {
    return kiln_mat{static_cast<uint8_t*>(const_cast<void*>(data)), height, width, channels, format, type};
  }
};

// A restored image that owns its pixels (BGR or gray uint8, HWC).
struct RestoredImage {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// What every task class shares: the handle, made from a model folder and destroyed with the object (move-only).
template <typename Handle, kiln_status* (*Create)(const char*, const char*, int, Handle**), void (*Destroy)(Handle*)>
class TaskHandle {
 public:
  explicit TaskHandle(const std::string& model_dir, const std::string& device = "cpu", int device_id = 0) {
    check(Create(model_dir.c_str(), device.c_str(), device_id, &handle_));
  }
  TaskHandle(TaskHandle&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  TaskHandle(const TaskHandle&) = delete;
  TaskHandle& operator=(const TaskHandle&) = delete;
  ~TaskHandle() { Destroy(handle_); }

 protected:
  static std::vector<kiln_mat> c_mats(const std::vector<Mat>& images) {
    std::vector<kiln_mat> mats;
    for (const auto& m : images) mats.push_back(m.to_c());
    return mats;
  }
  // Splits the flattened results of a list-valued task (`counts[i]` items for image i) and releases them.
  template <typename Item, typename Apply, typename Release>
  static std::vector<std::vector<Item>> split(const std::vector<Mat>& images, Apply&& apply, Release&& release) {
    std::vector<kiln_mat> mats = c_mats(images);
    Item* results = nullptr;
    int* counts = nullptr;
    check(apply(mats.data(), static_cast<int>(mats.size()), &results, &counts));
    std::vector<std::vector<Item>> out;
    const Item* next = results;
    for (size_t i = 0; i < mats.size(); ++i) {
      out.emplace_back(next, next + counts[i]);
      next += counts[i];
    }
    release(results, counts, static_cast<int>(mats.size()));
    return out;
  }
  Handle* handle_ = nullptr;
};

// kiln_restorer_*: a restorer from a model folder (`kiln pack --task restorer`), applied to images.
class Restorer : public TaskHandle<kiln_restorer, kiln_restorer_create_by_path, kiln_restorer_destroy> {
 public:
  using TaskHandle::TaskHandle;
  std::vector<RestoredImage> apply(const std::vector<Mat>& images) const {
    std::vector<kiln_mat> mats = c_mats(images);
    kiln_mat* results = nullptr;
    check(kiln_restorer_apply(handle_, mats.data(), static_cast<int>(mats.size()), &results));
    std::vector<RestoredImage> out;
    for (size_t i = 0; i < mats.size(); ++i) {
      const kiln_mat& r = results[i];
      const size_t n = static_cast<size_t>(r.height) * static_cast<size_t>(r.width) * static_cast<size_t>(r.channel);
      out.push_back({r.height, r.width, r.channel, std::vector<uint8_t>(r.data, r.data + n)});
    }
    kiln_restorer_release_result(results, static_cast<int>(mats.size()));
    return out;
  }
  RestoredImage operator()(const Mat& image) const { return apply({image}).at(0); }
};

// kiln_classifier_*: the top classes of images, best first.
class Classifier : public TaskHandle<kiln_classifier, kiln_classifier_create_by_path, kiln_classifier_destroy> {
 public:
  using TaskHandle::TaskHandle;
  std::vector<std::vector<kiln_classification>> apply(const std::vector<Mat>& images) const {
    return split<kiln_classification>(
        images,
        [this](const kiln_mat* m, int n, kiln_classification** r, int** c) {
          return kiln_classifier_apply(handle_, m, n, r, c);
        },
        kiln_classifier_release_result);
  }
  std::vector<kiln_classification> operator()(const Mat& image) const { return apply({image}).at(0); }
};

// kiln_detector_*: boxes (in the image's pixels), classes and scores, best first.
class Detector : public TaskHandle<kiln_detector, kiln_detector_create_by_path, kiln_detector_destroy> {
 public:
  using TaskHandle::TaskHandle;
  std::vector<std::vector<kiln_detection>> apply(const std::vector<Mat>& images) const {
    return split<kiln_detection>(
        images,
        [this](const kiln_mat* m, int n, kiln_detection** r, int** c) {
          return kiln_detector_apply(handle_, m, n, r, c);
        },
        kiln_detector_release_result);
  }
  std::vector<kiln_detection> operator()(const Mat& image) const { return apply({image}).at(0); }
};

struct Segmentation {
  int height = 0, width = 0, classes = 0;
  std::vector<int> mask;  // height x width class ids
};

// kiln_segmentor_*: a class per pixel.
class Segmentor : public TaskHandle<kiln_segmentor, kiln_segmentor_create_by_path, kiln_segmentor_destroy> {
 public:
  using TaskHandle::TaskHandle;
  std::vector<Segmentation> apply(const std::vector<Mat>& images) const {
    std::vector<kiln_mat> mats = c_mats(images);
    kiln_segmentation* results = nullptr;
    check(kiln_segmentor_apply(handle_, mats.data(), static_cast<int>(mats.size()), &results));
    std::vector<Segmentation> out;
    for (size_t i = 0; i < mats.size(); ++i) {
      const kiln_segmentation& r = results[i];
      const size_t n = static_cast<size_t>(r.height) * static_cast<size_t>(r.width);
      out.push_back({r.height, r.width, r.classes, std::vector<int>(r.mask, r.mask + n)});
    }
    kiln_segmentor_release_result(results, static_cast<int>(mats.size()));
    return out;
  }
  Segmentation operator()(const Mat& image) const { return apply({image}).at(0); }
};

}  // namespace kiln::sdk
