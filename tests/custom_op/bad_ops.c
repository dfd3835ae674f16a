/* Custom-op libraries that are wrong in one way each (tests/python/test_custom_op.py), chosen by BAD_VARIANT:
 *   1 built for another ABI version      2 exports no kiln_custom_op_library_get
 *   3 declares an op without compute    4 a kernel that returns without allocating its output
 *   5 a kernel that asks for a negative dim  6 a shape function that fails */
#include "kiln/custom_op.h"

#define EXPORT __attribute__((visibility("default")))

static int no_output(const kiln_op_api* api, kiln_op_context* ctx) {
  (void)api;
  (void)ctx;
  return 0;
}

static int negative_dim(const kiln_op_api* api, kiln_op_context* ctx) {
  const int64_t dims[] = {2, -3};
  return api->allocate_output(ctx, 0, 1, dims, 2) ? 0 : 1;
}

static int failing_infer(const kiln_op_api* api, kiln_op_context* ctx) {
  api->set_error(ctx, "no shapes today");
  return 1;
}

#if BAD_VARIANT == 1
static const kiln_custom_op kOps[] = {{"my_ops", "Swish", 1, 1, 1, 1, no_output, 0}};
static const kiln_custom_op_library kLibrary = {KILN_CUSTOM_OP_ABI_VERSION + 998, 1, kOps};
#elif BAD_VARIANT == 3
static const kiln_custom_op kOps[] = {{"my_ops", "Swish", 1, 1, 1, 1, 0, 0}};
static const kiln_custom_op_library kLibrary = {KILN_CUSTOM_OP_ABI_VERSION, 1, kOps};
#elif BAD_VARIANT == 4
static const kiln_custom_op kOps[] = {{"my_ops", "Swish", 1, 1, 1, 1, no_output, 0}};
static const kiln_custom_op_library kLibrary = {KILN_CUSTOM_OP_ABI_VERSION, 1, kOps};
#elif BAD_VARIANT == 5
static const kiln_custom_op kOps[] = {{"my_ops", "Swish", 1, 1, 1, 1, negative_dim, 0}};
static const kiln_custom_op_library kLibrary = {KILN_CUSTOM_OP_ABI_VERSION, 1, kOps};
#elif BAD_VARIANT == 6
static const kiln_custom_op kOps[] = {{"my_ops", "Swish", 1, 1, 1, 1, negative_dim, failing_infer}};
static const kiln_custom_op_library kLibrary = {KILN_CUSTOM_OP_ABI_VERSION, 1, kOps};
#endif

#if BAD_VARIANT == 2
EXPORT int not_the_entry_point(void) {
  (void)failing_infer;
  (void)negative_dim;
  return no_output(0, 0);
}
#else
EXPORT const kiln_custom_op_library* kiln_custom_op_library_get(void) {
  (void)no_output;
  (void)negative_dim;
  (void)failing_infer;
  return &kLibrary;
}
#endif
