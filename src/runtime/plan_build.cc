// kiln build (build_plan): an ONNX model -> an engine plan. The session optimizes the model as it would for a run,
// one run per shape profile at its opt shapes times the candidate kernels of every node (the tactic selection of
// SessionOptions::tune), and the optimized graph is written with the kernel each node ran. Part of kiln_runtime:
// it reads ONNX.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include "kernels/isa.h"
#include "kiln/core/file.h"
#include "kiln/onnx/model_io.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"
#include "runtime/plan_format.h"
#include "runtime/session_impl.h"

#ifndef KILN_VERSION_STRING
#error "KILN_VERSION_STRING must be defined by the build"
#endif

namespace kiln {
namespace {

bool is_static(const ir::Type& t) { return t.kind == ir::Type::Kind::kTensor && t.shape && t.shape->is_static(); }

// The profiles to build: the user's, checked against the model's inputs and completed with the static ones, or one
// profile of the static shapes.
StatusOr<std::vector<ShapeProfile>> resolve_profiles(std::vector<ShapeProfile> profiles,
                                                     const std::vector<IoInfo>& inputs) {
  // Profiles cover tensor inputs; a sequence or optional input takes whatever the run feeds.
  std::vector<const IoInfo*> dynamic;
  for (const auto& in : inputs) {
    if (in.type.kind == ir::Type::Kind::kTensor && !is_static(in.type)) dynamic.push_back(&in);
  }
  auto input_list = [&] {
    std::string out;
    for (const auto& in : inputs) out += (out.empty() ? "" : ", ") + in.name + " " + in.type.to_string();
    return out;
  };
  if (profiles.empty()) {
    if (!dynamic.empty()) {
      return invalid_argument("input '" + dynamic[0]->name + "' has the dynamic shape " + dynamic[0]->type.to_string() +
                              ": give its range with --profile " + dynamic[0]->name +
                              ":min=SHAPE,opt=SHAPE,max=SHAPE (inputs: " + input_list() + ")");
    }
    profiles.push_back({"default", {}});
  }
  for (auto& p : profiles) {
    // "--profile NAME:..." where NAME is not an input but the model has one dynamic input: NAME names the profile.
    if (p.inputs.size() == 1 && dynamic.size() == 1) {
      const std::string& given = p.inputs[0].name;
      const bool is_input =
          std::any_of(inputs.begin(), inputs.end(), [&](const IoInfo& in) { return in.name == given; });
      if (!is_input) {
        if (!given.empty() && p.name == "default") p.name = given;
        p.inputs[0].name = dynamic[0]->name;
      }
    }
    for (const auto& pi : p.inputs) {
      const auto it = std::find_if(inputs.begin(), inputs.end(), [&](const IoInfo& in) { return in.name == pi.name; });
      if (it == inputs.end()) {
        return invalid_argument("profile '" + p.name + "' names input '" + pi.name +
                                "', which the model does not have (inputs: " + input_list() + ")");
      }
      if (it->type.kind != ir::Type::Kind::kTensor) {
        return invalid_argument("profile '" + p.name + "': input '" + pi.name + "' is " + it->type.to_string() +
                                ", not a tensor");
      }
      if (it->type.shape) {
        const Shape& s = *it->type.shape;
        if (s.rank() != pi.min.size()) {
          return invalid_argument("profile '" + p.name + "': input '" + pi.name + "' has rank " +
                                  std::to_string(s.rank()) + " " + s.to_string() + "; the profile gives rank " +
                                  std::to_string(pi.min.size()));
        }
        for (size_t d = 0; d < s.rank(); ++d) {
          if (s[d].is_known() && (pi.min[d] != s[d].value() || pi.max[d] != s[d].value())) {
            return invalid_argument("profile '" + p.name + "': input '" + pi.name + "' dimension " + std::to_string(d) +
                                    " is fixed at " + std::to_string(s[d].value()) + " by the model " + s.to_string() +
                                    "; the profile gives " + std::to_string(pi.min[d]) + " to " +
                                    std::to_string(pi.max[d]));
          }
        }
      }
    }
    for (const auto& in : inputs) {
      if (p.find(in.name) || in.type.kind != ir::Type::Kind::kTensor) continue;
      if (!is_static(in.type)) {
        return invalid_argument("profile '" + p.name + "' gives no shapes for input '" + in.name + "' " +
                                in.type.to_string() + ": add --profile " + in.name + ":min=SHAPE,opt=SHAPE,max=SHAPE");
      }
      const auto dims = *in.type.shape->static_dims();
      p.inputs.push_back({in.name, dims, dims, dims});
    }
  }
  return profiles;
}

// Inputs at a profile's opt shapes for the timing run: floats 1 (a kernel's time does not depend on the values,
// and inputs that are scales or factors, as the tutorial's Resize factor, stay sensible), other numbers zero (valid
// indices and counts), empty strings.
StatusOr<NamedTensors> timing_inputs(const ShapeProfile& p, const std::vector<IoInfo>& inputs) {
  NamedTensors feeds;
  for (const auto& in : inputs) {
    const ShapeProfile::Input* pi = p.find(in.name);
    if (!pi || in.type.kind != ir::Type::Kind::kTensor) continue;
    const DType dtype = in.type.elem_type;
    if (dtype == DType::kString) {
      const auto n = checked_num_elements(pi->opt);
      feeds.emplace_back(in.name, Tensor::from_strings(pi->opt, std::vector<std::string>(n ? *n : 0)));
      continue;
    }
    KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(dtype, pi->opt));
    if (dtype == DType::kFloat32) std::fill_n(t.data<float>(), t.num_elements(), 1.0f);
    feeds.emplace_back(in.name, std::move(t));
  }
  return feeds;
}

std::vector<std::string> isa_features(cpu::Isa isa) {
  std::vector<std::string> out;
  if (isa >= cpu::Isa::kAvx2) out = {"avx2", "fma"};
  if (isa >= cpu::Isa::kAvx512) {
    for (const char* f : {"avx512f", "avx512bw", "avx512dq", "avx512vl"}) out.emplace_back(f);
  }
  return out;
}

std::string utc_now() {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return stamp;
}

}  // namespace

StatusOr<PlanBuildReport> build_plan(const std::string& onnx_path, const std::string& plan_path,
                                     const PlanBuildOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  auto progress = [&](const char* stage, double fraction) {
    if (options.progress) options.progress(stage, fraction);
  };
  const std::optional<cpu::Precision> precision = cpu::parse_precision(options.precision);
  if (!precision) return invalid_argument("--precision is '" + options.precision + "'; expected fp32 or bf16");
  if (is_plan_file(onnx_path)) {
    return invalid_argument("'" + onnx_path + "' is a kiln plan already; kiln build takes an ONNX model");
  }
  progress("optimize", 0.0);
  KILN_ASSIGN_OR_RETURN(auto source, map_file(onnx_path, "model"));
  KILN_ASSIGN_OR_RETURN(auto model, onnx::load_model(onnx_path));
  SessionOptions so;
  so.intra_op_threads = options.threads;
  so.optimization_level = options.optimization_level;
  so.tune = options.tune;
  so.disabled_kernels = options.disabled_kernels;
  so.timing_cache = options.timing_cache;
  so.precision = cpu::precision_name(*precision);
  if (options.portable) so.max_isa = "avx2";
  auto created = Session::create(std::move(model), so);
  if (!created.is_ok()) return created.status().with_context(onnx_path);
  const auto& session = *created;
  KILN_ASSIGN_OR_RETURN(auto profiles, resolve_profiles(options.profiles, session->inputs()));
  progress("tune", 0.1);

  PlanBuildReport report;
  // Per node (by address in the session's model), the kernel and variant it ran under each profile.
  std::map<const ir::Node*, plan::NodeKernels> ran;
  const bool tensors_only = std::all_of(session->inputs().begin(), session->inputs().end(),
                                        [](const IoInfo& in) { return in.type.kind == ir::Type::Kind::kTensor; });
  for (size_t p = 0; p < profiles.size(); ++p) {
    KILN_ASSIGN_OR_RETURN(auto feeds, timing_inputs(profiles[p], session->inputs()));
    auto run = tensors_only ? session->run(feeds)
                            : StatusOr<std::vector<Tensor>>(unimplemented(
                                  "the model has sequence or optional inputs, which the timing run cannot make up"));
    if (!run.is_ok()) {
      report.warnings.push_back("profile '" + profiles[p].name + "': the timing run at its opt shapes failed (" +
                                run.status().message() + "); its nodes take the session's choice at run time");
    }
    for (const KernelChoice& c : session->kernel_choices()) {
      auto& k = ran[c.ir_node];
      k.kernels.resize(profiles.size());
      k.details.resize(profiles.size());
      k.input_shapes.resize(profiles.size());
      if (run.is_ok()) {
        k.kernels[p] = c.kernel;
        k.details[p] = c.detail;
        k.input_shapes[p] = c.signature;
      }
    }
    progress("tune", 0.1 + 0.8 * static_cast<double>(p + 1) / static_cast<double>(profiles.size()));
  }

  if (!options.timing_cache.empty() && options.tune) {
    KILN_RETURN_IF_ERROR(session->save_timing_cache(options.timing_cache));
  }
  report.timing_cache_hits = session->timing_cache_hits();
  std::vector<plan::NodeKernels> kernels;
  std::map<std::string, int64_t> counts;
  plan::for_each_node(session->model().graph, [&](const ir::Node& n) {
    auto it = ran.find(&n);
    kernels.push_back(it == ran.end() ? plan::NodeKernels{} : it->second);
    ++report.nodes;
    const auto& k = kernels.back().kernels;
    if (!k.empty() && !k[0].empty()) {
      ++counts[k[0]];
      if (k[0] != "ref") ++report.fast_kernels;
    }
  });
  report.kernel_counts.assign(counts.begin(), counts.end());
  std::sort(report.kernel_counts.begin(), report.kernel_counts.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });

  const cpu::Isa isa = options.portable ? std::min(cpu::default_isa(), cpu::Isa::kAvx2) : cpu::default_isa();
  PlanInfo info;
  info.kiln_version = KILN_VERSION_STRING;
  const size_t slash = onnx_path.find_last_of('/');
  info.source_name = slash == std::string::npos ? onnx_path : onnx_path.substr(slash + 1);
  info.source_hash = checksum64(source->data(), source->size());
  info.isa = cpu::isa_name(isa);
  info.cpu_features = isa_features(isa);
  info.cpu_name = cpu::cpu_features().model;
  info.threads = options.threads;
  // What the kernels were chosen under: bf16 only where the session could use it (kiln build said so otherwise).
  info.precision = cpu::precision_name(cpu::effective_precision(*precision, isa));
  info.portable = options.portable;
  info.optimization_level = options.optimization_level;
  info.tuned = options.tune;
  info.tune_ms = session->tune_ms();
  info.tuned_configs = session->tuned_configs();
  info.created = utc_now();
  info.profiles = profiles;
  progress("write", 0.9);
  info.build_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  // The weights the chosen kernels prepared (packed, transformed), so that a session from the plan starts with them.
  const std::vector<plan::Prepared> prepared = SessionInternals::impl(*session).export_prepared();
  for (const auto& p : prepared) {
    for (const auto& a : p.arrays) report.prepared_bytes += a.second * static_cast<int64_t>(sizeof(float));
  }
  const std::vector<plan::MemoryPlanEntry> memory = SessionInternals::impl(*session).export_memory();
  KILN_ASSIGN_OR_RETURN(std::string bytes, plan::write(session->model(), info, kernels, prepared, memory));
  KILN_RETURN_IF_ERROR(write_file_atomic(plan_path, bytes, "plan"));
  progress("write", 1.0);
  report.plan_bytes = static_cast<int64_t>(info.file_bytes);
  report.weight_bytes = static_cast<int64_t>(info.weight_bytes);
  report.tune_ms = info.tune_ms;
  report.tuned_configs = info.tuned_configs;
  report.build_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  report.info = std::move(info);
  return report;
}

}  // namespace kiln
