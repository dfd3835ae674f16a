// kiln bench MODEL [--shape NAME=1x3x224x224]... [--iterations N] [--warmup N] [--threads N] [--opt-level L]
//                  [--json FILE]
// [--profile FILE]: like trtexec. Session creation time, latency min/median/p90/p99/mean, throughput and
// peak RSS, on random inputs, with a progress bar on a terminal.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "commands.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/plan.h"
#include "kiln/runtime/session.h"

namespace kiln::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Peak resident memory of this process: VmHWM from /proc/self/status. (getrusage's ru_maxrss would do
// too, but Linux carries it across exec, so it can report the parent's peak, such as a Python launcher's.)
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // kB
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Random input data: uniform [0, 1) for floats, small non-negative integers (valid indices for most
// models) for integer types, false for bool.
StatusOr<Tensor> random_input(const IoInfo& info, const std::vector<int64_t>& dims, std::mt19937& rng) {
  DType dtype = info.type.elem_type == DType::kUndefined ? DType::kFloat32 : info.type.elem_type;
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::allocate(dtype, dims));
  std::uniform_real_distribution<float> u(0, 1);
  std::uniform_int_distribution<int> small(0, 3);
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    switch (dtype) {
      case DType::kFloat32: t.data<float>()[i] = u(rng); break;
      case DType::kFloat64: t.data<double>()[i] = u(rng); break;
      case DType::kFloat16: t.data<uint16_t>()[i] = float_to_half(u(rng)); break;
      case DType::kInt64: t.data<int64_t>()[i] = small(rng); break;
      case DType::kInt32: t.data<int32_t>()[i] = small(rng); break;
      case DType::kUInt8: t.data<uint8_t>()[i] = static_cast<uint8_t>(small(rng)); break;
      case DType::kInt8: t.data<int8_t>()[i] = static_cast<int8_t>(small(rng)); break;
      case DType::kBool: break;
      default:
        return invalid_argument("input '" + info.name + "': kiln bench cannot make " + dtype_name(dtype) + " data");
    }
  }
  return t;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

void progress(int done, int total, bool tty) {
  if (!tty) return;
  const int width = 40, filled = total ? done * width / total : width;
  std::fprintf(stderr, "\r  [%s%s] %d/%d", std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(width - filled), '.').c_str(), done, total);
  if (done == total) std::fprintf(stderr, "\r%*s\r", width + 30, "");
  std::fflush(stderr);
}

}  // namespace

void add_bench(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("bench", "Measure latency, throughput, session creation time and peak memory");
  struct Args {
    std::string model, json, profile;
    std::vector<std::string> shapes;
    int iterations = 100, warmup = 10, threads = 0;
    std::string opt_level = "all", precision = "fp32";
    bool reference = false, no_tune = false;
    std::vector<std::string> disabled_kernels;
    int64_t memory_limit_mb = 0;
    double timeout_ms = 0;
    std::vector<std::string> custom_ops;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file or .kplan plan (kiln build)")->required();
  cmd->add_option("--shape", a->shapes, "NAME=1x3x224x224: the shape of an input with symbolic dims; repeat");
  cmd->add_option("--iterations", a->iterations, "Timed runs (default 100)")->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a->warmup, "Untimed runs first (default 10)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", a->threads, "Intra-op threads (0: one per physical core)")
      ->check(CLI::NonNegativeNumber);
  add_opt_level_option(cmd, a->opt_level);
  add_precision_option(cmd, a->precision);
  add_disable_kernel_option(cmd, a->disabled_kernels);
  cmd->add_option("--json", a->json, "Write the results as JSON to FILE");
  cmd->add_option("--profile", a->profile, "Write a Chrome trace (a span per node) of the timed runs to FILE");
  cmd->add_flag("--reference,--reference-kernels", a->reference,
                "Run every operator's plain reference kernel (slow; for checking the fast kernels)");
  cmd->add_flag("--no-tune", a->no_tune,
                "Take each node's first-guess kernel instead of timing the candidates on the first run");
  add_limit_options(cmd, a->memory_limit_mb, a->timeout_ms);
  add_custom_ops_option(cmd, a->custom_ops);
  cmd->callback([&run, a] {
    run = [a] {
      CustomOps custom;
      if (int code = load_custom_ops(a->custom_ops, custom); code != kExitOk) return code;
      SessionOptions options;
      options.custom_op_libraries = a->custom_ops;
      options.memory_limit_mb = a->memory_limit_mb;
      RunOptions run_options;
      run_options.timeout_ms = a->timeout_ms;
      options.intra_op_threads = a->threads;
      options.optimization_level = *opt::parse_level(a->opt_level);
      options.enable_profiling = !a->profile.empty();
      options.reference_kernels = a->reference;
      options.tune = !a->no_tune;
      options.disabled_kernels = a->disabled_kernels;
      options.precision = a->precision;
      const auto t0 = Clock::now();
      auto session = Session::create(a->model, options);
      const double session_ms = ms_since(t0);
      if (!session.is_ok()) return report_error(session.status());
      const Session& s = **session;

      std::vector<std::vector<int64_t>> dims;
      if (int code = input_dims(s, a->shapes, dims); code != kExitOk) return code;
      std::mt19937 rng(0);
      NamedTensors feeds;
      for (size_t i = 0; i < s.inputs().size(); ++i) {
        const IoInfo& in = s.inputs()[i];
        auto t = random_input(in, dims[i], rng);
        if (!t.is_ok()) return report_error(t.status());
        feeds.emplace_back(in.name, std::move(t).value());
      }

      const bool tty = ::isatty(STDERR_FILENO);
      std::cout << "kiln bench " << a->model << "\n  session created in " << session_ms << " ms\n";
      // The first run also prepares what the fast kernels keep between runs (packed weights, plans): timed
      // apart, the first warm-up run or else the first timed one.
      double first_run_ms = 0;
      for (int i = 0; i < a->warmup; ++i) {
        const auto t = Clock::now();
        auto out = s.run(feeds, {}, &run_options);
        if (i == 0) first_run_ms = ms_since(t);
        if (!out.is_ok()) return report_error(out.status().with_context(a->model));
      }
      std::vector<double> lat;
      lat.reserve(static_cast<size_t>(a->iterations));
      const auto start = Clock::now();
      for (int i = 0; i < a->iterations; ++i) {
        const auto t = Clock::now();
        auto out = s.run(feeds, {}, &run_options);
        lat.push_back(ms_since(t));
        if (!out.is_ok()) return report_error(out.status().with_context(a->model));
        progress(i + 1, a->iterations, tty);
      }
      const double total_s = ms_since(start) / 1000;
      if (a->warmup == 0) first_run_ms = lat.front();
      std::vector<double> sorted = lat;
      std::sort(sorted.begin(), sorted.end());
      double mean = 0;
      for (double v : lat) mean += v;
      mean /= static_cast<double>(lat.size());
      const double rss = peak_rss_mb();
      std::printf("  first run     %.3f ms (%s)\n", first_run_ms,
                  s.plan_info()
                      ? "kernels, prepared weights, memory plan and oneDNN primitives from the plan and its load"
                      : "weights packed for the fast kernels, candidates timed");
      std::printf("  tuning        %.1f ms (%lld configurations timed)\n", s.tune_ms(),
                  static_cast<long long>(s.tuned_configs()));
      std::printf("  latency (ms)  min %.3f  median %.3f  p90 %.3f  p99 %.3f  mean %.3f  (%d runs, %d warm-up)\n",
                  sorted.front(), percentile(sorted, 0.5), percentile(sorted, 0.9), percentile(sorted, 0.99), mean,
                  a->iterations, a->warmup);
      std::printf("  throughput    %.2f runs/s\n  peak RSS      %.1f MiB\n", a->iterations / total_s, rss);
      if (!a->json.empty()) {
        nlohmann::json j = {{"model", a->model},
                            {"median_ms", percentile(sorted, 0.5)},
                            {"p90_ms", percentile(sorted, 0.9)},
                            {"p99_ms", percentile(sorted, 0.99)},
                            {"mean_ms", mean},
                            {"min_ms", sorted.front()},
                            {"iterations", a->iterations},
                            {"session_ms", session_ms},
                            {"first_run_ms", first_run_ms},
                            {"tune_ms", s.tune_ms()},
                            {"peak_rss_mb", rss},
                            {"threads", a->threads},
                            {"precision", s.precision()},
                            {"opt_level", a->opt_level}};
        // Written beside the target and renamed into place: a failed write leaves nothing behind.
        const std::string tmp = a->json + ".tmp";
        std::ofstream f(tmp);
        f << j.dump(2) << "\n";
        f.close();
        if (!f || std::rename(tmp.c_str(), a->json.c_str()) != 0) {
          std::remove(tmp.c_str());
          std::cerr << "kiln: cannot write '" << a->json << "'\n";
          return kExitUsage;
        }
      }
      if (!a->profile.empty()) {
        Status st = s.write_profile(a->profile);
        if (!st.is_ok()) return report_error(st);
        std::cout << "  profile       " << a->profile << "\n";
      }
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
