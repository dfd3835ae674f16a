/* Runs an ONNX model through kiln's C API: inputs from .npy files, outputs to .npy files.
 *
 *   run_model MODEL.onnx NAME=INPUT.npy... [-o OUT_DIR] [-t THREADS] [-c CUSTOM_OPS_LIBRARY]...
 *
 * Prints the model's inputs and outputs (symbolic dims by name), runs it once, and writes each output to
 * OUT_DIR/<name>.npy (default: the current directory). Reads and writes numeric .npy files (little-endian,
 * C order): float32/64, float16, int8/16/32/64, uint8/16/32/64 and bool. C99; builds with
 * `cc -std=c99 $(pkg-config --cflags --libs kiln)`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln_c.h"

#define MAX_IO 64

static const struct {
  const char* descr;
  int32_t dtype;
  size_t size;
} kTypes[] = {
    {"<f4", KILN_DTYPE_FLOAT, 4},  {"<f8", KILN_DTYPE_DOUBLE, 8}, {"<f2", KILN_DTYPE_FLOAT16, 2},
    {"|i1", KILN_DTYPE_INT8, 1},   {"<i2", KILN_DTYPE_INT16, 2},  {"<i4", KILN_DTYPE_INT32, 4},
    {"<i8", KILN_DTYPE_INT64, 8},  {"|u1", KILN_DTYPE_UINT8, 1},  {"<u2", KILN_DTYPE_UINT16, 2},
    {"<u4", KILN_DTYPE_UINT32, 4}, {"<u8", KILN_DTYPE_UINT64, 8}, {"|b1", KILN_DTYPE_BOOL, 1},
};

/* Prints and releases `status`; returns 1 if it was an error. */
static int failed(kiln_status* status, const char* what) {
  if (!status) return 0;
  fprintf(stderr, "run_model: %s: %s (code %d)\n", what, kiln_status_message(status), (int)kiln_status_code(status));
  kiln_status_release(status);
  return 1;
}

/* Reads a .npy file into a new tensor; NULL (with a message) on error. */
static kiln_tensor* read_npy(const char* path) {
  FILE* f = fopen(path, "rb");
  unsigned char pre[10];
  char header[4096];
  char descr[8] = "";
  int64_t dims[16];
  size_t rank = 0, count = 1, i, header_len, type = sizeof kTypes / sizeof kTypes[0];
  const char* p;
  void* data = NULL;
  kiln_tensor* tensor = NULL;
  if (!f) {
    fprintf(stderr, "run_model: cannot open %s\n", path);
    return NULL;
  }
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
    fprintf(stderr, "run_model: %s is not a version-1 .npy file\n", path);
    goto done;
  }
  header_len = (size_t)pre[8] | ((size_t)pre[9] << 8);
  if (header_len >= sizeof header || fread(header, 1, header_len, f) != header_len) {
    fprintf(stderr, "run_model: %s: bad header\n", path);
    goto done;
  }
  header[header_len] = '\0';
  p = strstr(header, "'descr': '");
  if (p) sscanf(p + 10, "%7[^']", descr);
  for (i = 0; i < sizeof kTypes / sizeof kTypes[0]; ++i) {
    if (strcmp(descr, kTypes[i].descr) == 0) type = i;
  }
  if (type == sizeof kTypes / sizeof kTypes[0] || strstr(header, "'fortran_order': True")) {
    fprintf(stderr, "run_model: %s: dtype '%s' or Fortran order is not supported here\n", path, descr);
    goto done;
  }
  p = strstr(header, "'shape': (");
  if (!p) {
    fprintf(stderr, "run_model: %s: the header has no shape\n", path);
    goto done;
  }
  for (p += 10; *p && *p != ')';) {
    char* end;
    long long d = strtoll(p, &end, 10);
    if (end == p) {
      ++p;
      continue;
    }
    if (rank == 16 || d < 0 || (d > 0 && count > ((size_t)1 << 40) / (size_t)d)) {
      fprintf(stderr, "run_model: %s: unsupported shape\n", path);
      goto done;
    }
    dims[rank++] = d;
    count *= (size_t)d;
    p = end;
  }
  data = malloc(count * kTypes[type].size + 1);
  if (!data || fread(data, kTypes[type].size, count, f) != count) {
    fprintf(stderr, "run_model: %s: expected %lu elements of %s\n", path, (unsigned long)count, descr);
    goto done;
  }
  if (failed(kiln_tensor_create(kTypes[type].dtype, dims, rank, data, &tensor), path)) tensor = NULL;
done:
  free(data);
  fclose(f);
  return tensor;
}

static int write_npy(const char* path, const kiln_tensor* tensor) {
  int32_t dtype = 0;
  size_t rank = 0, bytes = 0, i, type = sizeof kTypes / sizeof kTypes[0];
  const int64_t* dims = NULL;
  void* data = NULL;
  char header[1024], shape[512] = "";
  size_t len;
  FILE* f;
  if (failed(kiln_tensor_dtype(tensor, &dtype), path) || failed(kiln_tensor_rank(tensor, &rank), path) ||
      failed(kiln_tensor_shape(tensor, &dims), path) || failed(kiln_tensor_data(tensor, &data), path) ||
      failed(kiln_tensor_byte_size(tensor, &bytes), path)) {
    return 1;
  }
  for (i = 0; i < sizeof kTypes / sizeof kTypes[0]; ++i) {
    if (kTypes[i].dtype == dtype) type = i;
  }
  if (type == sizeof kTypes / sizeof kTypes[0]) {
    fprintf(stderr, "run_model: %s: dtype %d is not written by this example\n", path, (int)dtype);
    return 1;
  }
  for (i = 0; i < rank; ++i) {
    char d[32];
    sprintf(d, "%lld%s", (long long)dims[i], rank == 1 ? "," : (i + 1 < rank ? ", " : ""));
    strcat(shape, d);
  }
  len = (size_t)sprintf(header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", kTypes[type].descr, shape);
  while ((10 + len + 1) % 64 != 0) header[len++] = ' ';
  header[len++] = '\n';
  f = fopen(path, "wb");
  if (!f) {
    fprintf(stderr, "run_model: cannot write %s\n", path);
    return 1;
  }
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc((int)(len & 0xff), f);
  fputc((int)(len >> 8), f);
  fwrite(header, 1, len, f);
  fwrite(data, 1, bytes, f);
  return fclose(f) != 0;
}

/* Prints "name: dtype [dims]" with symbolic dims by name. */
static void print_io(const kiln_session* s, size_t i, int input) {
  const char* name = NULL;
  int32_t dtype = 0;
  const int64_t* dims = NULL;
  int64_t rank = 0, d;
  kiln_status_release(input ? kiln_session_input_name(s, i, &name) : kiln_session_output_name(s, i, &name));
  kiln_status_release(input ? kiln_session_input_dtype(s, i, &dtype) : kiln_session_output_dtype(s, i, &dtype));
  kiln_status_release(input ? kiln_session_input_shape(s, i, &dims, &rank)
                            : kiln_session_output_shape(s, i, &dims, &rank));
  printf("  %s %s: dtype %d, shape ", input ? "input " : "output", name, (int)dtype);
  if (rank < 0) printf("unknown");
  for (d = 0; d < rank; ++d) {
    const char* sym = "";
    kiln_status_release(input ? kiln_session_input_dim_name(s, i, (size_t)d, &sym)
                              : kiln_session_output_dim_name(s, i, (size_t)d, &sym));
    if (dims[d] >= 0) {
      printf("%s%lld", d ? "x" : "", (long long)dims[d]);
    } else {
      printf("%s%s", d ? "x" : "", sym[0] ? sym : "?");
    }
  }
  printf("\n");
}

int main(int argc, char** argv) {
  const char* model = NULL;
  const char* out_dir = ".";
  const char* names[MAX_IO];
  const char* libraries[MAX_IO];
  size_t n_libraries = 0;
  kiln_tensor* inputs[MAX_IO];
  kiln_tensor* outputs[MAX_IO];
  size_t n_inputs = 0, n_outputs = 0, i;
  int threads = 0, rc = 1, a;
  kiln_session_options* options = NULL;
  kiln_session* session = NULL;

  for (a = 1; a < argc; ++a) {
    char* eq = strchr(argv[a], '=');
    if (strcmp(argv[a], "-o") == 0 && a + 1 < argc) {
      out_dir = argv[++a];
    } else if (strcmp(argv[a], "-c") == 0 && a + 1 < argc && n_libraries < MAX_IO) {
      libraries[n_libraries++] = argv[++a];
    } else if (strcmp(argv[a], "-t") == 0 && a + 1 < argc) {
      threads = atoi(argv[++a]);
    } else if (eq && model && n_inputs < MAX_IO) {
      *eq = '\0';
      names[n_inputs] = argv[a];
      inputs[n_inputs] = read_npy(eq + 1);
      if (!inputs[n_inputs]) goto cleanup;
      ++n_inputs;
    } else if (!model) {
      model = argv[a];
    } else {
      fprintf(stderr, "run_model: unexpected argument '%s'\n", argv[a]);
      goto cleanup;
    }
  }
  if (!model) {
    fprintf(stderr, "usage: run_model MODEL.onnx NAME=INPUT.npy... [-o OUT_DIR] [-t THREADS] [-c CUSTOM_OPS_LIB]...\n");
    goto cleanup;
  }
  printf("kiln %s\n", kiln_version());
  if (failed(kiln_session_options_create(&options), "options") ||
      failed(kiln_session_options_set_threads(options, threads), "threads")) {
    goto cleanup;
  }
  for (i = 0; i < n_libraries; ++i) {
    if (failed(kiln_session_options_register_custom_ops_library(options, libraries[i]), libraries[i])) goto cleanup;
  }
  if (failed(kiln_session_create(model, options, &session), model) ||
      failed(kiln_session_output_count(session, &n_outputs), model)) {
    goto cleanup;
  }
  {
    size_t n_model_inputs = 0;
    kiln_status_release(kiln_session_input_count(session, &n_model_inputs));
    for (i = 0; i < n_model_inputs; ++i) print_io(session, i, 1);
    for (i = 0; i < n_outputs; ++i) print_io(session, i, 0);
  }
  if (n_outputs > MAX_IO) n_outputs = MAX_IO;
  if (failed(kiln_session_run(session, names, (const kiln_tensor* const*)inputs, n_inputs, NULL, n_outputs, outputs),
             "run")) {
    n_outputs = 0;
    goto cleanup;
  }
  rc = 0;
  for (i = 0; i < n_outputs; ++i) {
    const char* name = NULL;
    char path[4096];
    kiln_status_release(kiln_session_output_name(session, i, &name));
    snprintf(path, sizeof path, "%s/%s.npy", out_dir, name);
    if (write_npy(path, outputs[i]) != 0) {
      rc = 1;
    } else {
      printf("wrote %s\n", path);
    }
  }
cleanup:
  for (i = 0; i < n_outputs; ++i) kiln_tensor_release(outputs[i]);
  for (i = 0; i < n_inputs; ++i) kiln_tensor_release(inputs[i]);
  kiln_session_release(session);
  kiln_session_options_release(options);
  return rc;
}
