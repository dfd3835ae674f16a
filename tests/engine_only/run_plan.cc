// A program that runs engine plans and links kiln_engine alone: no protobuf, no libonnx, no ONNX parser. It is what
// an application that ships .kplan files builds (tests/engine_only/test_engine_only.sh checks its linkage).
//   run_plan MODEL.kplan [OUT.bin]: runs the plan once on inputs filled with 0.5 (at each input's first-profile
//   opt shape) and prints each output's name, shape and sum; OUT.bin receives the first output's raw bytes.
#include <cstdio>
#include <vector>

#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: run_plan MODEL.kplan [OUT.bin]\n");
    return 2;
  }
  auto session = kiln::Session::create_from_plan(argv[1]);
  if (!session.is_ok()) {
    std::fprintf(stderr, "run_plan: %s\n", session.status().message().c_str());
    return 1;
  }
  const kiln::Session& s = **session;
  kiln::NamedTensors feeds;
  for (const auto& in : s.inputs()) {
    const kiln::ShapeProfile::Input* p = s.plan_info()->profiles.at(0).find(in.name);
    auto t = kiln::Tensor::allocate(in.type.elem_type, p ? p->opt : *in.type.shape->static_dims());
    if (!t.is_ok()) return 1;
    if (t->dtype() == kiln::DType::kFloat32) {
      for (int64_t i = 0; i < t->num_elements(); ++i) t->data<float>()[i] = 0.5f;
    }
    feeds.emplace_back(in.name, std::move(t).value());
  }
  auto out = s.run(feeds);
  if (!out.is_ok()) {
    std::fprintf(stderr, "run_plan: %s\n", out.status().message().c_str());
    return 1;
  }
  for (size_t i = 0; i < out->size(); ++i) {
    const kiln::Tensor& t = (*out)[i];
    double sum = 0;
    if (t.dtype() == kiln::DType::kFloat32) {
      for (int64_t k = 0; k < t.num_elements(); ++k) sum += t.data<float>()[k];
    }
    std::printf("%s %s sum %.6g\n", s.outputs()[i].name.c_str(), kiln::dims_to_string(t.dims()).c_str(), sum);
  }
  if (argc > 2 && !out->empty()) {
    FILE* f = std::fopen(argv[2], "wb");
    if (!f) return 2;
    std::fwrite((*out)[0].raw_data(), 1, (*out)[0].nbytes(), f);
    std::fclose(f);
  }
  return 0;
}
