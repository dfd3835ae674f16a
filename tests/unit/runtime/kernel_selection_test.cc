// Kernel selection: SessionOptions::reference_kernels runs nothing but reference kernels (as recorded by
// Session::kernel_choices) on the benchmark-like test models, and the default options choose fast kernels there.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/isa.h"
#include "kiln/core/npy.h"
#include "kiln/runtime/session.h"

namespace kiln {
namespace {

const std::string kModels = KILN_TEST_MODELS;

// Runs models/NAME.onnx once on its reference input and returns what each node ran.
std::vector<KernelChoice> run_model(const std::string& name, bool reference) {
  SessionOptions options;
  options.reference_kernels = reference;
  auto session = Session::create(kModels + "/" + name + ".onnx", options);
  EXPECT_TRUE(session.is_ok()) << session.status().message();
  if (!session.is_ok()) return {};
  auto x = read_npy(kModels + "/" + name + ".ref0.in.npy");
  EXPECT_TRUE(x.is_ok()) << x.status().message();
  if (!x.is_ok()) return {};
  auto out = (*session)->run({{(*session)->inputs()[0].name, *x}});
  EXPECT_TRUE(out.is_ok()) << out.status().message();
  return (*session)->kernel_choices();
}

class KernelSelection : public ::testing::TestWithParam<std::string> {};

TEST_P(KernelSelection, ReferenceKernelsRunNoFastKernel) {
  const std::vector<KernelChoice> choices = run_model(GetParam(), true);
  ASSERT_FALSE(choices.empty());
  for (const KernelChoice& c : choices) {
    EXPECT_EQ(c.kernel, "ref") << "node '" << c.node << "' (" << c.op << ") ran " << c.kernel << " " << c.detail;
    EXPECT_EQ(c.detail, "") << "node '" << c.node << "' (" << c.op << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, KernelSelection,
                         ::testing::Values("srcnn", "resnet18", "mobilenet_v2", "squeezenet", "transformer"));

class FastSelection : public ::testing::TestWithParam<std::string> {};

TEST_P(FastSelection, DefaultOptionsRecordEveryNodeAndChooseFastKernels) {
  const std::vector<KernelChoice> choices = run_model(GetParam(), false);
  ASSERT_FALSE(choices.empty());
  size_t fast = 0;
  const bool simd = cpu::default_isa() >= cpu::Isa::kAvx2;
  for (const KernelChoice& c : choices) {
    EXPECT_NE(c.kernel, "") << "node '" << c.node << "' (" << c.op << ") did not run";
    if (c.kernel != "ref") ++fast;
    if (!simd) {
      // Capped at scalar: only plain fast kernels (strided copies, separable Resize, blocked pooling's plain form).
      EXPECT_EQ(c.kernel.find("dnnl"), std::string::npos) << "node '" << c.node << "' ran " << c.kernel;
      EXPECT_EQ(c.detail.find("avx"), std::string::npos) << "node '" << c.node << "' ran " << c.detail;
    }
  }
  if (simd) {
    EXPECT_GT(fast, 0u) << GetParam() << " ran no fast kernel";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FastSelection,
                         ::testing::Values("srcnn", "resnet18", "mobilenet_v2", "squeezenet", "transformer"));

}  // namespace
}  // namespace kiln
