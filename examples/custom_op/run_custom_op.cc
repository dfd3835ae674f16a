// The custom-op model from C++: kiln::Session with the library in SessionOptions::custom_op_libraries.
//   run_custom_op swish_net.onnx libswish_op.so input.npy output.npy
#include <iostream>

#include "kiln/core/npy.h"
#include "kiln/runtime/session.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: run_custom_op MODEL.onnx CUSTOM_OPS_LIB INPUT.npy OUTPUT.npy\n";
    return 2;
  }
  kiln::SessionOptions options;
  options.custom_op_libraries = {argv[2]};
  auto session = kiln::Session::create(argv[1], options);
  auto input = kiln::read_npy(argv[3]);
  if (!session.is_ok() || !input.is_ok()) {
    std::cerr << (session.is_ok() ? input.status() : session.status()).to_string() << "\n";
    return 1;
  }
  auto outputs = (*session)->run({{(*session)->inputs()[0].name, *input}});
  if (!outputs.is_ok()) {
    std::cerr << outputs.status().to_string() << "\n";
    return 1;
  }
  auto written = kiln::write_npy(argv[4], (*outputs)[0]);
  if (!written.is_ok()) {
    std::cerr << written.to_string() << "\n";
    return 1;
  }
  return 0;
}
