/* The seed's SDK step in C: a restorer (super-resolution) from a model folder, applied to an image.
 *
 *   kiln pack examples/srcnn/srcnn.onnx --task restorer -O srcnn_folder
 *   image_restorer srcnn_folder face.ppm face_x3.ppm
 *
 * Images are binary PPM (P6, 8-bit RGB), which needs no image library here; the restorer takes and gives BGR, as
 * MMDeploy's SDK and cv2 do, so the pixels are swapped on the way in and out. C99:
 *   cc -std=c99 -Wall -Werror image_restorer.c $(pkg-config --cflags --libs kiln) */
#include <stdio.h>
#include <stdlib.h>

#include "kiln/kiln_c.h"

/* Reads a P6 PPM into a BGR kiln_mat (data malloc'ed); 0 on success. */
static int read_ppm(const char* path, kiln_mat* m) {
  FILE* f = fopen(path, "rb");
  int w = 0, h = 0, maxval = 0, i;
  size_t n;
  if (!f) return 1;
  if (fscanf(f, "P6 %d %d %d", &w, &h, &maxval) != 3 || maxval != 255 || w < 1 || h < 1 || fgetc(f) == EOF) {
    fclose(f);
    return 1;
  }
  n = (size_t)w * (size_t)h * 3;
  m->data = (uint8_t*)malloc(n);
  if (!m->data || fread(m->data, 1, n, f) != n) {
    free(m->data);
    fclose(f);
    return 1;
  }
  fclose(f);
  for (i = 0; i < w * h; ++i) { /* RGB -> BGR */
    uint8_t t = m->data[3 * i];
    m->data[3 * i] = m->data[3 * i + 2];
    m->data[3 * i + 2] = t;
  }
  m->height = h;
  m->width = w;
  m->channel = 3;
  m->format = KILN_PIXEL_FORMAT_BGR;
  m->type = KILN_DATA_TYPE_UINT8;
  return 0;
}

static int write_ppm(const char* path, const kiln_mat* m) {
  FILE* f = fopen(path, "wb");
  int i;
  if (!f) return 1;
  fprintf(f, "P6\n%d %d\n255\n", m->width, m->height);
  for (i = 0; i < m->width * m->height; ++i) { /* BGR -> RGB */
    const uint8_t px[3] = {m->data[3 * i + 2], m->data[3 * i + 1], m->data[3 * i]};
    fwrite(px, 1, 3, f);
  }
  return fclose(f) != 0;
}

int main(int argc, char** argv) {
  kiln_restorer* restorer = NULL;
  kiln_mat image = {0};
  kiln_mat* result = NULL;
  kiln_status* status;
  int rc = 1;
  if (argc != 4) {
    fprintf(stderr, "usage: image_restorer MODEL_DIR IN.ppm OUT.ppm\n");
    return 2;
  }
  if (read_ppm(argv[2], &image) != 0) {
    fprintf(stderr, "image_restorer: %s is not an 8-bit binary PPM (P6)\n", argv[2]);
    return 1;
  }
  status = kiln_restorer_create_by_path(argv[1], "cpu", 0, &restorer);
  if (!status) status = kiln_restorer_apply(restorer, &image, 1, &result);
  if (status) {
    fprintf(stderr, "image_restorer: %s (code %d)\n", kiln_status_message(status), (int)kiln_status_code(status));
    kiln_status_release(status);
  } else if (result[0].channel != 3 || write_ppm(argv[3], &result[0]) != 0) {
    fprintf(stderr, "image_restorer: cannot write %s\n", argv[3]);
  } else {
    printf("%s: %dx%d -> %s: %dx%d\n", argv[2], image.width, image.height, argv[3], result[0].width, result[0].height);
    rc = 0;
  }
  kiln_restorer_release_result(result, 1);
  kiln_restorer_destroy(restorer);
  free(image.data);
  return rc;
}
