// The tutorial's deployment in C++: SRCNN on an image with kiln::Session.
//   deploy_srcnn srcnn.onnx face.png face_x3.png
#include <chrono>
#include <iostream>

#include "kiln/image/image.h"
#include "kiln/runtime/session.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: deploy_srcnn MODEL.onnx IN.png OUT.png\n";
    return 2;
  }
  auto fail = [](const kiln::Status& s) {
    std::cerr << "deploy_srcnn: " << s.message() << "\n";
    return 1;
  };
  auto session = kiln::Session::create(argv[1]);  // load, check and plan once
  if (!session.is_ok()) return fail(session.status());
  auto input = kiln::image::read_nchw(argv[2]);  // BGR, 0-255, [1, 3, H, W]: the tutorial's convention
  if (!input.is_ok()) return fail(input.status());
  const auto start = std::chrono::steady_clock::now();
  auto outputs = (*session)->run({{"input", *input}}, {"output"});
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  if (!outputs.is_ok()) return fail(outputs.status());
  kiln::Status written = kiln::image::write_nchw((*outputs)[0], argv[3]);  // clip to 0-255, uint8, HWC
  if (!written.is_ok()) return fail(written);
  std::cout << argv[3] << ": " << kiln::dims_to_string((*outputs)[0].dims()) << " in " << took.count() << " ms\n";
  return 0;
}
