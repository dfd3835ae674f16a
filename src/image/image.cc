#include "kiln/image/image.h"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "kiln/core/allocator.h"

namespace kiln::image {
namespace {

std::string lower_ext(const std::string& path) {
  const size_t dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

bool is_jpeg(const std::string& ext) { return ext == "jpg" || ext == "jpeg"; }

// HWC BGR uint8 -> [1, 3, H, W] float.
StatusOr<Tensor> to_nchw(const uint8_t* hwc, int64_t h, int64_t w) {
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(DType::kFloat32, {1, 3, h, w}, Allocator::cpu_uninitialized()));
  float* dst = t.data<float>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < h * w; ++i) dst[c * h * w + i] = hwc[static_cast<size_t>(i * 3 + c)];
  return t;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};

void jpeg_warning_is_error(j_common_ptr cinfo, int level) {
  // level -1: a warning about corrupt data ("premature end of data segment", "corrupt JPEG data"): libjpeg would
  // carry on and fill the rest with gray; kiln refuses the file instead.
  if (level < 0) jpeg_error_exit(cinfo);
}

// The decoded float tensor of h x w x 3 must fit in memory; checked before any pixel is allocated.
Status check_decoded_size(const std::string& label, uint64_t h, uint64_t w) {
  const uint64_t bytes = h * w * 3 * sizeof(float);
  if (h == 0 || w == 0)
    return invalid_argument("'" + label + "' has an empty image (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  if (bytes > physical_memory_bytes()) {
    return resource_exhausted("'" + label + "': a " + std::to_string(w) + "x" + std::to_string(h) +
                              " image decodes to " + human_bytes(static_cast<double>(bytes)) +
                              ", more than this machine's " +
                              human_bytes(static_cast<double>(physical_memory_bytes())) + " of memory");
  }
  return Status::ok();
}

// libjpeg reports errors by longjmp: these two keep nothing but plain data live across their setjmp (C++ objects there
// would be skipped by the jump). False on error, with err->message set.
void jpeg_setup(jpeg_decompress_struct* cinfo, JpegError* err, const void* data, size_t size) {
  cinfo->err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = jpeg_error_exit;
  err->mgr.emit_message = jpeg_warning_is_error;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, static_cast<const unsigned char*>(data), static_cast<unsigned long>(size));
}

bool jpeg_dims(const void* data, size_t size, JpegError* err, unsigned* h, unsigned* w) {
  jpeg_decompress_struct cinfo;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_setup(&cinfo, err, data, size);
  jpeg_read_header(&cinfo, TRUE);
  *h = cinfo.image_height;
  *w = cinfo.image_width;
  jpeg_destroy_decompress(&cinfo);
  return true;
}

// Decodes into `out` (h * w * 3 bytes, BGR); false on error or when the decoded size is not h x w.
bool jpeg_pixels(const void* data, size_t size, JpegError* err, uint8_t* out, unsigned h, unsigned w) {
  jpeg_decompress_struct cinfo;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_setup(&cinfo, err, data, size);
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_EXT_BGR;
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_height != h || cinfo.output_width != w || cinfo.output_components != 3) {
    std::snprintf(err->message, sizeof err->message, "decodes to %ux%u, not the %ux%u of its header",
                  cinfo.output_width, cinfo.output_height, w, h);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out + static_cast<size_t>(cinfo.output_scanline) * w * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

StatusOr<Tensor> decode_jpeg(const void* data, size_t size, const std::string& label) {
  JpegError err;
  unsigned h = 0, w = 0;
  if (!jpeg_dims(data, size, &err, &h, &w)) {
    return invalid_argument("'" + label + "' is not a readable JPEG: " + err.message);
  }
  KILN_RETURN_IF_ERROR(check_decoded_size(label, h, w));
  // Not zero-filled: pages the decoder never reaches (a corrupt file fails early) are never touched.
  std::unique_ptr<uint8_t[]> pixels(new (std::nothrow) uint8_t[static_cast<size_t>(h) * w * 3]);
  if (!pixels) {
    return resource_exhausted("'" + label + "': out of memory decoding a " + std::to_string(w) + "x" +
                              std::to_string(h) + " image");
  }
  if (!jpeg_pixels(data, size, &err, pixels.get(), h, w)) {
    return invalid_argument("'" + label + "' is not a readable JPEG: " + err.message);
  }
  return to_nchw(pixels.get(), h, w);
}

StatusOr<Tensor> decode_png(const void* data, size_t size, const std::string& label) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, data, size)) {
    std::string why = img.message;
    png_image_free(&img);
    return invalid_argument("'" + label + "' is not a readable PNG: " + why);
  }
  if (Status st = check_decoded_size(label, img.height, img.width); !st.is_ok()) {
    png_image_free(&img);
    return st;
  }
  img.format = PNG_FORMAT_BGR;
  std::unique_ptr<uint8_t[]> pixels(new (std::nothrow) uint8_t[PNG_IMAGE_SIZE(img)]);
  if (!pixels) {
    png_image_free(&img);
    return resource_exhausted("'" + label + "': out of memory decoding a " + std::to_string(img.width) + "x" +
                              std::to_string(img.height) + " image");
  }
  if (!png_image_finish_read(&img, nullptr, pixels.get(), 0, nullptr)) {
    std::string why = img.message;
    png_image_free(&img);
    return invalid_argument("'" + label + "' is not a readable PNG: " + why);
  }
  return to_nchw(pixels.get(), img.height, img.width);
}

Status write_png(const std::string& path, const std::vector<uint8_t>& hwc, int64_t h, int64_t w, int64_t c) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(w);
  img.height = static_cast<png_uint_32>(h);
  img.format = c == 3 ? PNG_FORMAT_BGR : PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&img, path.c_str(), 0, hwc.data(), 0, nullptr)) {
    return io_error("cannot write '" + path + "': " + img.message);
  }
  return Status::ok();
}

Status write_jpeg(const std::string& path, const std::vector<uint8_t>& hwc, int64_t h, int64_t w, int64_t c) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) return io_error("cannot write '" + path + "'");
  jpeg_compress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    return io_error("cannot write '" + path + "': " + err.message);
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f.get());
  cinfo.image_width = static_cast<JDIMENSION>(w);
  cinfo.image_height = static_cast<JDIMENSION>(h);
  cinfo.input_components = static_cast<int>(c);
  cinfo.in_color_space = c == 3 ? JCS_EXT_BGR : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 95, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(hwc.data()) + static_cast<size_t>(cinfo.next_scanline * w * c);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  if (std::fflush(f.get()) != 0) return io_error("cannot write '" + path + "'");
  return Status::ok();
}

}  // namespace

StatusOr<Tensor> decode_nchw(const void* data, size_t size, const std::string& label) {
  const auto* b = static_cast<const unsigned char*>(data);
  if (size >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(data, size, label);
  if (size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return decode_jpeg(data, size, label);
  return invalid_argument("'" + label + "' is neither a PNG nor a JPEG (no PNG or JPEG signature)");
}

StatusOr<Tensor> read_nchw(const std::string& path) {
  const std::string ext = lower_ext(path);
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return not_found("'" + path + "': cannot open the image (" + std::strerror(errno) + ")");
  if (ext != "png" && !is_jpeg(ext)) {
    return invalid_argument("'" + path + "': unknown image type '." + ext + "' (expected .png, .jpg or .jpeg)");
  }
  std::string bytes;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f.get())) > 0;) bytes.append(buf, n);
  if (std::ferror(f.get())) return io_error("'" + path + "': cannot read the image");
  // By the extension, as the file claims to be: a wrong or corrupt file is "not a readable PNG/JPEG".
  return ext == "png" ? decode_png(bytes.data(), bytes.size(), path) : decode_jpeg(bytes.data(), bytes.size(), path);
}

Status write_nchw(const Tensor& t, const std::string& path) {
  const std::string ext = lower_ext(path);
  if (ext != "png" && !is_jpeg(ext)) {
    return invalid_argument("'" + path + "': unknown image type '." + ext + "' (expected .png, .jpg or .jpeg)");
  }
  std::vector<int64_t> d = t.dims();
  if (d.size() == 4 && d[0] == 1) d.erase(d.begin());
  if (d.size() != 3 || (d[0] != 1 && d[0] != 3) || (t.dtype() != DType::kFloat32 && t.dtype() != DType::kUInt8)) {
    return invalid_argument(std::string("cannot write ") + dtype_name(t.dtype()) + dims_to_string(t.dims()) +
                            " as the image '" + path +
                            "': expected float or uint8 [1, C, H, W] or [C, H, W] with C = 1 or 3");
  }
  const int64_t c = d[0], h = d[1], w = d[2];
  std::vector<uint8_t> hwc(static_cast<size_t>(c * h * w));
  for (int64_t k = 0; k < c; ++k)
    for (int64_t i = 0; i < h * w; ++i) {
      uint8_t v;
      if (t.dtype() == DType::kUInt8) {
        v = t.data<uint8_t>()[k * h * w + i];
      } else {
        const float f = t.data<float>()[k * h * w + i];
        v = static_cast<uint8_t>(std::isnan(f) ? 0.0f : std::min(255.0f, std::max(0.0f, f)));
      }
      hwc[static_cast<size_t>(i * c + k)] = v;
    }
  const std::string tmp = path + ".tmp";
  Status st = is_jpeg(ext) ? write_jpeg(tmp, hwc, h, w, c) : write_png(tmp, hwc, h, w, c);
  if (st.is_ok() && std::rename(tmp.c_str(), path.c_str()) != 0) st = io_error("cannot write '" + path + "'");
  if (!st.is_ok()) std::remove(tmp.c_str());
  return st;
}

}  // namespace kiln::image
