/* A custom-operator library for kiln (kiln/custom_op.h): my_ops::Swish, y = x * sigmoid(beta * x), with a float
 * attribute beta (default 1), on float32 tensors of any shape. The model comes from export_model.py, whose torch
 * autograd Function emits the op through its symbolic (g.op("my_ops::Swish", x, beta_f=beta)).
 *
 * Built as a shared library that does not link kiln (kiln passes everything it needs through kiln_op_api):
 *     cc -std=c99 -O2 -fPIC -shared -I<kiln>/include swish_op.c -o libswish_op.so -lm
 * and loaded with `kiln run --custom-ops ./libswish_op.so`, SessionOptions.register_custom_ops_library(path) in
 * Python, kiln_session_options_register_custom_ops_library in C, or SessionOptions::custom_op_libraries in C++. */
#include <math.h>
#include <stdio.h>

#include "kiln/custom_op.h"

#define KILN_DTYPE_FLOAT 1 /* ONNX's TensorProto.FLOAT, as in kiln_c.h */

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

typedef struct {
  const float* x;
  float* y;
  float beta;
} swish_job;

static void swish_range(void* user, int64_t begin, int64_t end) {
  const swish_job* job = (const swish_job*)user;
  int64_t i;
  for (i = begin; i < end; ++i) {
    const float v = job->x[i];
    job->y[i] = v / (1.0f + expf(-job->beta * v));
  }
}

static int swish_compute(const kiln_op_api* api, kiln_op_context* ctx) {
  kiln_op_tensor x;
  swish_job job;
  int64_t n = 1, i;
  char message[128];
  if (api->input(ctx, 0, &x) != 0) return 1;
  if (x.dtype != KILN_DTYPE_FLOAT) {
    snprintf(message, sizeof message, "Swish takes float32 (dtype 1), not dtype %d", (int)x.dtype);
    api->set_error(ctx, message);
    return 1;
  }
  job.beta = 1.0f;
  api->attribute_float(ctx, "beta", &job.beta); /* absent: the default */
  for (i = 0; i < x.rank; ++i) n *= x.dims[i];
  job.x = (const float*)x.data;
  job.y = (float*)api->allocate_output(ctx, 0, KILN_DTYPE_FLOAT, x.dims, (size_t)x.rank);
  if (!job.y) return 1; /* kiln has recorded why */
  api->parallel_for(ctx, n, swish_range, &job);
  return 0;
}

/* The output has the input's dtype and shape. */
static int swish_infer(const kiln_op_api* api, kiln_op_context* ctx) {
  kiln_op_tensor x;
  if (api->input(ctx, 0, &x) != 0) return 1;
  return api->set_output_type(ctx, 0, x.dtype, x.dims, x.rank, x.dim_names);
}

static const kiln_custom_op kOps[] = {
    {"my_ops", "Swish", 1, 1, 1, 1, swish_compute, swish_infer},
};

static const kiln_custom_op_library kLibrary = {KILN_CUSTOM_OP_ABI_VERSION, 1, kOps};

EXPORT const kiln_custom_op_library* kiln_custom_op_library_get(void) { return &kLibrary; }
