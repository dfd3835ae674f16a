// The C API (include/kiln/kiln_c.h) through libkiln.so: models run as the reference outputs say, symbolic dims,
// strings, borrowed memory, outputs the caller owns, and every misuse answered with a status (never a crash).
// Under `make test-asan` this also checks that every handle, error included, is released.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../runtime/loop_models.h"
#include "kiln/core/npy.h"
#include "kiln/ir/builder.h"
#include "kiln/kiln.hpp"
#include "kiln/kiln_c.h"
#include "kiln/onnx/model_io.h"

namespace {

using namespace kiln::ir::helper;

const std::string kModels = KILN_TEST_MODELS;

struct StatusDeleter {
  void operator()(kiln_status* s) const { kiln_status_release(s); }
};
struct SessionDeleter {
  void operator()(kiln_session* s) const { kiln_session_release(s); }
};
struct TensorDeleter {
  void operator()(kiln_tensor* t) const { kiln_tensor_release(t); }
};
struct OptionsDeleter {
  void operator()(kiln_session_options* o) const { kiln_session_options_release(o); }
};
struct RunOptionsDeleter {
  void operator()(kiln_run_options* o) const { kiln_run_options_release(o); }
};
using Status = std::unique_ptr<kiln_status, StatusDeleter>;
using Session = std::unique_ptr<kiln_session, SessionDeleter>;
using Tensor = std::unique_ptr<kiln_tensor, TensorDeleter>;
using Options = std::unique_ptr<kiln_session_options, OptionsDeleter>;
using RunOptions = std::unique_ptr<kiln_run_options, RunOptionsDeleter>;

// Expects success; on failure prints the message.
#define KILN_C_OK(call)                                                                 \
  do {                                                                                  \
    Status status_(call);                                                               \
    ASSERT_EQ(status_, nullptr) << #call << ": " << kiln_status_message(status_.get()); \
  } while (0)

// Expects an error of `code` whose message contains `fragment`; releases it.
void expect_error(kiln_status* raw, int32_t code, const std::string& fragment) {
  Status s(raw);
  ASSERT_NE(s, nullptr) << "expected an error mentioning '" << fragment << "'";
  EXPECT_EQ(kiln_status_code(s.get()), code) << kiln_status_message(s.get());
  EXPECT_NE(std::string(kiln_status_message(s.get())).find(fragment), std::string::npos)
      << "message: " << kiln_status_message(s.get()) << "\nexpected to mention: " << fragment;
}

Session open(const std::string& path, const kiln_session_options* options = nullptr) {
  kiln_session* s = nullptr;
  Status st(kiln_session_create(path.c_str(), options, &s));
  EXPECT_EQ(st, nullptr) << kiln_status_message(st.get());
  return Session(s);
}

Session from_model(const kiln::ir::Model& model, const kiln_session_options* options = nullptr) {
  auto bytes = kiln::onnx::serialize_model(model);
  EXPECT_TRUE(bytes.is_ok()) << bytes.status().to_string();
  kiln_session* s = nullptr;
  Status st(kiln_session_create_from_bytes(bytes->data(), bytes->size(), options, &s));
  EXPECT_EQ(st, nullptr) << kiln_status_message(st.get());
  return Session(s);
}

Tensor float_tensor(const std::vector<int64_t>& dims, const std::vector<float>& values) {
  kiln_tensor* t = nullptr;
  Status st(kiln_tensor_create(KILN_DTYPE_FLOAT, dims.data(), dims.size(), values.data(), &t));
  EXPECT_EQ(st, nullptr) << kiln_status_message(st.get());
  return Tensor(t);
}

std::vector<float> floats(const kiln_tensor* t) {
  void* data = nullptr;
  int64_t n = 0;
  Status a(kiln_tensor_data(t, &data)), b(kiln_tensor_element_count(t, &n));
  const auto* p = static_cast<const float*>(data);
  return std::vector<float>(p, p + n);
}

// y = x + [1, 2, 3] over x: float[batch, 3].
kiln::ir::Model add_model() {
  return make_model(make_graph({make_node("Add", {"x", "b"}, {"y"})}, "add",
                               {make_tensor_value_info("x", kiln::DType::kFloat32, std::vector<DimArg>{"batch", 3})},
                               {make_tensor_value_info("y", kiln::DType::kFloat32, std::vector<DimArg>{"batch", 3})},
                               {make_tensor<float>("b", {3}, {1, 2, 3})}),
                    {{"", 13}});
}

TEST(CApi, VersionMatchesTheHeader) {
  const std::string expected = std::to_string(KILN_VERSION_MAJOR) + "." + std::to_string(KILN_VERSION_MINOR) + "." +
                               std::to_string(KILN_VERSION_PATCH);
  EXPECT_EQ(std::string(kiln_version()), expected);
}

TEST(CApi, SrcnnMatchesTheReferenceOutput) {
  Options options;
  {
    kiln_session_options* o = nullptr;
    KILN_C_OK(kiln_session_options_create(&o));
    options.reset(o);
  }
  KILN_C_OK(kiln_session_options_set_threads(options.get(), 2));
  KILN_C_OK(kiln_session_options_set_opt_level(options.get(), 99));
  Session session = open(kModels + "/srcnn.onnx", options.get());
  ASSERT_NE(session, nullptr);

  size_t n_in = 0, n_out = 0;
  KILN_C_OK(kiln_session_input_count(session.get(), &n_in));
  KILN_C_OK(kiln_session_output_count(session.get(), &n_out));
  ASSERT_EQ(n_in, 1u);
  ASSERT_EQ(n_out, 1u);
  const char* in_name = nullptr;
  const char* out_name = nullptr;
  int32_t dtype = 0;
  const int64_t* dims = nullptr;
  int64_t rank = 0;
  KILN_C_OK(kiln_session_input_name(session.get(), 0, &in_name));
  KILN_C_OK(kiln_session_output_name(session.get(), 0, &out_name));
  EXPECT_STREQ(in_name, "input");
  EXPECT_STREQ(out_name, "output");
  KILN_C_OK(kiln_session_input_dtype(session.get(), 0, &dtype));
  EXPECT_EQ(dtype, KILN_DTYPE_FLOAT);
  KILN_C_OK(kiln_session_output_shape(session.get(), 0, &dims, &rank));
  ASSERT_EQ(rank, 4);
  EXPECT_EQ(std::vector<int64_t>(dims, dims + 4), (std::vector<int64_t>{1, 3, 96, 96}));

  auto in = kiln::read_npy(kModels + "/srcnn.ref0.in.npy");
  auto want = kiln::read_npy(kModels + "/srcnn.ref0.out.npy");
  ASSERT_TRUE(in.is_ok() && want.is_ok());
  Tensor x = float_tensor(in->dims(), in->to_vector<float>());
  const kiln_tensor* feeds[] = {x.get()};
  kiln_tensor* out = nullptr;
  KILN_C_OK(kiln_session_run(session.get(), &in_name, feeds, 1, nullptr, 1, &out));
  Tensor y(out);
  size_t out_rank = 0;
  const int64_t* out_dims = nullptr;
  KILN_C_OK(kiln_tensor_rank(y.get(), &out_rank));
  KILN_C_OK(kiln_tensor_shape(y.get(), &out_dims));
  ASSERT_EQ(std::vector<int64_t>(out_dims, out_dims + out_rank), want->dims());
  size_t bytes = 0;
  KILN_C_OK(kiln_tensor_byte_size(y.get(), &bytes));
  EXPECT_EQ(bytes, want->nbytes());
  const auto got = floats(y.get());
  const auto ref = want->to_vector<float>();
  ASSERT_EQ(got.size(), ref.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(double(got[i]) - ref[i]));
  EXPECT_LT(worst, 1e-3) << "largest difference from the reference output (torch)";
}

TEST(CApi, SymbolicDimsAreMinusOneWithTheirName) {
  Session session = open(kModels + "/dynamic_conv.onnx");
  ASSERT_NE(session, nullptr);
  const int64_t* dims = nullptr;
  int64_t rank = 0;
  KILN_C_OK(kiln_session_input_shape(session.get(), 0, &dims, &rank));
  ASSERT_EQ(rank, 4);
  EXPECT_EQ(std::vector<int64_t>(dims, dims + 4), (std::vector<int64_t>{-1, 3, -1, -1}));
  const char* names[4] = {};
  for (size_t d = 0; d < 4; ++d) KILN_C_OK(kiln_session_input_dim_name(session.get(), 0, d, &names[d]));
  EXPECT_STREQ(names[0], "batch");
  EXPECT_STREQ(names[1], "");
  EXPECT_STREQ(names[2], "h");
  EXPECT_STREQ(names[3], "w");
  expect_error(kiln_session_input_dim_name(session.get(), 0, 4, &names[0]), KILN_INVALID_ARGUMENT, "dim 4");
}

TEST(CApi, UnknownRankIsMinusOne) {
  auto model = make_model(make_graph({make_node("Identity", {"x"}, {"y"})}, "g",
                                     {make_tensor_value_info("x", kiln::DType::kInt64, std::nullopt)},
                                     {make_tensor_value_info("y", kiln::DType::kInt64, std::nullopt)}),
                          {{"", 13}});
  Session session = from_model(model);
  ASSERT_NE(session, nullptr);
  const int64_t* dims = reinterpret_cast<const int64_t*>(&model);  // must be overwritten
  int64_t rank = 0;
  KILN_C_OK(kiln_session_input_shape(session.get(), 0, &dims, &rank));
  EXPECT_EQ(rank, -1);
  EXPECT_EQ(dims, nullptr);
}

TEST(CApi, FromBytesWithBorrowedInputAndSelectedOutput) {
  Session session = from_model(add_model());
  ASSERT_NE(session, nullptr);
  float x[6] = {0, 1, 2, 3, 4, 5};
  const int64_t dims[] = {2, 3};
  kiln_tensor* raw = nullptr;
  KILN_C_OK(kiln_tensor_create_borrowed(KILN_DTYPE_FLOAT, dims, 2, x, &raw));
  Tensor borrowed(raw);
  void* data = nullptr;
  KILN_C_OK(kiln_tensor_data(borrowed.get(), &data));
  EXPECT_EQ(data, x) << "a borrowed tensor is the caller's memory";
  const char* in_names[] = {"x"};
  const char* out_names[] = {"y"};
  const kiln_tensor* feeds[] = {borrowed.get()};
  kiln_tensor* out = nullptr;
  KILN_C_OK(kiln_session_run(session.get(), in_names, feeds, 1, out_names, 1, &out));
  Tensor y(out);
  EXPECT_EQ(floats(y.get()), (std::vector<float>{1, 3, 5, 4, 6, 8}));
}

// kiln_session_run_into: the outputs land in the caller's memory, in place, run after run; a tensor of the wrong
// shape or dtype, or a missing one, is an error.
TEST(CApi, RunIntoWritesTheCallersTensors) {
  Session session = from_model(add_model());
  ASSERT_NE(session, nullptr);
  float x[6] = {0, 1, 2, 3, 4, 5};
  float y[6] = {};
  const int64_t dims[] = {2, 3};
  kiln_tensor* raw = nullptr;
  KILN_C_OK(kiln_tensor_create_borrowed(KILN_DTYPE_FLOAT, dims, 2, x, &raw));
  Tensor in(raw);
  KILN_C_OK(kiln_tensor_create_borrowed(KILN_DTYPE_FLOAT, dims, 2, y, &raw));
  Tensor out(raw);
  const char* in_names[] = {"x"};
  const kiln_tensor* feeds[] = {in.get()};
  kiln_tensor* outs[] = {out.get()};
  for (int round = 0; round < 3; ++round) {
    x[0] = static_cast<float>(round);
    KILN_C_OK(kiln_session_run_into(session.get(), nullptr, in_names, feeds, 1, nullptr, 1, outs));
    EXPECT_EQ(std::vector<float>(y, y + 6), (std::vector<float>{1.0f + static_cast<float>(round), 3, 5, 4, 6, 8}));
  }
  const int64_t wrong_dims[] = {3, 2};
  KILN_C_OK(kiln_tensor_create_borrowed(KILN_DTYPE_FLOAT, wrong_dims, 2, y, &raw));
  Tensor wrong(raw);
  kiln_tensor* bad[] = {wrong.get()};
  expect_error(kiln_session_run_into(session.get(), nullptr, in_names, feeds, 1, nullptr, 1, bad),
               KILN_INVALID_ARGUMENT, "output 'y' is float [2,3], but its preallocated tensor is float [3,2]");
  kiln_tensor* none[] = {nullptr};
  expect_error(kiln_session_run_into(session.get(), nullptr, in_names, feeds, 1, nullptr, 1, none),
               KILN_INVALID_ARGUMENT, "outputs[0] is NULL");
  expect_error(kiln_session_run_into(session.get(), nullptr, in_names, feeds, 1, nullptr, 2, outs),
               KILN_INVALID_ARGUMENT, "n_outputs must be the model's output count, 1, not 2");
}

TEST(CApi, OutputsAreTheCallersEvenWhenTheyAliasAnInputOrAnInitializer) {
  // y is the initializer itself, z is the input itself.
  auto model = make_model(make_graph({make_node("Identity", {"w"}, {"y"}), make_node("Identity", {"x"}, {"z"})}, "g",
                                     {make_tensor_value_info("x", kiln::DType::kFloat32, std::vector<DimArg>{2})},
                                     {make_tensor_value_info("y", kiln::DType::kFloat32, std::vector<DimArg>{2}),
                                      make_tensor_value_info("z", kiln::DType::kFloat32, std::vector<DimArg>{2})},
                                     {make_tensor<float>("w", {2}, {7, 8})}),
                          {{"", 13}});
  Session session = from_model(model);
  ASSERT_NE(session, nullptr);
  float x[2] = {1, 2};
  const int64_t dims[] = {2};
  kiln_tensor* raw = nullptr;
  KILN_C_OK(kiln_tensor_create_borrowed(KILN_DTYPE_FLOAT, dims, 1, x, &raw));
  Tensor in(raw);
  const char* names[] = {"x"};
  const kiln_tensor* feeds[] = {in.get()};
  for (int round = 0; round < 2; ++round) {
    kiln_tensor* outs[2] = {};
    KILN_C_OK(kiln_session_run(session.get(), names, feeds, 1, nullptr, 2, outs));
    Tensor y(outs[0]), z(outs[1]);
    EXPECT_EQ(floats(y.get()), (std::vector<float>{7, 8})) << "round " << round;
    EXPECT_EQ(floats(z.get()), (std::vector<float>{1, 2})) << "round " << round;
    void* py = nullptr;
    void* pz = nullptr;
    KILN_C_OK(kiln_tensor_data(y.get(), &py));
    KILN_C_OK(kiln_tensor_data(z.get(), &pz));
    EXPECT_NE(pz, static_cast<void*>(x));
    static_cast<float*>(py)[0] = -1;  // must not reach the session's initializer
    static_cast<float*>(pz)[0] = -1;  // nor the caller's input
  }
  EXPECT_EQ(x[0], 1.0f);
}

TEST(CApi, StringTensorsInAndOut) {
  auto model = make_model(make_graph({make_node("Identity", {"s"}, {"t"})}, "g",
                                     {make_tensor_value_info("s", kiln::DType::kString, std::vector<DimArg>{3})},
                                     {make_tensor_value_info("t", kiln::DType::kString, std::vector<DimArg>{3})}),
                          {{"", 13}});
  Session session = from_model(model);
  ASSERT_NE(session, nullptr);
  const char* values[] = {"kiln", "", "\xe7\x85\x85"};
  const int64_t dims[] = {3};
  kiln_tensor* raw = nullptr;
  KILN_C_OK(kiln_tensor_create(KILN_DTYPE_STRING, dims, 1, values, &raw));
  Tensor s(raw);
  const char* names[] = {"s"};
  const kiln_tensor* feeds[] = {s.get()};
  kiln_tensor* out = nullptr;
  KILN_C_OK(kiln_session_run(session.get(), names, feeds, 1, nullptr, 1, &out));
  Tensor t(out);
  int32_t dtype = 0;
  KILN_C_OK(kiln_tensor_dtype(t.get(), &dtype));
  EXPECT_EQ(dtype, KILN_DTYPE_STRING);
  void* data = nullptr;
  KILN_C_OK(kiln_tensor_data(t.get(), &data));
  const auto* strings = static_cast<const char* const*>(data);
  for (int i = 0; i < 3; ++i) EXPECT_STREQ(strings[i], values[i]);
  size_t bytes = 1;
  KILN_C_OK(kiln_tensor_byte_size(t.get(), &bytes));
  EXPECT_EQ(bytes, 0u);
}

TEST(CApi, ScalarsAndEmptyTensors) {
  kiln_tensor* raw = nullptr;
  const int64_t value = 42;
  KILN_C_OK(kiln_tensor_create(KILN_DTYPE_INT64, nullptr, 0, &value, &raw));
  Tensor scalar(raw);
  size_t rank = 9;
  const int64_t* dims = &value;
  int64_t n = 0;
  KILN_C_OK(kiln_tensor_rank(scalar.get(), &rank));
  KILN_C_OK(kiln_tensor_shape(scalar.get(), &dims));
  KILN_C_OK(kiln_tensor_element_count(scalar.get(), &n));
  EXPECT_EQ(rank, 0u);
  EXPECT_EQ(dims, nullptr);
  EXPECT_EQ(n, 1);
  const int64_t empty_dims[] = {0, 5};
  KILN_C_OK(kiln_tensor_create_borrowed(KILN_DTYPE_FLOAT, empty_dims, 2, nullptr, &raw));
  Tensor empty(raw);
  KILN_C_OK(kiln_tensor_element_count(empty.get(), &n));
  EXPECT_EQ(n, 0);
  // NULL data: zero-filled.
  const int64_t four[] = {4};
  KILN_C_OK(kiln_tensor_create(KILN_DTYPE_FLOAT, four, 1, nullptr, &raw));
  Tensor zeros(raw);
  EXPECT_EQ(floats(zeros.get()), (std::vector<float>(4, 0.0f)));
}

TEST(CApi, NullHandlesAndPointersAreErrors) {
  const std::string null = "is NULL";
  size_t count = 0;
  const char* name = nullptr;
  int32_t dtype = 0;
  const int64_t* dims = nullptr;
  int64_t rank = 0;
  expect_error(kiln_session_input_count(nullptr, &count), KILN_INVALID_ARGUMENT, "session is NULL");
  expect_error(kiln_session_output_count(nullptr, &count), KILN_INVALID_ARGUMENT, "session is NULL");
  expect_error(kiln_session_input_name(nullptr, 0, &name), KILN_INVALID_ARGUMENT, "session is NULL");
  expect_error(kiln_session_output_dtype(nullptr, 0, &dtype), KILN_INVALID_ARGUMENT, "session is NULL");
  expect_error(kiln_session_input_shape(nullptr, 0, &dims, &rank), KILN_INVALID_ARGUMENT, "session is NULL");
  expect_error(kiln_session_output_dim_name(nullptr, 0, 0, &name), KILN_INVALID_ARGUMENT, "session is NULL");
  expect_error(kiln_session_create(nullptr, nullptr, nullptr), KILN_INVALID_ARGUMENT, "out is NULL");
  kiln_session* s = reinterpret_cast<kiln_session*>(&count);  // must be set to NULL on failure
  expect_error(kiln_session_create(nullptr, nullptr, &s), KILN_INVALID_ARGUMENT, "path is NULL");
  EXPECT_EQ(s, nullptr);
  expect_error(kiln_session_create_from_bytes(nullptr, 10, nullptr, &s), KILN_INVALID_ARGUMENT, "data is NULL");
  expect_error(kiln_session_options_create(nullptr), KILN_INVALID_ARGUMENT, null);
  expect_error(kiln_session_options_set_threads(nullptr, 1), KILN_INVALID_ARGUMENT, "options is NULL");
  expect_error(kiln_session_options_set_opt_level(nullptr, 1), KILN_INVALID_ARGUMENT, "options is NULL");
  expect_error(kiln_session_options_set_memory_limit_mb(nullptr, 1), KILN_INVALID_ARGUMENT, "options is NULL");
  expect_error(kiln_run_options_create(nullptr), KILN_INVALID_ARGUMENT, null);
  expect_error(kiln_run_options_set_terminate(nullptr, 1), KILN_INVALID_ARGUMENT, "options is NULL");
  expect_error(kiln_run_options_set_timeout_ms(nullptr, 1), KILN_INVALID_ARGUMENT, "options is NULL");
  expect_error(kiln_tensor_create(KILN_DTYPE_FLOAT, nullptr, 0, nullptr, nullptr), KILN_INVALID_ARGUMENT,
               "out is NULL");
  void* data = nullptr;
  expect_error(kiln_tensor_data(nullptr, &data), KILN_INVALID_ARGUMENT, "tensor is NULL");
  expect_error(kiln_tensor_dtype(nullptr, &dtype), KILN_INVALID_ARGUMENT, "tensor is NULL");
  expect_error(kiln_tensor_rank(nullptr, &count), KILN_INVALID_ARGUMENT, "tensor is NULL");
  expect_error(kiln_tensor_shape(nullptr, &dims), KILN_INVALID_ARGUMENT, "tensor is NULL");
  expect_error(kiln_tensor_element_count(nullptr, &rank), KILN_INVALID_ARGUMENT, "tensor is NULL");
  expect_error(kiln_tensor_byte_size(nullptr, &count), KILN_INVALID_ARGUMENT, "tensor is NULL");
  expect_error(kiln_session_run(nullptr, nullptr, nullptr, 0, nullptr, 0, nullptr), KILN_INVALID_ARGUMENT,
               "session is NULL");
  Session session = from_model(add_model());
  ASSERT_NE(session, nullptr);
  expect_error(kiln_session_input_name(session.get(), 0, nullptr), KILN_INVALID_ARGUMENT, "out is NULL");
  expect_error(kiln_session_input_shape(session.get(), 0, nullptr, &rank), KILN_INVALID_ARGUMENT, "dims is NULL");
  Tensor x = float_tensor({1, 3}, {1, 2, 3});
  const kiln_tensor* feeds[] = {x.get()};
  const kiln_tensor* null_feeds[] = {nullptr};
  const char* names[] = {"x"};
  const char* null_names[] = {nullptr};
  kiln_tensor* out = nullptr;
  expect_error(kiln_session_run(session.get(), names, feeds, 1, nullptr, 1, nullptr), KILN_INVALID_ARGUMENT,
               "outputs is NULL");
  expect_error(kiln_session_run(session.get(), nullptr, feeds, 1, nullptr, 1, &out), KILN_INVALID_ARGUMENT,
               "input_names is NULL");
  expect_error(kiln_session_run(session.get(), names, nullptr, 1, nullptr, 1, &out), KILN_INVALID_ARGUMENT,
               "inputs is NULL");
  expect_error(kiln_session_run(session.get(), null_names, feeds, 1, nullptr, 1, &out), KILN_INVALID_ARGUMENT,
               "input_names[0] is NULL");
  expect_error(kiln_session_run(session.get(), names, null_feeds, 1, nullptr, 1, &out), KILN_INVALID_ARGUMENT,
               "inputs[0] ('x') is NULL");
  expect_error(kiln_session_run(session.get(), names, feeds, 1, null_names, 1, &out), KILN_INVALID_ARGUMENT,
               "output_names[0] is NULL");
  EXPECT_EQ(out, nullptr);
  // NULL status and NULL handles to release are fine.
  EXPECT_EQ(kiln_status_code(nullptr), KILN_OK);
  EXPECT_STREQ(kiln_status_message(nullptr), "");
  kiln_status_release(nullptr);
  kiln_session_release(nullptr);
  kiln_tensor_release(nullptr);
  kiln_session_options_release(nullptr);
  kiln_run_options_release(nullptr);
}

TEST(CApi, BadTensorsAreErrors) {
  kiln_tensor* t = nullptr;
  const int64_t dims[] = {2, 3};
  const int64_t negative[] = {2, -3};
  const int64_t huge[] = {int64_t{1} << 40, int64_t{1} << 40};
  expect_error(kiln_tensor_create(0, dims, 2, nullptr, &t), KILN_INVALID_ARGUMENT, "dtype 0 is not a tensor dtype");
  expect_error(kiln_tensor_create(99, dims, 2, nullptr, &t), KILN_INVALID_ARGUMENT, "dtype 99");
  expect_error(kiln_tensor_create(KILN_DTYPE_FLOAT, nullptr, 2, nullptr, &t), KILN_INVALID_ARGUMENT,
               "shape is NULL but rank is 2");
  expect_error(kiln_tensor_create(KILN_DTYPE_FLOAT, negative, 2, nullptr, &t), KILN_INVALID_ARGUMENT, "dim 1 is -3");
  expect_error(kiln_tensor_create(KILN_DTYPE_FLOAT, huge, 2, nullptr, &t), KILN_INVALID_ARGUMENT,
               "kiln_tensor_create: cannot allocate a tensor of shape [1099511627776,1099511627776]");
  expect_error(kiln_tensor_create_borrowed(KILN_DTYPE_FLOAT, dims, 2, nullptr, &t), KILN_INVALID_ARGUMENT,
               "data is NULL for 6 elements");
  float buf[6] = {};
  expect_error(kiln_tensor_create_borrowed(KILN_DTYPE_STRING, dims, 2, buf, &t), KILN_INVALID_ARGUMENT,
               "string tensors cannot borrow");
  const char* strings[] = {"a", nullptr};
  const int64_t two[] = {2};
  expect_error(kiln_tensor_create(KILN_DTYPE_STRING, two, 1, strings, &t), KILN_INVALID_ARGUMENT,
               "string element 1 is NULL");
  EXPECT_EQ(t, nullptr);
}

TEST(CApi, BadOptionsAndModelsAreErrors) {
  kiln_session_options* raw = nullptr;
  KILN_C_OK(kiln_session_options_create(&raw));
  Options options(raw);
  expect_error(kiln_session_options_set_opt_level(options.get(), 5), KILN_INVALID_ARGUMENT, "level 5");
  expect_error(kiln_session_options_set_threads(options.get(), -1), KILN_INVALID_ARGUMENT, "threads is -1");
  expect_error(kiln_session_options_set_memory_limit_mb(options.get(), -2), KILN_INVALID_ARGUMENT, "-2 MiB");
  expect_error(kiln_session_options_register_custom_ops_library(nullptr, "x.so"), KILN_INVALID_ARGUMENT,
               "options is NULL");
  expect_error(kiln_session_options_register_custom_ops_library(options.get(), nullptr), KILN_INVALID_ARGUMENT,
               "library_path is NULL");
  expect_error(kiln_session_options_register_custom_ops_library(options.get(), "/no/such/ops.so"), KILN_NOT_FOUND,
               "custom-op library '/no/such/ops.so': no such file");
  kiln_run_options* run = nullptr;
  KILN_C_OK(kiln_run_options_create(&run));
  RunOptions run_options(run);
  expect_error(kiln_run_options_set_timeout_ms(run, -1), KILN_INVALID_ARGUMENT, "ms (expected >= 0");
  expect_error(kiln_run_options_set_timeout_ms(run, NAN), KILN_INVALID_ARGUMENT, "ms (expected >= 0");

  kiln_session* s = nullptr;
  const std::string missing = kModels + "/no_such_model.onnx";
  expect_error(kiln_session_create(missing.c_str(), nullptr, &s), KILN_NOT_FOUND, missing);
  const std::string garbage = kModels + "/bad_random.onnx";
  // Not an ONNX model at all: an invalid argument (as the CLI's exit code 2); an op without a kernel: unimplemented.
  expect_error(kiln_session_create(garbage.c_str(), nullptr, &s), KILN_INVALID_ARGUMENT,
               "bad_random.onnx' is not a valid ONNX model");
  const char bytes[] = "not a model";
  expect_error(kiln_session_create_from_bytes(bytes, sizeof bytes, nullptr, &s), KILN_INVALID_ARGUMENT,
               "not a valid ONNX model");
  const std::string unknown_op = kModels + "/bad_unknown_op.onnx";
  expect_error(kiln_session_create(unknown_op.c_str(), nullptr, &s), KILN_UNIMPLEMENTED, "node 'mystery' (FooBarOp)");
  EXPECT_EQ(s, nullptr);
}

TEST(CApi, BadRunsAreErrorsNamingTheInput) {
  Session session = from_model(add_model());
  ASSERT_NE(session, nullptr);
  Tensor x = float_tensor({1, 3}, {1, 2, 3});
  Tensor wrong_shape = float_tensor({1, 4}, {1, 2, 3, 4});
  const int64_t dims[] = {1, 3};
  kiln_tensor* raw = nullptr;
  KILN_C_OK(kiln_tensor_create(KILN_DTYPE_INT64, dims, 2, nullptr, &raw));
  Tensor wrong_dtype(raw);
  kiln_tensor* out = nullptr;
  const char* x_name[] = {"x"};
  const char* typo[] = {"X"};
  const char* twice[] = {"x", "x"};
  const kiln_tensor* feeds[] = {x.get()};
  const kiln_tensor* two_feeds[] = {x.get(), x.get()};
  const kiln_tensor* bad_dtype[] = {wrong_dtype.get()};
  const kiln_tensor* bad_shape[] = {wrong_shape.get()};
  expect_error(kiln_session_run(session.get(), typo, feeds, 1, nullptr, 1, &out), KILN_INVALID_ARGUMENT,
               "'X' is not an input of the model (inputs: 'x')");
  expect_error(kiln_session_run(session.get(), nullptr, nullptr, 0, nullptr, 1, &out), KILN_INVALID_ARGUMENT,
               "input 'x'");
  expect_error(kiln_session_run(session.get(), twice, two_feeds, 2, nullptr, 1, &out), KILN_INVALID_ARGUMENT,
               "input 'x' is given twice");
  expect_error(kiln_session_run(session.get(), x_name, bad_dtype, 1, nullptr, 1, &out), KILN_INVALID_ARGUMENT, "'x'");
  expect_error(kiln_session_run(session.get(), x_name, bad_shape, 1, nullptr, 1, &out), KILN_INVALID_ARGUMENT, "'x'");
  const char* no_such_output[] = {"z"};
  expect_error(kiln_session_run(session.get(), x_name, feeds, 1, no_such_output, 1, &out), KILN_INVALID_ARGUMENT,
               "'z' is not an output");
  kiln_tensor* two_outs[2] = {};
  expect_error(kiln_session_run(session.get(), x_name, feeds, 1, nullptr, 2, two_outs), KILN_INVALID_ARGUMENT,
               "n_outputs must be the model's output count, 1, not 2");
  EXPECT_EQ(two_outs[0], nullptr);
  EXPECT_EQ(two_outs[1], nullptr);
  const char* y_name[] = {"y"};
  expect_error(kiln_session_run(session.get(), x_name, feeds, 1, y_name, 0, &out), KILN_INVALID_ARGUMENT,
               "n_outputs is 0");
  size_t index_probe = 0;
  const char* name = nullptr;
  KILN_C_OK(kiln_session_input_count(session.get(), &index_probe));
  expect_error(kiln_session_input_name(session.get(), index_probe, &name), KILN_INVALID_ARGUMENT,
               "input index 1 is out of range (the model has 1 inputs)");
  const int64_t* dims_out = nullptr;
  int64_t rank = 0;
  expect_error(kiln_session_output_shape(session.get(), 3, &dims_out, &rank), KILN_INVALID_ARGUMENT, "output index 3");
}

TEST(CApi, MemoryLimitTerminateAndTimeout) {
  // 1 MiB limit; y = Expand(x, [1024, 1024]) takes 4 MiB.
  auto expand = make_model(make_graph({make_node("Expand", {"x", "shape"}, {"y"}, "big_expand")}, "g",
                                      {make_tensor_value_info("x", kiln::DType::kFloat32, std::vector<DimArg>{1})},
                                      {make_tensor_value_info("y", kiln::DType::kFloat32, std::nullopt)},
                                      {make_tensor<int64_t>("shape", {2}, {1024, 1024})}),
                           {{"", 13}});
  kiln_session_options* raw = nullptr;
  KILN_C_OK(kiln_session_options_create(&raw));
  Options options(raw);
  KILN_C_OK(kiln_session_options_set_memory_limit_mb(options.get(), 1));
  KILN_C_OK(kiln_session_options_set_opt_level(options.get(), 0));
  Session limited = from_model(expand, options.get());
  ASSERT_NE(limited, nullptr);
  Tensor x = float_tensor({1}, {1});
  const char* names[] = {"x"};
  const kiln_tensor* feeds[] = {x.get()};
  kiln_tensor* out = nullptr;
  expect_error(kiln_session_run(limited.get(), names, feeds, 1, nullptr, 1, &out), KILN_RESOURCE_EXHAUSTED,
               "big_expand");

  Session loop = from_model(kiln::testing::endless_loop());
  ASSERT_NE(loop, nullptr);
  kiln_run_options* run = nullptr;
  KILN_C_OK(kiln_run_options_create(&run));
  RunOptions run_options(run);
  KILN_C_OK(kiln_run_options_set_timeout_ms(run, 50));
  expect_error(kiln_session_run_with_options(loop.get(), run, nullptr, nullptr, 0, nullptr, 1, &out), KILN_CANCELLED,
               "timed out");
  KILN_C_OK(kiln_run_options_set_timeout_ms(run, 0));
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Status s(kiln_run_options_set_terminate(run, 1));
  });
  expect_error(kiln_session_run_with_options(loop.get(), run, nullptr, nullptr, 0, nullptr, 1, &out), KILN_CANCELLED,
               "loop");
  stopper.join();
  EXPECT_EQ(out, nullptr);
}

TEST(CApi, OneSessionManyThreads) {
  Session session = from_model(add_model());
  ASSERT_NE(session, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const int64_t batch = 1 + (t + i) % 3;
        std::vector<float> v(static_cast<size_t>(batch * 3), float(t));
        Tensor x = float_tensor({batch, 3}, v);
        const char* names[] = {"x"};
        const kiln_tensor* feeds[] = {x.get()};
        kiln_tensor* out = nullptr;
        Status s(kiln_session_run(session.get(), names, feeds, 1, nullptr, 1, &out));
        Tensor y(out);
        if (s || floats(y.get()).size() != v.size() || floats(y.get())[2] != float(t) + 3) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(CppWrapper, RunsAndThrowsTheStatus) {
  kiln::sdk::Session session(kModels + "/dynamic_conv.onnx", {1, 99, 0});
  const auto inputs = session.inputs();
  ASSERT_EQ(inputs.size(), 1u);
  EXPECT_EQ(inputs[0].dim_names, (std::vector<std::string>{"batch", "", "h", "w"}));
  EXPECT_EQ(inputs[0].dims, (std::vector<int64_t>{-1, 3, -1, -1}));
  auto x = kiln::sdk::Tensor::from_data<float>({1, 3, 4, 4}, std::vector<float>(48, 1.0f));
  auto outputs = session.run({{"in", &x}});
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].shape(), (std::vector<int64_t>{1, 3, 2, 2}));  // a 3x3 convolution without padding
  EXPECT_EQ(outputs[0].size(), 12);
  try {
    (void)outputs[0].data<int64_t>();
    ADD_FAILURE() << "data<int64_t>() of a float tensor must throw";
  } catch (const kiln::sdk::Error& e) {
    EXPECT_EQ(e.code(), KILN_INVALID_ARGUMENT);
  }
  try {
    kiln::sdk::Session missing(kModels + "/missing.onnx");
    ADD_FAILURE() << "a missing model must throw";
  } catch (const kiln::sdk::Error& e) {
    EXPECT_EQ(e.code(), KILN_NOT_FOUND);
    EXPECT_NE(std::string(e.what()).find("missing.onnx"), std::string::npos) << e.what();
  }
  EXPECT_THROW(session.run({{"nope", &x}}), kiln::sdk::Error);
  EXPECT_THROW(kiln::sdk::Tensor::from_data<float>({2, 2}, std::vector<float>(3)), kiln::sdk::Error);
  // run_into: the output in a buffer of the caller's.
  std::vector<float> y(12, -1.0f);
  auto out = kiln::sdk::Tensor::borrow<float>({1, 3, 2, 2}, y.data());
  session.run_into({{"in", &x}}, {&out});
  EXPECT_EQ(y, std::vector<float>(outputs[0].data<float>(), outputs[0].data<float>() + 12));
  auto small = kiln::sdk::Tensor::borrow<float>({1, 3, 1, 1}, y.data());
  EXPECT_THROW(session.run_into({{"in", &x}}, {&small}), kiln::sdk::Error);
}

// A restorer folder over the 32x32 test SRCNN, made by hand (kiln pack is tested from the CLI).
std::string restorer_folder() {
  const std::string dir = ::testing::TempDir() + "/capi_restorer";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kModels + "/srcnn.onnx", dir + "/srcnn.onnx",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir + "/deploy.json")
      << R"({"version": 1, "task": "restorer", "model": "srcnn.onnx", "input": "input", "output": "output"})";
  std::ofstream(dir + "/pipeline.json")
      << R"({"preprocess": [{"type": "ImageToTensor"}], "postprocess": {"type": "Restore"}})";
  return dir;
}

TEST(CApiTasks, RestorerRunsAndMisuseIsAnError) {
  const std::string dir = restorer_folder();
  kiln_restorer* r = nullptr;
  expect_error(kiln_restorer_create_by_path(dir.c_str(), "cuda", 0, &r), KILN_INVALID_ARGUMENT, "device 'cuda'");
  expect_error(kiln_restorer_create_by_path(dir.c_str(), "cpu", 1, &r), KILN_INVALID_ARGUMENT, "device_id 1");
  expect_error(kiln_restorer_create_by_path(nullptr, "cpu", 0, &r), KILN_INVALID_ARGUMENT, "model_dir is NULL");
  expect_error(kiln_restorer_create_by_path("/no/such/folder", "cpu", 0, &r), KILN_NOT_FOUND,
               "/no/such/folder/deploy.json: cannot open it");
  kiln_classifier* c = nullptr;
  expect_error(kiln_classifier_create_by_path(dir.c_str(), "cpu", 0, &c), KILN_INVALID_ARGUMENT,
               "the folder holds a restorer, not a classifier");
  EXPECT_EQ(c, nullptr);
  KILN_C_OK(kiln_restorer_create_by_path(dir.c_str(), "cpu", 0, &r));
  std::vector<uint8_t> pixels(32 * 32 * 3, 100);
  kiln_mat image{pixels.data(), 32, 32, 3, KILN_PIXEL_FORMAT_BGR, KILN_DATA_TYPE_UINT8};
  kiln_mat* results = nullptr;
  KILN_C_OK(kiln_restorer_apply(r, &image, 1, &results));
  EXPECT_EQ(results[0].height, 96);
  EXPECT_EQ(results[0].width, 96);
  EXPECT_EQ(results[0].channel, 3);
  EXPECT_EQ(results[0].format, KILN_PIXEL_FORMAT_BGR);
  kiln_restorer_release_result(results, 1);
  kiln_mat bad = image;
  bad.channel = 1;
  expect_error(kiln_restorer_apply(r, &bad, 1, &results), KILN_INVALID_ARGUMENT,
               "images[0]: channel is 1, but its format has 3");
  bad = image;
  bad.format = 7;
  expect_error(kiln_restorer_apply(r, &bad, 1, &results), KILN_INVALID_ARGUMENT, "images[0]: format 7");
  bad = image;
  bad.data = nullptr;
  expect_error(kiln_restorer_apply(r, &bad, 1, &results), KILN_INVALID_ARGUMENT, "images[0]: the image's data is NULL");
  bad = image;
  bad.height = 16;  // the model takes 32x32
  expect_error(kiln_restorer_apply(r, &bad, 1, &results), KILN_INVALID_ARGUMENT, "images[0]");
  expect_error(kiln_restorer_apply(r, &image, 0, &results), KILN_INVALID_ARGUMENT, "count is 0");
  expect_error(kiln_restorer_apply(nullptr, &image, 1, &results), KILN_INVALID_ARGUMENT, "restorer is NULL");
  expect_error(kiln_restorer_apply(r, nullptr, 1, &results), KILN_INVALID_ARGUMENT, "images is NULL");
  EXPECT_EQ(results, nullptr);
  int* counts = nullptr;
  kiln_classification* classes = nullptr;
  expect_error(kiln_classifier_apply(nullptr, &image, 1, &classes, &counts), KILN_INVALID_ARGUMENT,
               "classifier is NULL");
  kiln_detector* d = nullptr;
  kiln_segmentor* sg = nullptr;
  expect_error(kiln_detector_create_by_path(dir.c_str(), "cpu", 0, &d), KILN_INVALID_ARGUMENT,
               "the folder holds a restorer, not a detector");
  expect_error(kiln_segmentor_create_by_path(dir.c_str(), "cpu", 0, &sg), KILN_INVALID_ARGUMENT,
               "the folder holds a restorer, not a segmentor");
  kiln_detection* dets = nullptr;
  kiln_segmentation* segs = nullptr;
  expect_error(kiln_detector_apply(nullptr, &image, 1, &dets, &counts), KILN_INVALID_ARGUMENT, "detector is NULL");
  expect_error(kiln_detector_apply(nullptr, &image, 1, &dets, nullptr), KILN_INVALID_ARGUMENT, "detector is NULL");
  expect_error(kiln_segmentor_apply(nullptr, &image, 1, &segs), KILN_INVALID_ARGUMENT, "segmentor is NULL");
  expect_error(kiln_segmentor_apply(nullptr, &image, 1, nullptr), KILN_INVALID_ARGUMENT, "results is NULL");
  EXPECT_EQ(dets, nullptr);
  EXPECT_EQ(segs, nullptr);
  kiln_detector_release_result(nullptr, nullptr, 0);
  kiln_segmentor_release_result(nullptr, 0);
  kiln_detector_destroy(nullptr);
  kiln_segmentor_destroy(nullptr);
  kiln_restorer_release_result(nullptr, 0);
  kiln_classifier_release_result(nullptr, nullptr, 0);
  kiln_restorer_destroy(r);
  kiln_restorer_destroy(nullptr);
  kiln_classifier_destroy(nullptr);
}

TEST(CppWrapper, TaskClassesRunAndThrow) {
  const std::string dir = restorer_folder();
  kiln::sdk::Restorer restorer(dir);
  std::vector<uint8_t> pixels(32 * 32 * 3, 50);
  const auto restored = restorer({pixels.data(), 32, 32, 3, KILN_PIXEL_FORMAT_RGB, KILN_DATA_TYPE_UINT8});
  EXPECT_EQ(restored.height, 96);
  EXPECT_EQ(restored.pixels.size(), 96u * 96u * 3u);
  const auto two = restorer.apply({{pixels.data(), 32, 32}, {pixels.data(), 32, 32}});
  EXPECT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].pixels, two[1].pixels);
  for (const char* kind : {"classifier", "detector", "segmentor"}) {
    try {
      if (std::string(kind) == "classifier") kiln::sdk::Classifier c(dir);
      if (std::string(kind) == "detector") kiln::sdk::Detector d(dir);
      if (std::string(kind) == "segmentor") kiln::sdk::Segmentor s(dir);
      ADD_FAILURE() << kind << " of a restorer's folder must throw";
    } catch (const kiln::sdk::Error& e) {
      EXPECT_EQ(e.code(), KILN_INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find(std::string("not a ") + kind), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(restorer({nullptr, 32, 32}), kiln::sdk::Error);
}

}  // namespace
