// The seed's SDK step in C++: kiln::sdk::Restorer (RAII over the C API, kiln/kiln.hpp) on a binary PPM image.
//   image_restorer_cpp MODEL_DIR IN.ppm OUT.ppm
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "kiln/kiln.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: image_restorer_cpp MODEL_DIR IN.ppm OUT.ppm\n";
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::string magic;
  int w = 0, h = 0, maxval = 0;
  in >> magic >> w >> h >> maxval;
  in.get();
  std::vector<uint8_t> bgr(static_cast<size_t>(w > 0 && h > 0 ? w * h * 3 : 0));
  if (magic != "P6" || maxval != 255 || bgr.empty() ||
      !in.read(reinterpret_cast<char*>(bgr.data()), static_cast<std::streamsize>(bgr.size()))) {
    std::cerr << "image_restorer_cpp: " << argv[2] << " is not an 8-bit binary PPM (P6)\n";
    return 1;
  }
  try {
    kiln::sdk::Restorer restorer(argv[1]);
    // PPM is RGB: say so, and the restorer converts.
    const kiln::sdk::RestoredImage out = restorer({bgr.data(), h, w, 3, KILN_PIXEL_FORMAT_RGB, KILN_DATA_TYPE_UINT8});
    std::ofstream f(argv[3], std::ios::binary);
    f << "P6\n" << out.width << " " << out.height << "\n255\n";
    for (size_t i = 0; i < out.pixels.size(); i += 3) {
      const char px[3] = {static_cast<char>(out.pixels[i + 2]), static_cast<char>(out.pixels[i + 1]),
                          static_cast<char>(out.pixels[i])};
      f.write(px, 3);
    }
    std::cout << argv[2] << ": " << w << "x" << h << " -> " << argv[3] << ": " << out.width << "x" << out.height
              << "\n";
    return f ? 0 : 1;
  } catch (const kiln::sdk::Error& e) {
    std::cerr << "image_restorer_cpp: " << e.what() << " (code " << e.code() << ")\n";
    return 1;
  }
}
