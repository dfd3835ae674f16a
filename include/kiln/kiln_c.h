/* kiln's C API: load an ONNX model, run it, read the results. C99, opaque handles, no C++ type crosses it.
 *
 * Conventions (as ONNX Runtime's C API):
 *   - Every function that can fail returns a kiln_status*: NULL on success, else an error that the caller reads
 *     with kiln_status_code / kiln_status_message and frees with kiln_status_release. Misuse (a NULL handle or
 *     pointer, an index out of range, a wrong dtype, an unknown name, a wrong shape) is such an error, never a
 *     crash.
 *   - Every object the API creates has a *_release function, which accepts NULL.
 *   - Strings and arrays that a getter returns are owned by the object they come from and stay valid until it is
 *     released.
 *   - Dtypes are numbered as ONNX's TensorProto.DataType (KILN_DTYPE_*).
 *   - A session is immutable once created; kiln_session_run may be called from many threads at once.
 *
 * The library is libkiln.so (SONAME libkiln.so.<KILN_VERSION_MAJOR>); it exports the kiln_* symbols below and
 * nothing else. See docs/c-api.md. */
#ifndef KILN_KILN_C_H_
#define KILN_KILN_C_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define KILN_API
#else
#define KILN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

/* The library's version, "MAJOR.MINOR.PATCH": the one linked at run time, which may be newer than the header. */
KILN_API const char* kiln_version(void);

/* ---- Errors ---- */

typedef struct kiln_status kiln_status;

typedef enum kiln_status_code_t {
  KILN_OK = 0,
  KILN_INVALID_ARGUMENT = 1,   /* the caller passed something wrong: a handle, a name, a dtype, a shape */
  KILN_INVALID_MODEL = 2,      /* the model is malformed */
  KILN_NOT_FOUND = 3,          /* a file or a name does not exist */
  KILN_IO_ERROR = 4,           /* reading a file failed */
  KILN_UNIMPLEMENTED = 5,      /* valid, but kiln cannot serve it: an operator, a dtype */
  KILN_INTERNAL = 6,           /* a kiln bug */
  KILN_RESOURCE_EXHAUSTED = 7, /* over a limit: memory, kiln_session_options_set_memory_limit_mb */
  KILN_CANCELLED = 8           /* the run was stopped: kiln_run_options_set_terminate or its timeout */
} kiln_status_code_t;

/* The code of `status` (KILN_OK for NULL). */
KILN_API int32_t kiln_status_code(const kiln_status* status);
/* The message, naming what was at fault ("" for NULL). Valid until the status is released. */
KILN_API const char* kiln_status_message(const kiln_status* status);
KILN_API void kiln_status_release(kiln_status* status);

/* ---- Dtypes: ONNX's TensorProto.DataType ---- */

typedef enum kiln_dtype_t {
  KILN_DTYPE_UNDEFINED = 0,
  KILN_DTYPE_FLOAT = 1,
  KILN_DTYPE_UINT8 = 2,
  KILN_DTYPE_INT8 = 3,
  KILN_DTYPE_UINT16 = 4,
  KILN_DTYPE_INT16 = 5,
  KILN_DTYPE_INT32 = 6,
  KILN_DTYPE_INT64 = 7,
  KILN_DTYPE_STRING = 8, /* elements are NUL-terminated UTF-8 strings; data is an array of const char* */
  KILN_DTYPE_BOOL = 9,   /* one byte per element, 0 or 1 */
  KILN_DTYPE_FLOAT16 = 10,
  KILN_DTYPE_DOUBLE = 11,
  KILN_DTYPE_UINT32 = 12,
  KILN_DTYPE_UINT64 = 13,
  KILN_DTYPE_COMPLEX64 = 14,
  KILN_DTYPE_COMPLEX128 = 15,
  KILN_DTYPE_BFLOAT16 = 16
} kiln_dtype_t;

/* ---- Session options ---- */

typedef struct kiln_session_options kiln_session_options;

KILN_API kiln_status* kiln_session_options_create(kiln_session_options** out);
/* Intra-op threads; 0 (the default): one per physical core. */
KILN_API kiln_status* kiln_session_options_set_threads(kiln_session_options* options, int32_t threads);
/* Graph optimization level, as ONNX Runtime's: 0 disabled, 1 basic, 2 extended, 99 all (the default). */
KILN_API kiln_status* kiln_session_options_set_opt_level(kiln_session_options* options, int32_t level);
/* The most memory one run may hold, in MiB (0, the default: no limit beyond the machine's memory). A run that
 * would exceed it fails with KILN_RESOURCE_EXHAUSTED, naming the node. */
KILN_API kiln_status* kiln_session_options_set_memory_limit_mb(kiln_session_options* options, int64_t megabytes);
/* Loads a shared library of custom operators (kiln/custom_op.h) for the sessions created with these options. It is
 * loaded and checked now: a missing file, a library without kiln_custom_op_library_get, one built for another
 * custom-op ABI version or declaring a malformed op is an error naming the library (and the op). */
KILN_API kiln_status* kiln_session_options_register_custom_ops_library(kiln_session_options* options,
                                                                       const char* library_path);
KILN_API void kiln_session_options_release(kiln_session_options* options);

/* ---- Tensors ---- */

typedef struct kiln_tensor kiln_tensor;

/* A tensor of `dtype` and shape `shape[0..rank)`, with a copy of `data` (row-major; NULL: zero-filled, or empty
 * strings). For KILN_DTYPE_STRING, `data` is an array of `const char*`, one per element. `shape` may be NULL when
 * rank is 0 (a scalar). */
KILN_API kiln_status* kiln_tensor_create(int32_t dtype, const int64_t* shape, size_t rank, const void* data,
                                         kiln_tensor** out);
/* A tensor over the caller's memory, not copied: `data` must stay valid, and unchanged while a run reads it, until
 * the tensor is released. Not for strings. */
KILN_API kiln_status* kiln_tensor_create_borrowed(int32_t dtype, const int64_t* shape, size_t rank, void* data,
                                                  kiln_tensor** out);
/* The elements (row-major). For a string tensor, a `const char* const*` array of its elements. */
KILN_API kiln_status* kiln_tensor_data(const kiln_tensor* tensor, void** out);
KILN_API kiln_status* kiln_tensor_dtype(const kiln_tensor* tensor, int32_t* out);
KILN_API kiln_status* kiln_tensor_rank(const kiln_tensor* tensor, size_t* out);
/* The dims, `rank` of them (NULL for a scalar). */
KILN_API kiln_status* kiln_tensor_shape(const kiln_tensor* tensor, const int64_t** out);
/* The number of elements, and the bytes they take (0 for strings). */
KILN_API kiln_status* kiln_tensor_element_count(const kiln_tensor* tensor, int64_t* out);
KILN_API kiln_status* kiln_tensor_byte_size(const kiln_tensor* tensor, size_t* out);
KILN_API void kiln_tensor_release(kiln_tensor* tensor);

/* ---- Sessions ---- */

typedef struct kiln_session kiln_session;

/* Loads, checks and optimizes the model at `path` (an .onnx file; external data is read from beside it). */
KILN_API kiln_status* kiln_session_create(const char* path, const kiln_session_options* options_or_null,
                                          kiln_session** out);
/* The same from a serialized ModelProto in memory (copied; external data is not supported). */
KILN_API kiln_status* kiln_session_create_from_bytes(const void* data, size_t size,
                                                     const kiln_session_options* options_or_null, kiln_session** out);
KILN_API void kiln_session_release(kiln_session* session);

/* The graph's inputs (those not backed by an initializer) and outputs, in the model's order. */
KILN_API kiln_status* kiln_session_input_count(const kiln_session* session, size_t* out);
KILN_API kiln_status* kiln_session_input_name(const kiln_session* session, size_t index, const char** out);
/* The element dtype of a tensor input; KILN_DTYPE_UNDEFINED for a sequence or optional input. */
KILN_API kiln_status* kiln_session_input_dtype(const kiln_session* session, size_t index, int32_t* out);
/* The declared shape: `*rank` dims in `*dims`, -1 for a symbolic or unknown dim. `*rank` is -1 (and `*dims` NULL)
 * when the model does not declare the rank. */
KILN_API kiln_status* kiln_session_input_shape(const kiln_session* session, size_t index, const int64_t** dims,
                                               int64_t* rank);
/* The name of a symbolic dim ("batch"); "" for a known or unnamed dim. */
KILN_API kiln_status* kiln_session_input_dim_name(const kiln_session* session, size_t index, size_t dim,
                                                  const char** out);
KILN_API kiln_status* kiln_session_output_count(const kiln_session* session, size_t* out);
KILN_API kiln_status* kiln_session_output_name(const kiln_session* session, size_t index, const char** out);
KILN_API kiln_status* kiln_session_output_dtype(const kiln_session* session, size_t index, int32_t* out);
KILN_API kiln_status* kiln_session_output_shape(const kiln_session* session, size_t index, const int64_t** dims,
                                                int64_t* rank);
KILN_API kiln_status* kiln_session_output_dim_name(const kiln_session* session, size_t index, size_t dim,
                                                   const char** out);

/* ---- Running ---- */

typedef struct kiln_run_options kiln_run_options;

KILN_API kiln_status* kiln_run_options_create(kiln_run_options** out);
/* Stops every run using these options (callable from any thread): each ends before its next node with
 * KILN_CANCELLED. A run started while it is set stops at once; set 0 to reuse the options. */
KILN_API kiln_status* kiln_run_options_set_terminate(kiln_run_options* options, int32_t terminate);
/* The longest a run may take, in milliseconds (0, the default: no limit); past it the run ends with KILN_CANCELLED. */
KILN_API kiln_status* kiln_run_options_set_timeout_ms(kiln_run_options* options, double timeout_ms);
KILN_API void kiln_run_options_release(kiln_run_options* options);

/* Runs the model on `n_inputs` named inputs and writes `n_outputs` new tensors to `outputs`, which the caller
 * releases with kiln_tensor_release. `output_names` NULL: every output in the model's order (n_outputs must be
 * kiln_session_output_count). On error every outputs[i] is set to NULL. */
KILN_API kiln_status* kiln_session_run(kiln_session* session, const char* const* input_names,
                                       const kiln_tensor* const* inputs, size_t n_inputs,
                                       const char* const* output_names, size_t n_outputs, kiln_tensor** outputs);
/* The same with run options (NULL: none). */
KILN_API kiln_status* kiln_session_run_with_options(kiln_session* session, const kiln_run_options* run_options,
                                                    const char* const* input_names, const kiln_tensor* const* inputs,
                                                    size_t n_inputs, const char* const* output_names, size_t n_outputs,
                                                    kiln_tensor** outputs);

/* Runs the model writing its outputs into tensors the caller made (kiln_tensor_create, or
 * kiln_tensor_create_borrowed over the caller's own buffers): outputs[i] receives output i in place and must have
 * its dtype and shape (else KILN_INVALID_ARGUMENT naming both, and the tensors' contents are unspecified). The
 * kernel that makes an output writes it straight into that memory; an output no kernel allocates (an input passed
 * through) is copied there. A loop of runs into the same tensors allocates no tensor memory once the first two have
 * planned it. Not for string outputs. run_options may be NULL; output_names NULL: every output in order. */
KILN_API kiln_status* kiln_session_run_into(kiln_session* session, const kiln_run_options* run_options,
                                            const char* const* input_names, const kiln_tensor* const* inputs,
                                            size_t n_inputs, const char* const* output_names, size_t n_outputs,
                                            kiln_tensor* const* outputs);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* The vision tasks (restorer, classifier): one include serves a C program. */
#include "kiln/kiln_tasks.h"

#endif /* KILN_KILN_C_H_ */
