// The ONNX node-suite conformance runner: runs every case of a generated suite through kiln::Session and
// compares with the expected outputs (numpy.testing.assert_allclose rules: |actual - expected| <=
// atol + rtol * |expected|, rtol 1e-3, atol 1e-7 unless tolerances.txt overrides a case, NaN == NaN).
//
//   kiln_conformance NODE_DIR [--allow-list FILE] [--write-allow-list FILE] [--tolerances FILE]
//                    [--filter TEXT] [--opt-level 0|1|2|99] [--reference] [--plan DIR] [--verbose]
//
// --plan DIR builds every case into an engine plan in DIR first (kiln build: build_plan) and runs the plan
// (Session::create_from_plan) instead of the ONNX model.
// --reference runs every case on the reference kernels (SessionOptions::reference_kernels) and fails a case in
// which any node ran another kernel (Session::kernel_choices).
// Prints "N passed, N failed, N skipped". With --allow-list, exits 1 when a listed case does not pass.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "kiln/onnx/model_io.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

int g_opt_level = 99;      // SessionOptions::optimization_level for every case
bool g_reference = false;  // SessionOptions::reference_kernels for every case
std::string g_plan_dir;    // --plan: build each case into a plan here and run that

struct Tolerance {
  double rtol = 1e-3;
  double atol = 1e-7;
};

std::vector<double> values_of(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.num_elements()));
  auto get = [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(t.data<T>()[i]);
  };
  switch (t.dtype()) {
    case DType::kFloat32: get(float{}); break;
    case DType::kFloat64: get(double{}); break;
    case DType::kInt8: get(int8_t{}); break;
    case DType::kInt16: get(int16_t{}); break;
    case DType::kInt32: get(int32_t{}); break;
    case DType::kInt64: get(int64_t{}); break;
    case DType::kUInt8:
    case DType::kBool: get(uint8_t{}); break;
    case DType::kUInt16: get(uint16_t{}); break;
    case DType::kUInt32: get(uint32_t{}); break;
    case DType::kUInt64: get(uint64_t{}); break;
    case DType::kFloat16:
      for (size_t i = 0; i < out.size(); ++i) out[i] = half_to_float(t.data<uint16_t>()[i]);
      break;
    case DType::kBFloat16:
      for (size_t i = 0; i < out.size(); ++i) out[i] = bfloat16_to_float(t.data<uint16_t>()[i]);
      break;
    default: break;
  }
  return out;
}

// "" when equal within tolerance, else what differs.
std::string compare(const Tensor& got, const Tensor& want, const Tolerance& tol) {
  DType want_dtype = want.dtype();
  // onnx 1.12 stores bfloat16 expectations as uint16.
  if (want_dtype == DType::kUInt16 && got.dtype() == DType::kBFloat16) want_dtype = DType::kBFloat16;
  if (got.dtype() != want_dtype) {
    return std::string("dtype ") + dtype_name(got.dtype()) + ", expected " + dtype_name(want_dtype);
  }
  if (got.dims() != want.dims())
    return "shape " + dims_to_string(got.dims()) + ", expected " + dims_to_string(want.dims());
  if (got.dtype() == DType::kString) return got.strings() == want.strings() ? "" : "strings differ";
  auto g = values_of(got);
  Tensor w = want.dtype() == DType::kUInt16 && want_dtype == DType::kBFloat16
                 ? Tensor::borrow(DType::kBFloat16, want.dims(), const_cast<void*>(want.raw_data()))
                 : want;
  auto e = values_of(w);
  const bool exact = !dtype_is_float(got.dtype());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok = exact ? g[i] == e[i]
                    : (std::isnan(g[i]) && std::isnan(e[i])) || g[i] == e[i] ||
                          std::abs(g[i] - e[i]) <= tol.atol + tol.rtol * std::abs(e[i]);
    if (!ok && bad++ == 0) first = i;
  }
  if (!bad) return "";
  std::ostringstream os;
  os << bad << " of " << g.size() << " values differ; first at " << first << ": " << g[first] << " vs expected "
     << e[first];
  return os.str();
}

// Values compare by kind (tensor, sequence, empty optional), then tensor by tensor.
std::string compare_values(const Value& got, const Value& want, const Tolerance& tol) {
  if (got.is_none() != want.is_none() || got.is_sequence() != want.is_sequence()) {
    return got.describe() + ", expected " + want.describe();
  }
  if (got.is_none()) return "";
  if (got.is_tensor()) return compare(got.tensor(), want.tensor(), tol);
  if (got.items().size() != want.items().size()) return got.describe() + ", expected " + want.describe();
  for (size_t i = 0; i < got.items().size(); ++i) {
    std::string d = compare(got.items()[i], want.items()[i], tol);
    if (!d.empty()) return "sequence element " + std::to_string(i) + ": " + d;
  }
  return "";
}

// Cases whose outputs are random: checked by dtype, shape and distribution instead of values.
enum class RandomKind { kNone, kBernoulli, kTrainingDropout };

RandomKind random_kind(const std::string& name) {
  if (name.rfind("test_bernoulli", 0) == 0) return RandomKind::kBernoulli;
  if (name.rfind("test_training_dropout", 0) == 0) return RandomKind::kTrainingDropout;
  return RandomKind::kNone;
}

// Bernoulli: 0/1 values whose mean is within 4 standard deviations (plus slack for tiny tensors) of the
// inputs' mean probability. Training Dropout: every output is 0 or x / (1 - ratio), the mask agrees,
// and the dropped fraction is within 4 standard deviations of the ratio.
std::string check_random(RandomKind kind, const NamedTensors& feeds, const std::vector<Tensor>& got,
                         const std::vector<Tensor>& want) {
  for (size_t k = 0; k < want.size() && k < got.size(); ++k) {
    if (got[k].dims() != want[k].dims())
      return "shape " + dims_to_string(got[k].dims()) + ", expected " + dims_to_string(want[k].dims());
    if (got[k].dtype() != want[k].dtype())
      return std::string("dtype ") + dtype_name(got[k].dtype()) + ", expected " + dtype_name(want[k].dtype());
  }
  if (got.empty() || feeds.empty()) return "no outputs";
  auto y = values_of(got[0]);
  auto x = values_of(feeds[0].second);
  const double n = static_cast<double>(y.size());
  if (n == 0) return "";
  if (kind == RandomKind::kBernoulli) {
    double p_sum = 0, var = 0, ones = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] != 0 && y[i] != 1) return "value " + std::to_string(y[i]) + " is neither 0 nor 1";
      p_sum += x[i];
      var += x[i] * (1 - x[i]);
      ones += y[i];
    }
    if (std::abs(ones - p_sum) > 4 * std::sqrt(var) + 2) {
      return std::to_string(ones) + " ones where the probabilities expect " + std::to_string(p_sum);
    }
    return "";
  }
  double ratio = 0.5;
  if (feeds.size() > 1) ratio = values_of(feeds[1].second)[0];
  const double scale = ratio < 1 ? 1 / (1 - ratio) : 0;
  std::vector<double> mask = got.size() > 1 ? values_of(got[1]) : std::vector<double>{};
  double dropped = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const bool kept = y[i] != 0 || (x[i] == 0);
    const bool is_dropped = y[i] == 0 && x[i] != 0;
    if (!is_dropped && std::abs(y[i] - x[i] * scale) > 1e-5 * std::abs(x[i] * scale) + 1e-6) {
      return "output " + std::to_string(y[i]) + " is neither 0 nor x/(1-ratio) = " + std::to_string(x[i] * scale);
    }
    if (!mask.empty() && x[i] != 0 && (mask[i] != 0) != kept)
      return "mask disagrees with the output at " + std::to_string(i);
    dropped += is_dropped;
  }
  if (std::abs(dropped - ratio * n) > 4 * std::sqrt(n * ratio * (1 - ratio)) + 1) {
    return std::to_string(dropped) + " of " + std::to_string(n) + " values dropped with ratio " + std::to_string(ratio);
  }
  return "";
}

// "" on pass, else the failure.
std::string run_case(const fs::path& dir, const Tolerance& tol) {
  const RandomKind random = random_kind(dir.filename().string());
  auto model = onnx::load_model((dir / "model.onnx").string());
  if (!model.is_ok()) return "load: " + model.status().message();
  ir::Model copy = *model;
  SessionOptions options;
  options.optimization_level = g_opt_level;
  options.reference_kernels = g_reference;
  StatusOr<std::unique_ptr<Session>> session = unimplemented("no session");
  if (!g_plan_dir.empty()) {
    const std::string plan = (fs::path(g_plan_dir) / (dir.filename().string() + ".kplan")).string();
    PlanBuildOptions build;
    build.optimization_level = g_opt_level;
    // A profile for the dynamic tensor inputs, spanning the shapes of the case's data sets (as a user gives
    // kiln build --profile for the shapes they will run).
    ShapeProfile profile{"data", {}};
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_directory()) continue;
      for (size_t k = 0; k < model->graph.inputs.size(); ++k) {
        const ir::ValueInfo& in = model->graph.inputs[k];
        const fs::path p = e.path() / ("input_" + std::to_string(k) + ".pb");
        if (in.type.kind != ir::Type::Kind::kTensor || (in.type.shape && in.type.shape->is_static()) ||
            !fs::exists(p)) {
          continue;
        }
        auto v = onnx::load_value(p.string(), in.type);
        if (!v.is_ok() || !v->is_tensor()) continue;
        const auto& dims = v->tensor().dims();
        auto* have = const_cast<ShapeProfile::Input*>(profile.find(in.name));
        if (!have) {
          profile.inputs.push_back({in.name, dims, dims, dims});
        } else if (have->min.size() == dims.size()) {
          for (size_t d = 0; d < dims.size(); ++d) {
            have->min[d] = std::min(have->min[d], dims[d]);
            have->max[d] = std::max(have->max[d], dims[d]);
            have->opt[d] = have->max[d];
          }
        }
      }
    }
    if (!profile.inputs.empty()) build.profiles.push_back(profile);
    auto built = build_plan((dir / "model.onnx").string(), plan, build);
    if (!built.is_ok()) return "build: " + built.status().message();
    session = Session::create_from_plan(plan, options);
    std::error_code ignored;
    fs::remove(plan, ignored);
  } else {
    session = Session::create(std::move(copy), options);
  }
  if (!session.is_ok()) return session.status().message();
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory()) sets.push_back(e.path());
  }
  std::sort(sets.begin(), sets.end());
  const auto& g = model->graph;
  for (const auto& set : sets) {
    NamedValues feeds;
    for (size_t k = 0;; ++k) {
      fs::path p = set / ("input_" + std::to_string(k) + ".pb");
      if (!fs::exists(p)) break;
      if (k >= g.inputs.size()) return "test data has more inputs than the model";
      auto v = onnx::load_value(p.string(), g.inputs[k].type);
      if (!v.is_ok()) return v.status().message();
      Value value = std::move(v).value();
      if (value.is_tensor() && g.inputs[k].type.elem_type == DType::kBFloat16 &&
          value.tensor().dtype() == DType::kUInt16) {
        const Tensor& raw = value.tensor();
        auto owned = Tensor::borrow(DType::kBFloat16, raw.dims(), const_cast<void*>(raw.raw_data())).clone();
        if (!owned.is_ok()) return owned.status().message();
        value = Value(std::move(owned).value());
      }
      feeds.emplace_back(g.inputs[k].name, std::move(value));
    }
    auto outputs = (*session)->run_values(feeds);
    if (!outputs.is_ok()) return outputs.status().message();
    if (g_reference) {
      for (const KernelChoice& c : (*session)->kernel_choices()) {
        if (!c.kernel.empty() && c.kernel != "ref") {
          return "node '" + c.node + "' (" + c.op + ") ran " + c.kernel + " with reference kernels on";
        }
      }
    }
    if (random != RandomKind::kNone) {
      NamedTensors tensor_feeds;
      for (const auto& [name, v] : feeds) tensor_feeds.emplace_back(name, v.tensor());
      std::vector<Tensor> got, want;
      for (const auto& v : *outputs) got.push_back(v.tensor());
      for (size_t k = 0; fs::exists(set / ("output_" + std::to_string(k) + ".pb")); ++k) {
        auto w = onnx::load_tensor((set / ("output_" + std::to_string(k) + ".pb")).string());
        if (!w.is_ok()) return w.status().message();
        want.push_back(w->tensor);
      }
      std::string why = check_random(random, tensor_feeds, got, want);
      if (!why.empty()) return "random output: " + why;
      continue;
    }
    for (size_t k = 0; k < outputs->size(); ++k) {
      fs::path p = set / ("output_" + std::to_string(k) + ".pb");
      if (!fs::exists(p)) continue;
      auto want = onnx::load_value(p.string(), g.outputs[k].type);
      if (!want.is_ok()) return want.status().message();
      std::string diff = compare_values((*outputs)[k], *want, tol);
      if (!diff.empty()) return "output '" + g.outputs[k].name + "': " + diff;
    }
  }
  return "";
}

std::set<std::string> read_list(const std::string& path) {
  std::set<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    line.erase(std::remove_if(line.begin(), line.end(), ::isspace), line.end());
    if (!line.empty()) out.insert(line);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: kiln_conformance NODE_DIR [--allow-list F] [--write-allow-list F] [--tolerances F] "
                 "[--filter TEXT] [--opt-level L] [--reference] [--plan DIR] [--verbose]\n";
    return 2;
  }
  fs::path root = argv[1];
  std::string allow_path, write_path, tol_path, filter;
  bool verbose = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--allow-list")
      allow_path = next();
    else if (a == "--write-allow-list")
      write_path = next();
    else if (a == "--tolerances")
      tol_path = next();
    else if (a == "--filter")
      filter = next();
    else if (a == "--opt-level")
      g_opt_level = std::atoi(next().c_str());
    else if (a == "--reference")
      g_reference = true;
    else if (a == "--plan") {
      g_plan_dir = next();
      std::error_code ec;
      fs::create_directories(g_plan_dir, ec);  // the build folder's test_tmp may not exist yet
    } else if (a == "--verbose")
      verbose = true;
    else {
      std::cerr << "kiln_conformance: unknown option " << a << "\n";
      return 2;
    }
  }
  if (fs::exists(root / "node")) root /= "node";
  std::map<std::string, Tolerance> tolerances;
  if (!tol_path.empty()) {
    std::ifstream in(tol_path);
    std::string line;
    while (std::getline(in, line)) {
      line = line.substr(0, line.find('#'));
      std::istringstream ls(line);
      std::string name;
      Tolerance t;
      if (ls >> name >> t.rtol >> t.atol) tolerances[name] = t;
    }
  }
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory() && e.path().filename().string().find(filter) != std::string::npos) cases.push_back(e.path());
  }
  std::sort(cases.begin(), cases.end());
  std::set<std::string> allowed = allow_path.empty() ? std::set<std::string>{} : read_list(allow_path);
  std::vector<std::string> passing, regressions;
  size_t failed = 0, skipped = 0;
  for (const auto& dir : cases) {
    const std::string name = dir.filename().string();
    auto it = tolerances.find(name);
    std::string result = run_case(dir, it == tolerances.end() ? Tolerance{} : it->second);
    if (result.rfind("skip:", 0) == 0) {
      ++skipped;
      if (verbose) std::cout << "SKIP " << name << ": " << result.substr(6) << "\n";
    } else if (result.empty()) {
      passing.push_back(name);
    } else {
      ++failed;
      if (verbose || allowed.count(name)) std::cout << "FAIL " << name << ": " << result << "\n";
      if (allowed.count(name)) regressions.push_back(name);
    }
  }
  if (!write_path.empty()) {
    std::ofstream out(write_path);
    out << "# ONNX node-suite cases kiln passes; `make test` fails when one of them regresses.\n"
           "# Regenerate: build/tests/kiln_conformance build/onnx_node_tests --write-allow-list "
           "tests/conformance/allow_list.txt\n";
    for (const auto& p : passing) out << p << "\n";
  }
  std::cout << passing.size() << " passed, " << failed << " failed, " << skipped << " skipped\n";
  for (const auto& name : allowed) {
    if (std::find(passing.begin(), passing.end(), name) == passing.end() &&
        std::find(regressions.begin(), regressions.end(), name) == regressions.end() &&
        std::none_of(cases.begin(), cases.end(), [&](const fs::path& p) { return p.filename() == name; })) {
      if (filter.empty()) regressions.push_back(name + " (missing from the suite)");
    }
  }
  if (!regressions.empty()) {
    std::cout << regressions.size() << " allow-listed cases regressed:\n";
    for (const auto& r : regressions) std::cout << "  " << r << "\n";
    return 1;
  }
  return 0;
}
