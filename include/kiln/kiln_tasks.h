/* kiln's vision tasks (restorer, classifier, detector, segmentor), after MMDeploy's SDK: create a task from a model
 * folder (`kiln pack` makes one: the model, deploy.json and pipeline.json, see docs/sdk.md), apply it to images, read
 * typed results, release them. The folder says how to preprocess (resize, crop, pad, normalize, layout) and
 * postprocess, so the application does neither. Included by kiln_c.h; the same conventions hold (kiln_status* errors,
 * misuse never crashes). */
#ifndef KILN_KILN_TASKS_H_
#define KILN_KILN_TASKS_H_

#include "kiln/kiln_c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_pixel_format_t {
  KILN_PIXEL_FORMAT_BGR = 0, /* as cv2.imread gives */
  KILN_PIXEL_FORMAT_RGB = 1,
  KILN_PIXEL_FORMAT_GRAYSCALE = 2
} kiln_pixel_format_t;

typedef enum kiln_data_type_t {
  KILN_DATA_TYPE_UINT8 = 0, /* 0-255 */
  KILN_DATA_TYPE_FLOAT = 1  /* float pixels, 0-255 scale */
} kiln_data_type_t;

/* An image: height x width x channel, channel-last, rows packed. channel is 3 for BGR and RGB, 1 for GRAYSCALE. */
typedef struct kiln_mat {
  uint8_t* data;
  int height, width, channel;
  int format; /* kiln_pixel_format_t */
  int type;   /* kiln_data_type_t */
} kiln_mat;

/* device: "cpu" (device_id 0); anything else is an error naming it. */

/* ---- Restorer (super-resolution, denoising): images in, images out ---- */
typedef struct kiln_restorer kiln_restorer;
KILN_API kiln_status* kiln_restorer_create_by_path(const char* model_dir, const char* device, int device_id,
                                                   kiln_restorer** out);
/* `results` receives `count` BGR (or gray) uint8 images, released with kiln_restorer_release_result. */
KILN_API kiln_status* kiln_restorer_apply(kiln_restorer* restorer, const kiln_mat* images, int count,
                                          kiln_mat** results);
KILN_API void kiln_restorer_release_result(kiln_mat* results, int count);
KILN_API void kiln_restorer_destroy(kiln_restorer* restorer);

/* ---- Classifier: the top-k classes of each image ---- */
typedef struct kiln_classification {
  int label_id;
  float score;
} kiln_classification;
typedef struct kiln_classifier kiln_classifier;
KILN_API kiln_status* kiln_classifier_create_by_path(const char* model_dir, const char* device, int device_id,
                                                     kiln_classifier** out);
/* `results` receives every image's classes one after the other, best first; `result_count[i]` how many image i has. */
KILN_API kiln_status* kiln_classifier_apply(kiln_classifier* classifier, const kiln_mat* images, int count,
                                            kiln_classification** results, int** result_count);
KILN_API void kiln_classifier_release_result(kiln_classification* results, int* result_count, int count);
KILN_API void kiln_classifier_destroy(kiln_classifier* classifier);

/* ---- Detector: boxes, classes and scores (NMS in the pipeline, outside the graph) ---- */
typedef struct kiln_rect {
  float left, top, right, bottom; /* in the source image's pixels */
} kiln_rect;
typedef struct kiln_detection {
  kiln_rect bbox;
  int label_id;
  float score;
} kiln_detection;
typedef struct kiln_detector kiln_detector;
KILN_API kiln_status* kiln_detector_create_by_path(const char* model_dir, const char* device, int device_id,
                                                   kiln_detector** out);
/* `results` receives every image's detections one after the other, best first; `result_count[i]` for image i. */
KILN_API kiln_status* kiln_detector_apply(kiln_detector* detector, const kiln_mat* images, int count,
                                          kiln_detection** results, int** result_count);
KILN_API void kiln_detector_release_result(kiln_detection* results, int* result_count, int count);
KILN_API void kiln_detector_destroy(kiln_detector* detector);

/* ---- Segmentor: a class per pixel ---- */
typedef struct kiln_segmentation {
  int height, width; /* the source image's */
  int classes;
  int* mask; /* height x width class ids, row-major */
} kiln_segmentation;
typedef struct kiln_segmentor kiln_segmentor;
KILN_API kiln_status* kiln_segmentor_create_by_path(const char* model_dir, const char* device, int device_id,
                                                    kiln_segmentor** out);
/* `results` receives `count` segmentations. */
KILN_API kiln_status* kiln_segmentor_apply(kiln_segmentor* segmentor, const kiln_mat* images, int count,
                                           kiln_segmentation** results);
KILN_API void kiln_segmentor_release_result(kiln_segmentation* results, int count);
KILN_API void kiln_segmentor_destroy(kiln_segmentor* segmentor);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_KILN_TASKS_H_ */
