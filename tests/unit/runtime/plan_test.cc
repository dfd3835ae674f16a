// Engine plans: the format's round trip, zero-copy weights, equal results with the ONNX session, profiles and
// the errors of a plan that cannot be used.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <sys/mman.h>
#include <unistd.h>

#include "kernels/isa.h"
#include "kiln/core/allocator.h"
#include "kiln/core/file.h"
#include "kiln/onnx/model_io.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"
#include "runtime/plan_format.h"
#include "runtime/session_impl.h"

namespace kiln {
namespace {

std::string model_path(const std::string& name) { return std::string(KILN_TEST_MODELS) + "/" + name; }

std::string tmp_path(const std::string& name) {
  return ::testing::TempDir() + "/plan_test_" + std::to_string(::getpid()) + "_" + name;
}

Tensor random_input(std::vector<int64_t> dims, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto t = Tensor::allocate(DType::kFloat32, std::move(dims)).value();
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

TEST(PlanFormat, RoundTripKeepsEveryFieldOfTheModel) {
  // Attributes of every kind, subgraphs (If/Loop), local functions, torch exports with initializers.
  for (const char* name : {"attrs.onnx", "if_loop.onnx", "with_function.onnx", "transformer.onnx", "srcnn.onnx",
                           "dynamic_conv.onnx", "linear_func.onnx"}) {
    SCOPED_TRACE(name);
    auto model = onnx::load_model(model_path(name));
    ASSERT_TRUE(model.is_ok()) << model.status().message();
    PlanInfo info;
    info.isa = "scalar";
    auto bytes = plan::write(*model, info, {});
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
    auto file = Buffer::allocate(bytes->size()).value();
    std::memcpy(file->data(), bytes->data(), bytes->size());
    auto read = plan::read(file, "test plan");
    ASSERT_TRUE(read.is_ok()) << read.status().message();
    EXPECT_EQ(onnx::serialize_model(read->model).value(), onnx::serialize_model(*model).value());
    // Every numeric tensor views the file's weights section, 64-byte aligned: no copy.
    for (const auto& init : read->model.graph.initializers) {
      if (init.tensor.nbytes() == 0 || init.tensor.dtype() == DType::kString) continue;
      const auto* p = static_cast<const uint8_t*>(init.tensor.raw_data());
      EXPECT_GE(p, file->data());
      EXPECT_LE(p + init.tensor.nbytes(), file->data() + file->size());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << init.name;
    }
  }
}

TEST(PlanFormat, ChecksumSeesEveryByte) {
  std::vector<uint8_t> data(100);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  for (size_t n : {0u, 1u, 7u, 8u, 31u, 32u, 33u, 100u}) {
    const uint64_t base = checksum64(data.data(), n);
    for (size_t i = 0; i < n; ++i) {
      data[i] ^= 1;
      EXPECT_NE(checksum64(data.data(), n), base) << "size " << n << " byte " << i;
      data[i] ^= 1;
    }
  }
}

// First guesses on both sides (no timing): the same kernel for every node, so the same bits. `disabled`: kernels
// neither side may choose (to steer nodes to a kernel that is never a first guess).
void expect_plan_equals_onnx_session(const std::vector<std::string>& disabled, const std::string& must_run = "") {
  const std::string plan = tmp_path("resnet18.kplan");
  PlanBuildOptions build;
  build.threads = 2;
  build.tune = false;
  build.disabled_kernels = disabled;
  auto report = build_plan(model_path("resnet18.onnx"), plan, build);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_GT(report->fast_kernels, 0);
  SessionOptions options;
  options.intra_op_threads = 2;
  options.tune = false;
  options.disabled_kernels = disabled;
  auto from_plan = Session::create(plan, options);  // Session::create tells a plan from ONNX
  ASSERT_TRUE(from_plan.is_ok()) << from_plan.status().message();
  ASSERT_NE((*from_plan)->plan_info(), nullptr);
  auto from_onnx = Session::create(model_path("resnet18.onnx"), options);
  ASSERT_TRUE(from_onnx.is_ok());
  EXPECT_EQ((*from_onnx)->plan_info(), nullptr);
  const IoInfo& in = (*from_plan)->inputs()[0];
  const NamedTensors feeds = {{in.name, random_input(*in.type.shape->static_dims(), 1)}};
  auto a = (*from_plan)->run(feeds);
  auto b = (*from_onnx)->run(feeds);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_EQ((*a)[0].nbytes(), (*b)[0].nbytes());
  EXPECT_EQ(std::memcmp((*a)[0].raw_data(), (*b)[0].raw_data(), (*a)[0].nbytes()), 0);
  const auto ca = (*from_plan)->kernel_choices();
  const auto cb = (*from_onnx)->kernel_choices();
  ASSERT_EQ(ca.size(), cb.size());
  bool ran = must_run.empty();
  for (size_t i = 0; i < ca.size(); ++i) {
    EXPECT_EQ(ca[i].kernel, cb[i].kernel) << ca[i].node;
    ASSERT_EQ(ca[i].planned.size(), 1u);
    EXPECT_EQ(ca[i].planned[0], ca[i].kernel) << ca[i].node;  // the plan's kernel is the one that ran
    ran = ran || ca[i].kernel == must_run;
  }
  EXPECT_TRUE(ran) << must_run << " ran on no node";
  std::remove(plan.c_str());
}

TEST(Plan, OutputsEqualTheOnnxSessionThatChoseTheSameKernels) { expect_plan_equals_onnx_session({}); }

// The direct convolution's packed weights (never a first guess: the kernels before it and oneDNN disabled, so that
// it takes every convolution but the 1x1 ones at stride 1) travel in the plan and give the same bits.
TEST(Plan, DirectConvolutionWeightsFromThePlanGiveTheSameBits) {
  if (cpu::default_isa() < cpu::Isa::kAvx2) GTEST_SKIP() << "the direct convolution needs AVX2";
  expect_plan_equals_onnx_session(
      {"nchwc_conv.im2col", "nchwc_conv.winograd_f4", "nchwc_conv.winograd_f2", "nchwc_conv.gemm", "nchwc_conv.dnnl"},
      "nchwc_conv.direct");
}

TEST(Plan, TimedKernelsArePinnedAndNotTimedAgain) {
  const std::string plan = tmp_path("mobilenet.kplan");
  PlanBuildOptions build;
  build.threads = 2;
  auto report = build_plan(model_path("mobilenet_v2.onnx"), plan, build);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  auto s = Session::create_from_plan(plan, SessionOptions{});
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  const IoInfo& in = (*s)->inputs()[0];
  auto out = (*s)->run({{in.name, random_input(*in.type.shape->static_dims(), 2)}});
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ((*s)->tuned_configs(), 0);
  for (const auto& c : (*s)->kernel_choices()) EXPECT_EQ(c.kernel, c.planned.at(0)) << c.node;
  std::remove(plan.c_str());
}

TEST(Plan, KernelsFindTheirPreparedWeightsInThePlan) {
  if (cpu::default_isa() == cpu::Isa::kScalar) GTEST_SKIP() << "no fast kernels under KILN_MAX_ISA=scalar";
  // Packed and transformed weights come from the plan: the first run prepares none again.
  const std::string plan = tmp_path("resnet18_prepared.kplan");
  PlanBuildOptions build;
  build.threads = 2;
  auto report = build_plan(model_path("resnet18.onnx"), plan, build);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  EXPECT_GT(report->prepared_bytes, 0);
  auto s = Session::create_from_plan(plan);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  const auto loaded = SessionInternals::impl(**s).export_prepared();
  ASSERT_FALSE(loaded.empty());
  for (const auto& p : loaded) {
    for (const auto& a : p.arrays) EXPECT_EQ(reinterpret_cast<uintptr_t>(a.first) % 64, 0u) << p.weight;
  }
  const IoInfo& in = (*s)->inputs()[0];
  const NamedTensors feeds = {{in.name, random_input(*in.type.shape->static_dims(), 5)}};
  auto a = (*s)->run(feeds);
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(SessionInternals::impl(**s).export_prepared().size(), loaded.size());
  // And the outputs are those of the session from ONNX (its own packing, the same arithmetic).
  auto onnx_session = Session::create(model_path("resnet18.onnx"));
  ASSERT_TRUE(onnx_session.is_ok());
  auto b = (*onnx_session)->run(feeds);
  ASSERT_TRUE(b.is_ok());
  const float* x = (*a)[0].data<float>();
  const float* y = (*b)[0].data<float>();
  for (int64_t i = 0; i < (*a)[0].num_elements(); ++i) ASSERT_NEAR(x[i], y[i], 1e-3f * (1 + std::abs(y[i])));
  // A flipped byte in prepared weights: kiln check's verification names the weight they were prepared from.
  {
    std::fstream f(plan, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(std::filesystem::file_size(plan) - 100);
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x11);
    f.seekp(at);
    f.write(&c, 1);
  }
  Status st = verify_plan_weights(plan);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("weights prepared from '"), std::string::npos) << st.message();
  std::remove(plan.c_str());
}

TEST(Plan, TheFirstRunAtTheOptShapesUsesThePlansMemoryPlan) {
  // The memory plan learned at build time: the first run takes one arena, as a steady-state run does, instead of
  // allocating every node output on the heap to learn it.
  const std::string plan = tmp_path("mobilenet_memory.kplan");
  ASSERT_TRUE(build_plan(model_path("mobilenet_v2.onnx"), plan, {}).is_ok());
  auto s = Session::create_from_plan(plan);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  const auto memory = SessionInternals::impl(**s).export_memory();
  ASSERT_FALSE(memory.empty());
  {
    // The load left the arena in the planner's pool, every page of it faulted in already.
    MemoryPlanner& planner = SessionInternals::impl(**s).memory;
    EXPECT_GE(planner.idle_bytes(), memory[0].total);
    size_t size = 0;
    uint8_t* arena = planner.acquire(memory[0].total, size);
    ASSERT_NE(arena, nullptr);
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t first = reinterpret_cast<uintptr_t>(arena) / page * page;
    const size_t span = reinterpret_cast<uintptr_t>(arena) + size - first;
    std::vector<unsigned char> resident((span + page - 1) / page);
    ASSERT_EQ(mincore(reinterpret_cast<void*>(first), span, resident.data()), 0);
    size_t in = 0;
    for (unsigned char r : resident) in += r & 1;
    EXPECT_EQ(in, resident.size());
    planner.release(arena, size);
    // Under a memory limit, whose runs allocate each tensor on its own, the load makes no arena.
    SessionOptions limited;
    limited.memory_limit_mb = 1024;
    auto s2 = Session::create_from_plan(plan, limited);
    ASSERT_TRUE(s2.is_ok()) << s2.status().message();
    EXPECT_EQ(SessionInternals::impl(**s2).memory.idle_bytes(), 0u);
  }
  auto onnx_session = Session::create(model_path("mobilenet_v2.onnx"));
  ASSERT_TRUE(onnx_session.is_ok());
  const IoInfo& in = (*s)->inputs()[0];
  const NamedTensors feeds = {{in.name, random_input(*in.type.shape->static_dims(), 6)}};
  auto allocations_of_first_run = [&feeds](const Session& session) {
    const uint64_t before = tensor_heap_stats().allocations;
    EXPECT_TRUE(session.run(feeds).is_ok());
    return tensor_heap_stats().allocations - before;
  };
  const uint64_t from_plan = allocations_of_first_run(**s);
  const uint64_t from_onnx = allocations_of_first_run(**onnx_session);
  EXPECT_LE(from_plan, 4u);  // the arena, the graph output, what the kernels prepare that a plan cannot carry
  EXPECT_GT(from_onnx, from_plan + 10);
  std::remove(plan.c_str());
}

// The oneDNN primitives a session holds per top-level node with a planned kernel that prepares (oneDNN's).
std::vector<size_t> prepared_entries(const Session& s) {
  const Session::Impl& impl = SessionInternals::impl(s);
  std::vector<size_t> out;
  for (const NodePlan& np : impl.plans.at(&impl.model.graph).nodes) {
    if (np.planned.empty() || !np.planned[0] || !np.planned[0]->prepares) continue;
    size_t primitives = 0;
    for (const auto& [key, value] : np.cache->snapshot()) {
      primitives += key.entry == cpu::CacheEntry::kDnnlConv || key.entry == cpu::CacheEntry::kDnnlMatMul;
    }
    out.push_back(primitives);
  }
  return out;
}

// oneDNN's primitives are made when a plan loads, for the input shapes the build recorded: the first run finds them
// (it makes no new cache entry) and gives the bits of the session from ONNX. A plan whose recorded shapes do not
// fit (a corrupt or hand-edited record) loads and runs the same, making its primitives on the first run.
TEST(Plan, OneDnnPrimitivesAreMadeAtLoadForTheRecordedShapes) {
  if (cpu::default_isa() < cpu::Isa::kAvx2) GTEST_SKIP() << "oneDNN's kernels need AVX2";
  const std::vector<std::string> disabled = {"nchwc_conv.im2col", "nchwc_conv.winograd_f4", "nchwc_conv.winograd_f2",
                                             "nchwc_conv.gemm",   "nchwc_conv.pointwise",   "nchwc_conv.direct",
                                             "gemm.sgemm",        "matmul.sgemm",           "fusedmatmul.sgemm"};
  const std::string plan = tmp_path("resnet18_primitives.kplan");
  PlanBuildOptions build;
  build.threads = 2;
  build.tune = false;
  build.disabled_kernels = disabled;
  ASSERT_TRUE(build_plan(model_path("resnet18.onnx"), plan, build).is_ok());
  SessionOptions options;
  options.intra_op_threads = 2;
  options.tune = false;
  options.disabled_kernels = disabled;
  auto onnx_session = Session::create(model_path("resnet18.onnx"), options);
  ASSERT_TRUE(onnx_session.is_ok());
  const IoInfo& in = (*onnx_session)->inputs()[0];
  const NamedTensors feeds = {{in.name, random_input(*in.type.shape->static_dims(), 7)}};
  auto expected = (*onnx_session)->run(feeds);
  ASSERT_TRUE(expected.is_ok());
  auto check = [&](const std::shared_ptr<Buffer>& file, bool made_at_load) {
    auto s = Session::create_from_plan_bytes(file->data(), file->size(), options);
    ASSERT_TRUE(s.is_ok()) << s.status().message();
    const std::vector<size_t> loaded = prepared_entries(**s);
    ASSERT_GT(loaded.size(), 10u);  // every convolution and the classifier
    for (size_t n : loaded) EXPECT_EQ(n, made_at_load ? 1u : 0u);
    auto out = (*s)->run(feeds);
    ASSERT_TRUE(out.is_ok()) << out.status().message();
    for (size_t n : prepared_entries(**s)) EXPECT_EQ(n, 1u);  // the run found (or made) one primitive per node
    ASSERT_EQ((*out)[0].nbytes(), (*expected)[0].nbytes());
    EXPECT_EQ(std::memcmp((*out)[0].raw_data(), (*expected)[0].raw_data(), (*out)[0].nbytes()), 0);
  };
  auto file = map_file(plan, "plan");
  ASSERT_TRUE(file.is_ok());
  check(*file, true);
  // The same plan with every recorded shape changed: a channel count that does not match the weights, a rank
  // that runs past the record, a negative dtype.
  auto contents = plan::read(*file, "plan");
  ASSERT_TRUE(contents.is_ok()) << contents.status().message();
  size_t changed = 0;
  for (auto& k : contents->kernels) {
    for (auto& shapes : k.input_shapes) {
      if (shapes.size() < 4) continue;
      const std::vector<std::vector<int64_t>> wrong = {{shapes[0], shapes[1], 1, 5, 5}, {shapes[0], 99}, {-7}};
      shapes = wrong[changed++ % wrong.size()];
    }
  }
  ASSERT_GT(changed, 10u);
  auto bytes = plan::write(contents->model, contents->info, contents->kernels, contents->prepared, contents->memory);
  ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
  auto edited = Buffer::allocate(bytes->size()).value();
  std::memcpy(edited->data(), bytes->data(), bytes->size());
  check(edited, false);
  std::remove(plan.c_str());
}

TEST(Plan, AWarmTimingCacheSkipsTheTimingAndGivesTheSameKernels) {
  if (cpu::default_isa() == cpu::Isa::kScalar) GTEST_SKIP() << "no fast kernels under KILN_MAX_ISA=scalar";
  const std::string cache = tmp_path("timing.ktc");
  std::remove(cache.c_str());
  PlanBuildOptions build;
  build.threads = 2;
  build.timing_cache = cache;
  std::vector<std::vector<std::string>> kernels;
  for (int pass = 0; pass < 2; ++pass) {
    const std::string plan = tmp_path("cached" + std::to_string(pass) + ".kplan");
    auto report = build_plan(model_path("mobilenet_v2.onnx"), plan, build);
    ASSERT_TRUE(report.is_ok()) << report.status().message();
    if (pass == 0) {
      EXPECT_GT(report->tuned_configs, 0);
      EXPECT_EQ(report->timing_cache_hits, 0);
    } else {
      EXPECT_EQ(report->tuned_configs, 0);  // every choice came from the cache
      EXPECT_GT(report->timing_cache_hits, 0);
    }
    auto s = Session::create_from_plan(plan);
    ASSERT_TRUE(s.is_ok());
    kernels.emplace_back();
    for (const auto& c : (*s)->kernel_choices()) kernels.back().push_back(c.planned.at(0));
    std::remove(plan.c_str());
  }
  EXPECT_EQ(kernels[0], kernels[1]);
  // A file that is not a timing cache is an error naming it.
  {
    std::ofstream bad(cache, std::ios::binary);
    bad << "not a cache at all";
  }
  SessionOptions options;
  options.timing_cache = cache;
  auto s = Session::create(model_path("srcnn.onnx"), options);
  ASSERT_FALSE(s.is_ok());
  EXPECT_NE(s.status().message().find("timing cache '" + cache + "': not a kiln timing cache"), std::string::npos)
      << s.status().message();
  std::remove(cache.c_str());
}

TEST(Plan, ProfilesBoundTheShapesARunTakes) {
  const std::string plan = tmp_path("dynamic_conv.kplan");
  PlanBuildOptions build;
  ASSERT_TRUE(parse_profile_option("small/in:min=1x3x8x8,opt=1x3x16x16,max=2x3x16x16", build.profiles).is_ok());
  ASSERT_TRUE(parse_profile_option("large/in:min=1x3x17x17,opt=1x3x32x32,max=1x3x64x64", build.profiles).is_ok());
  auto report = build_plan(model_path("dynamic_conv.onnx"), plan, build);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  auto s = Session::create_from_plan(plan);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  ASSERT_EQ((*s)->plan_info()->profiles.size(), 2u);
  auto onnx_session = Session::create(model_path("dynamic_conv.onnx"));
  ASSERT_TRUE(onnx_session.is_ok());
  for (std::vector<int64_t> dims : {std::vector<int64_t>{2, 3, 8, 12}, {1, 3, 40, 64}}) {
    const NamedTensors feeds = {{"in", random_input(dims, 3)}};
    auto a = (*s)->run(feeds);
    auto b = (*onnx_session)->run(feeds);
    ASSERT_TRUE(a.is_ok()) << a.status().message();
    ASSERT_TRUE(b.is_ok());
    const float* x = (*a)[0].data<float>();
    const float* y = (*b)[0].data<float>();
    for (int64_t i = 0; i < (*a)[0].num_elements(); ++i) ASSERT_NEAR(x[i], y[i], 1e-4f * (1 + std::abs(y[i])));
  }
  auto outside = (*s)->run({{"in", random_input({1, 3, 100, 20}, 4)}});
  ASSERT_FALSE(outside.is_ok());
  EXPECT_NE(outside.status().message().find("fit none of the plan's 2 profiles"), std::string::npos)
      << outside.status().message();
  EXPECT_NE(outside.status().message().find("input 'in' dimension 2 is 100, outside profile 'large''s range 17 to 64"),
            std::string::npos)
      << outside.status().message();
  std::remove(plan.c_str());
}

TEST(Plan, WrongFilesAndUnusablePlansAreRefused) {
  auto onnx_as_plan = Session::create_from_plan(model_path("srcnn.onnx"));
  ASSERT_FALSE(onnx_as_plan.is_ok());
  EXPECT_EQ(onnx_as_plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(onnx_as_plan.status().message().find("not a kiln plan"), std::string::npos);
  EXPECT_EQ(Session::create_from_plan(tmp_path("missing.kplan")).status().code(), StatusCode::kNotFound);

  const std::string plan = tmp_path("srcnn.kplan");
  ASSERT_TRUE(build_plan(model_path("srcnn.onnx"), plan, {}).is_ok());
  std::ifstream in(plan, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(Session::create_from_plan_bytes(bytes.data(), bytes.size()).is_ok());
  ASSERT_TRUE(Session::create_from_bytes(bytes.data(), bytes.size()).is_ok());  // told apart by the magic
  for (size_t cut : {size_t{4}, size_t{40}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    auto s = Session::create_from_plan_bytes(bytes.data(), cut);
    ASSERT_FALSE(s.is_ok()) << cut;
  }
  // Every byte of the header and of the graph section is covered by a checksum or a check.
  const size_t graph_end = 64 + 512;
  for (size_t at = 0; at < graph_end && at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] = static_cast<char>(bad[at] ^ 0x20);
    auto s = Session::create_from_plan_bytes(bad.data(), bad.size());
    EXPECT_FALSE(s.is_ok()) << "byte " << at;
  }
  if (cpu::default_isa() != cpu::Isa::kScalar) {
    SessionOptions capped;
    capped.max_isa = "scalar";
    auto s = Session::create_from_plan(plan, capped);
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(s.status().message().find("kernels were chosen for"), std::string::npos) << s.status().message();
  }
  auto built_twice = build_plan(plan, tmp_path("again.kplan"), {});
  ASSERT_FALSE(built_twice.is_ok());
  EXPECT_NE(built_twice.status().message().find("is a kiln plan already"), std::string::npos);
  std::remove(plan.c_str());
}

TEST(Plan, ProfileOptionParsing) {
  std::vector<ShapeProfile> p;
  ASSERT_TRUE(parse_profile_option("x:min=1x3,opt=2x3,max=4x3", p).is_ok());
  ASSERT_TRUE(parse_profile_option("y:min=1,max=9", p).is_ok());
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].name, "default");
  ASSERT_EQ(p[0].inputs.size(), 2u);
  EXPECT_EQ(p[0].inputs[1].opt, std::vector<int64_t>{9});  // opt defaults to max
  ASSERT_TRUE(parse_profile_option("big/x:min=8x3,max=16x3", p).is_ok());
  EXPECT_EQ(p.size(), 2u);
  for (const char* bad :
       {"x:min=1x3", "x:min=1x3,max=2", "x:min=3,max=2", "x:min=a,max=2", "x:foo=1,max=2", "x:min=1,max=1x"}) {
    EXPECT_FALSE(parse_profile_option(bad, p).is_ok()) << bad;
  }
  EXPECT_FALSE(parse_profile_option("x:min=1x3,max=4x3", p).is_ok());  // x is already in the default profile
}

}  // namespace
}  // namespace kiln
