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
#include <vector>

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
StatusOr<Tensor> to_nchw(const std::vector<uint8_t>& hwc, int64_t h, int64_t w) {
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(DType::kFloat32, {1, 3, h, w}));
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

StatusOr<Tensor> read_jpeg(const std::string& path) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) return not_found("'" + path + "': cannot open the image");
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  std::vector<uint8_t> pixels;
  int64_t h = 0, w = 0;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return invalid_argument("'" + path + "' is not a readable JPEG: " + err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f.get());
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_EXT_BGR;
  jpeg_start_decompress(&cinfo);
  h = cinfo.output_height;
  w = cinfo.output_width;
  pixels.resize(static_cast<size_t>(h * w * 3));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = pixels.data() + static_cast<size_t>(cinfo.output_scanline) * static_cast<size_t>(w) * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return to_nchw(pixels, h, w);
}

StatusOr<Tensor> read_png(const std::string& path) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) {
    std::string why = img.message;
    png_image_free(&img);
    if (why.find("open") != std::string::npos) return not_found("'" + path + "': cannot open the image");
    return invalid_argument("'" + path + "' is not a readable PNG: " + why);
  }
  img.format = PNG_FORMAT_BGR;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, pixels.data(), 0, nullptr)) {
    std::string why = img.message;
    png_image_free(&img);
    return invalid_argument("'" + path + "' is not a readable PNG: " + why);
  }
  return to_nchw(pixels, img.height, img.width);
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

StatusOr<Tensor> read_nchw(const std::string& path) {
  const std::string ext = lower_ext(path);
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else {
    return not_found("'" + path + "': cannot open the image (" + std::strerror(errno) + ")");
  }
  if (ext == "png") return read_png(path);
  if (is_jpeg(ext)) return read_jpeg(path);
  return invalid_argument("'" + path + "': unknown image type '." + ext + "' (expected .png, .jpg or .jpeg)");
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
