/* Custom operators: your own kernel (and, optionally, shape function) for an operator in your own domain, as a
 * model exported with a custom symbolic (`g.op("mydomain::MyOp", ...)`) needs. Like ONNX Runtime's custom-op
 * libraries and TensorRT's plugins.
 *
 * Build a shared library that exports one C function,
 *
 *     const kiln_custom_op_library* kiln_custom_op_library_get(void);
 *
 * returning a description of its operators that stays valid while the library is loaded, with `abi_version` set to
 * KILN_CUSTOM_OP_ABI_VERSION. Load it with kiln_session_options_register_custom_ops_library (C),
 * SessionOptions::custom_op_libraries (C++), SessionOptions.register_custom_ops_library(path) (Python) or
 * `--custom-ops LIB` (the CLI). The library does not link libkiln: everything it calls comes through the
 * kiln_op_api table that kiln passes to its functions. C99; see examples/custom_op and docs/c-api.md. */
#ifndef KILN_CUSTOM_OP_H_
#define KILN_CUSTOM_OP_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raised when this header changes incompatibly; kiln refuses a library built for another version, naming both. */
#define KILN_CUSTOM_OP_ABI_VERSION 1
#define KILN_CUSTOM_OP_LIBRARY_SYMBOL "kiln_custom_op_library_get"

/* One call of a kernel or shape function; valid during that call only. */
typedef struct kiln_op_context kiln_op_context;

/* A tensor as a kernel sees it. `dtype` is numbered as ONNX's TensorProto.DataType (kiln_c.h's KILN_DTYPE_*), 0 for
 * an omitted optional input (or, in a shape function, an input whose type is unknown). In a shape function, `rank`
 * may be -1 (unknown), a dim -1 (unknown or symbolic; `dim_names` then gives its symbol, "batch", or ""), and `data`
 * is NULL. In a kernel `dim_names` is NULL. Strings are not passed to custom kernels. */
typedef struct kiln_op_tensor {
  int32_t dtype;
  int64_t rank;
  const int64_t* dims;
  const void* data;
  const char* const* dim_names;
} kiln_op_tensor;

/* What kiln offers a kernel or shape function. Functions returning int return 0 on success. */
typedef struct kiln_op_api {
  uint32_t abi_version;
  /* The node's name and op type, for messages. */
  const char* (*node_name)(const kiln_op_context* ctx);
  size_t (*input_count)(const kiln_op_context* ctx);
  size_t (*output_count)(const kiln_op_context* ctx);
  /* Input i (nonzero when i is out of range). */
  int (*input)(const kiln_op_context* ctx, size_t i, kiln_op_tensor* out);
  /* Attributes: 0 and *out set when the node has attribute `name` of that type, nonzero otherwise. Arrays and
   * strings stay valid during the call. */
  int (*attribute_int)(const kiln_op_context* ctx, const char* name, int64_t* out);
  int (*attribute_float)(const kiln_op_context* ctx, const char* name, float* out);
  int (*attribute_string)(const kiln_op_context* ctx, const char* name, const char** out, size_t* length);
  int (*attribute_ints)(const kiln_op_context* ctx, const char* name, const int64_t** out, size_t* count);
  int (*attribute_floats)(const kiln_op_context* ctx, const char* name, const float** out, size_t* count);
  /* Kernels: allocates output i, zero-filled, and returns its elements; NULL on error (the reason is already
   * recorded: return nonzero). Every output must be allocated. */
  void* (*allocate_output)(kiln_op_context* ctx, size_t i, int32_t dtype, const int64_t* dims, size_t rank);
  /* Shape functions: output i's dtype and dims (-1 where unknown; rank -1 when unknown) and, optionally (NULL:
   * none), the symbol of each -1 dim ("" for none): pass an input's dims and dim_names to keep its symbols. */
  int (*set_output_type)(kiln_op_context* ctx, size_t i, int32_t dtype, const int64_t* dims, int64_t rank,
                         const char* const* dim_names);
  /* The message kiln reports (with the node, the op and the library) when the function returns nonzero. */
  void (*set_error)(kiln_op_context* ctx, const char* message);
  /* Runs body(user, begin, end) over [0, n) split into chunks on the session's threads; returns when all are done.
   * The body must not call the API. */
  void (*parallel_for)(const kiln_op_context* ctx, int64_t n, void (*body)(void* user, int64_t begin, int64_t end),
                       void* user);
} kiln_op_api;

typedef struct kiln_custom_op {
  const char* domain;    /* "mydomain" (the model's opset_import must name it) */
  const char* op_type;   /* "MyOp" */
  int32_t since_version; /* the first opset of `domain` it serves (usually 1) */
  int32_t min_inputs;    /* a node has between min_inputs and max_inputs inputs */
  int32_t max_inputs;
  int32_t num_outputs; /* and exactly num_outputs outputs */
  /* Computes the node: reads its inputs and attributes, allocates and fills every output; 0 on success. */
  int (*compute)(const kiln_op_api* api, kiln_op_context* ctx);
  /* Optional (NULL: unknown until run): each output's dtype and shape from the inputs' dtypes and shapes and the
   * attributes, for `kiln check`, `kiln show` and shape inference downstream of the op; 0 on success. */
  int (*infer_types)(const kiln_op_api* api, kiln_op_context* ctx);
} kiln_custom_op;

typedef struct kiln_custom_op_library {
  uint32_t abi_version; /* KILN_CUSTOM_OP_ABI_VERSION */
  size_t op_count;
  const kiln_custom_op* ops;
} kiln_custom_op_library;

typedef const kiln_custom_op_library* (*kiln_custom_op_library_get_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_CUSTOM_OP_H_ */
