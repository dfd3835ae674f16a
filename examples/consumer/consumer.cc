// Uses the installed kiln through its C++ wrapper (kiln/kiln.hpp): prints a model's inputs and outputs, runs it on
// a float32 .npy input and writes the first output as float32 .npy.
//   consumer MODEL.onnx INPUT.npy OUTPUT.npy
#include <kiln/kiln.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// A little-endian float32, C-order .npy file (version 1).
bool read_npy(const std::string& path, std::vector<int64_t>& shape, std::vector<float>& values) {
  std::ifstream f(path, std::ios::binary);
  char pre[10];
  if (!f.read(pre, 10) || std::string(pre, 6) != "\x93NUMPY") return false;
  std::string header(static_cast<size_t>(static_cast<uint8_t>(pre[8]) | (static_cast<uint8_t>(pre[9]) << 8)), '\0');
  if (!f.read(header.data(), static_cast<std::streamsize>(header.size()))) return false;
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    return false;
  std::istringstream dims(header.substr(header.find('(') + 1, header.find(')') - header.find('(') - 1));
  int64_t n = 1;
  for (std::string d; std::getline(dims, d, ',');) {
    if (d.find_first_not_of(' ') == std::string::npos) continue;
    shape.push_back(std::stoll(d));
    n *= shape.back();
  }
  values.resize(static_cast<size_t>(n));
  return static_cast<bool>(f.read(reinterpret_cast<char*>(values.data()), n * 4));
}

bool write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data, int64_t n) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i)
    dims += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  f.put(static_cast<char>(header.size() & 0xff)).put(static_cast<char>(header.size() >> 8));
  f << header;
  f.write(reinterpret_cast<const char*>(data), n * 4);
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: consumer MODEL.onnx INPUT.npy OUTPUT.npy\n";
    return 2;
  }
  try {
    std::cout << "kiln " << kiln_version() << "\n";
    kiln::sdk::Session session(argv[1], {/*threads=*/2});
    for (const auto& in : session.inputs()) {
      std::cout << "input " << in.name << " rank " << in.rank << "\n";
    }
    std::vector<int64_t> shape;
    std::vector<float> values;
    if (!read_npy(argv[2], shape, values)) {
      std::cerr << "consumer: " << argv[2] << " is not a float32 .npy file\n";
      return 1;
    }
    auto x = kiln::sdk::Tensor::from_data<float>(shape, values);
    auto outputs = session.run({{session.inputs()[0].name, &x}});
    const auto& y = outputs.at(0);
    std::cout << "output " << session.outputs()[0].name << " with " << y.size() << " elements\n";
    return write_npy(argv[3], y.shape(), y.data<float>(), y.size()) ? 0 : 1;
  } catch (const kiln::sdk::Error& e) {
    std::cerr << "consumer: " << e.what() << " (code " << e.code() << ")\n";
    return 1;
  }
}
