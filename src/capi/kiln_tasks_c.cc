// The tasks' C API (include/kiln/kiln_tasks.h) over kiln::sdk::Task.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capi/capi_util.h"
#include "kiln/kiln_tasks.h"
#include "sdk/tasks.h"

using kiln::capi::from_status;
using kiln::capi::guarded;
using kiln::capi::invalid;

struct kiln_restorer {
  std::unique_ptr<kiln::sdk::Task> task;
};

struct kiln_classifier {
  std::unique_ptr<kiln::sdk::Task> task;
};

struct kiln_detector {
  std::unique_ptr<kiln::sdk::Task> task;
};

struct kiln_segmentor {
  std::unique_ptr<kiln::sdk::Task> task;
};

namespace {

kiln_status* check_device(const char* fn, const char* device, int device_id) {
  KILN_C_REQUIRE(device, fn, "device");
  if (std::string(device) != "cpu") {
    return invalid(std::string(fn) + ": device '" + device + "' is not available (kiln runs on the CPU: \"cpu\")");
  }
  if (device_id != 0) return invalid(std::string(fn) + ": device_id " + std::to_string(device_id) + " (the CPU is 0)");
  return nullptr;
}

// Checks images[i] and converts it; errors name the image and the field.
kiln_status* to_image(const char* fn, const kiln_mat& m, int i, kiln::sdk::Image& out) {
  const std::string where = std::string(fn) + ": images[" + std::to_string(i) + "]";
  if (m.format != KILN_PIXEL_FORMAT_BGR && m.format != KILN_PIXEL_FORMAT_RGB &&
      m.format != KILN_PIXEL_FORMAT_GRAYSCALE) {
    return invalid(where + ": format " + std::to_string(m.format) +
                   " (expected KILN_PIXEL_FORMAT_BGR, _RGB or _GRAYSCALE)");
  }
  if (m.type != KILN_DATA_TYPE_UINT8 && m.type != KILN_DATA_TYPE_FLOAT) {
    return invalid(where + ": type " + std::to_string(m.type) + " (expected KILN_DATA_TYPE_UINT8 or _FLOAT)");
  }
  const int channels = m.format == KILN_PIXEL_FORMAT_GRAYSCALE ? 1 : 3;
  if (m.channel != channels) {
    return invalid(where + ": channel is " + std::to_string(m.channel) + ", but its format has " +
                   std::to_string(channels));
  }
  auto img = kiln::sdk::image_from_pixels(m.data, m.height, m.width, m.channel, m.format == KILN_PIXEL_FORMAT_RGB,
                                          m.type == KILN_DATA_TYPE_FLOAT);
  if (!img.is_ok()) return invalid(where + ": " + img.status().message());
  out = std::move(img).value();
  return nullptr;
}

template <typename Handle>
kiln_status* create(const char* fn, const char* task, const char* model_dir, const char* device, int device_id,
                    Handle** out) {
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(out, fn, "out");
    *out = nullptr;
    KILN_C_REQUIRE(model_dir, fn, "model_dir");
    if (kiln_status* bad = check_device(fn, device, device_id)) return bad;
    auto loaded = kiln::sdk::Task::load(model_dir, task);
    if (!loaded.is_ok()) return from_status(loaded.status());
    auto h = std::make_unique<Handle>();
    h->task = std::move(loaded).value();
    *out = h.release();
    return nullptr;
  });
}

// Applies `run` (Image -> StatusOr<std::vector<Item>>) to every image and flattens the results into new[]'ed arrays.
template <typename Item, typename CItem, typename Run, typename Convert>
kiln_status* apply_list(const char* fn, const kiln_mat* images, int count, CItem** results, int** result_count,
                        Run&& run, Convert&& convert) {
  KILN_C_REQUIRE(results, fn, "results");
  KILN_C_REQUIRE(result_count, fn, "result_count");
  *results = nullptr;
  *result_count = nullptr;
  KILN_C_REQUIRE(images, fn, "images");
  if (count < 1) return invalid(std::string(fn) + ": count is " + std::to_string(count) + " (expected >= 1)");
  std::vector<CItem> all;
  std::vector<int> counts;
  for (int i = 0; i < count; ++i) {
    kiln::sdk::Image img;
    if (kiln_status* bad = to_image(fn, images[i], i, img)) return bad;
    kiln::StatusOr<std::vector<Item>> items = run(img);
    if (!items.is_ok()) {
      return from_status(items.status().with_context(std::string(fn) + ": images[" + std::to_string(i) + "]"));
    }
    counts.push_back(static_cast<int>(items->size()));
    for (const auto& item : *items) all.push_back(convert(item));
  }
  auto r = std::make_unique<CItem[]>(all.size());
  std::copy(all.begin(), all.end(), r.get());
  auto n = std::make_unique<int[]>(counts.size());
  std::copy(counts.begin(), counts.end(), n.get());
  *results = r.release();
  *result_count = n.release();
  return nullptr;
}

}  // namespace

extern "C" {

kiln_status* kiln_restorer_create_by_path(const char* model_dir, const char* device, int device_id,
                                          kiln_restorer** out) {
  return create(__func__, "restorer", model_dir, device, device_id, out);
}

kiln_status* kiln_restorer_apply(kiln_restorer* restorer, const kiln_mat* images, int count, kiln_mat** results) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(results, fn, "results");
    *results = nullptr;
    KILN_C_REQUIRE(restorer, fn, "restorer");
    KILN_C_REQUIRE(images, fn, "images");
    if (count < 1) return invalid(std::string(fn) + ": count is " + std::to_string(count) + " (expected >= 1)");
    std::vector<kiln::sdk::RestoredImage> done;
    for (int i = 0; i < count; ++i) {
      kiln::sdk::Image img;
      if (kiln_status* bad = to_image(fn, images[i], i, img)) return bad;
      auto r = kiln::sdk::restore(*restorer->task, img);
      if (!r.is_ok())
        return from_status(r.status().with_context(std::string(fn) + ": images[" + std::to_string(i) + "]"));
      done.push_back(std::move(r).value());
    }
    auto* mats = new kiln_mat[static_cast<size_t>(count)]();
    for (int i = 0; i < count; ++i) {
      const auto& r = done[static_cast<size_t>(i)];
      kiln_mat& m = mats[i];
      m.height = r.height;
      m.width = r.width;
      m.channel = r.channels;
      m.format = r.channels == 1 ? KILN_PIXEL_FORMAT_GRAYSCALE : KILN_PIXEL_FORMAT_BGR;
      m.type = KILN_DATA_TYPE_UINT8;
      m.data = new uint8_t[r.pixels.size()];
      std::memcpy(m.data, r.pixels.data(), r.pixels.size());
    }
    *results = mats;
    return nullptr;
  });
}

void kiln_restorer_release_result(kiln_mat* results, int count) {
  if (!results) return;
  for (int i = 0; i < count; ++i) delete[] results[i].data;
  delete[] results;
}

void kiln_restorer_destroy(kiln_restorer* restorer) { delete restorer; }

kiln_status* kiln_classifier_create_by_path(const char* model_dir, const char* device, int device_id,
                                            kiln_classifier** out) {
  return create(__func__, "classifier", model_dir, device, device_id, out);
}

kiln_status* kiln_classifier_apply(kiln_classifier* classifier, const kiln_mat* images, int count,
                                   kiln_classification** results, int** result_count) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    if (results) *results = nullptr;
    if (result_count) *result_count = nullptr;
    KILN_C_REQUIRE(classifier, fn, "classifier");
    return apply_list<kiln::sdk::Classification>(
        fn, images, count, results, result_count,
        [&](const kiln::sdk::Image& img) { return kiln::sdk::classify(*classifier->task, img); },
        [](const kiln::sdk::Classification& c) {
          return kiln_classification{c.label_id, c.score};
        });
  });
}

void kiln_classifier_release_result(kiln_classification* results, int* result_count, int count) {
  (void)count;
  delete[] results;
  delete[] result_count;
}

void kiln_classifier_destroy(kiln_classifier* classifier) { delete classifier; }

kiln_status* kiln_detector_create_by_path(const char* model_dir, const char* device, int device_id,
                                          kiln_detector** out) {
  return create(__func__, "detector", model_dir, device, device_id, out);
}

kiln_status* kiln_detector_apply(kiln_detector* detector, const kiln_mat* images, int count, kiln_detection** results,
                                 int** result_count) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    if (results) *results = nullptr;
    if (result_count) *result_count = nullptr;
    KILN_C_REQUIRE(detector, fn, "detector");
    return apply_list<kiln::sdk::Detection>(
        fn, images, count, results, result_count,
        [&](const kiln::sdk::Image& img) { return kiln::sdk::detect(*detector->task, img); },
        [](const kiln::sdk::Detection& d) {
          return kiln_detection{{d.left, d.top, d.right, d.bottom}, d.label_id, d.score};
        });
  });
}

void kiln_detector_release_result(kiln_detection* results, int* result_count, int count) {
  (void)count;
  delete[] results;
  delete[] result_count;
}

void kiln_detector_destroy(kiln_detector* detector) { delete detector; }

kiln_status* kiln_segmentor_create_by_path(const char* model_dir, const char* device, int device_id,
                                           kiln_segmentor** out) {
  return create(__func__, "segmentor", model_dir, device, device_id, out);
}

kiln_status* kiln_segmentor_apply(kiln_segmentor* segmentor, const kiln_mat* images, int count,
                                  kiln_segmentation** results) {
  const char* fn = __func__;
  return guarded(fn, [&]() -> kiln_status* {
    KILN_C_REQUIRE(results, fn, "results");
    *results = nullptr;
    KILN_C_REQUIRE(segmentor, fn, "segmentor");
    KILN_C_REQUIRE(images, fn, "images");
    if (count < 1) return invalid(std::string(fn) + ": count is " + std::to_string(count) + " (expected >= 1)");
    std::vector<kiln::sdk::Segmentation> done;
    for (int i = 0; i < count; ++i) {
      kiln::sdk::Image img;
      if (kiln_status* bad = to_image(fn, images[i], i, img)) return bad;
      auto seg = kiln::sdk::segment(*segmentor->task, img);
      if (!seg.is_ok()) {
        return from_status(seg.status().with_context(std::string(fn) + ": images[" + std::to_string(i) + "]"));
      }
      done.push_back(std::move(seg).value());
    }
    auto out = std::make_unique<kiln_segmentation[]>(static_cast<size_t>(count));
    std::vector<std::unique_ptr<int[]>> masks;
    for (const auto& seg : done) masks.push_back(std::make_unique<int[]>(seg.mask.size()));
    for (int i = 0; i < count; ++i) {
      const auto& seg = done[static_cast<size_t>(i)];
      std::copy(seg.mask.begin(), seg.mask.end(), masks[static_cast<size_t>(i)].get());
      out[static_cast<size_t>(i)] = {seg.height, seg.width, seg.classes, masks[static_cast<size_t>(i)].release()};
    }
    *results = out.release();
    return nullptr;
  });
}

void kiln_segmentor_release_result(kiln_segmentation* results, int count) {
  if (!results) return;
  for (int i = 0; i < count; ++i) delete[] results[i].mask;
  delete[] results;
}

void kiln_segmentor_destroy(kiln_segmentor* segmentor) { delete segmentor; }

}  // extern "C"
