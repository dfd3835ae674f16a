// kiln build MODEL.onnx -O MODEL.kplan [--profile [PROFILE/]INPUT:min=SHAPE,opt=SHAPE,max=SHAPE]... [--precision
// fp32|bf16]
// [--threads N] [--portable] [--no-tune] [--opt-level L] [--verbose]: the seed's TensorRT engine build. Optimizes
// the model for this CPU, times the candidate kernels of every node at each profile's opt shapes, and writes the
// optimized graph, the chosen kernels, the profiles and the weights as one plan that sessions load without the ONNX
// parser (kiln run|bench|show|check take it).

#include <cstdio>
#include <iostream>

#include "commands.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/plan.h"

namespace kiln::cli {

void add_build(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("build", "Build an engine plan (.kplan): optimized graph, timed kernels, weights");
  struct Args {
    std::string model, out, precision = "fp32", opt_level = "all", timing_cache;
    std::vector<std::string> profiles;
    int threads = 0;
    bool portable = false, no_tune = false, verbose = false;
    std::vector<std::string> disabled_kernels;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file")->required();
  cmd->add_option("-O,--output", a->out, "Where to write the plan (.kplan)")->required();
  cmd->add_option("--profile", a->profiles,
                  "[PROFILE/]INPUT:min=1x3x64x64,opt=1x3x256x256,max=4x3x1024x1024: the shapes the plan accepts for "
                  "an input with dynamic dims (kernels are timed at opt); repeat for more inputs, or with another "
                  "PROFILE/ for more profiles");
  add_precision_option(cmd, a->precision);
  add_disable_kernel_option(cmd, a->disabled_kernels);
  cmd->add_option("--threads", a->threads, "Intra-op threads the kernels are timed with (0: one per physical core)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--portable", a->portable,
                "Choose kernels for AVX2 + FMA, so that the plan runs on any x86-64 CPU that has them");
  cmd->add_flag("--no-tune", a->no_tune, "Record each node's first-guess kernel instead of timing the candidates");
  cmd->add_option("--timing-cache", a->timing_cache,
                  "FILE: take the kernel choices it holds instead of timing them, then write it back with this "
                  "build's choices (created when missing)");
  add_opt_level_option(cmd, a->opt_level);
  cmd->add_flag("--verbose", a->verbose, "List every node with the kernel recorded for it");
  cmd->callback([&run, a] {
    run = [a] {
      PlanBuildOptions options;
      for (const auto& p : a->profiles) {
        Status st = parse_profile_option(p, options.profiles);
        if (!st.is_ok()) return report_error(st);
      }
      options.precision = a->precision;
      options.threads = a->threads;
      options.portable = a->portable;
      options.tune = !a->no_tune;
      options.disabled_kernels = a->disabled_kernels;
      options.timing_cache = a->timing_cache;
      options.optimization_level = *opt::parse_level(a->opt_level);
      ProgressBar bar;
      options.progress = [&bar](const std::string& stage, double f) { bar.update(stage, f); };
      auto report = build_plan(a->model, a->out, options);
      bar.finish();
      if (!report.is_ok()) return report_error(report.status());
      for (const auto& w : report->warnings) std::cerr << "kiln: warning: " << w << "\n";
      const PlanInfo* info = &report->info;
      std::cout << "wrote " << a->out << "\n";
      std::cout << "  nodes       " << report->nodes << " (" << report->fast_kernels << " on fast kernels)\n";
      std::cout << "  kernels    ";
      for (const auto& [name, count] : report->kernel_counts) std::cout << " " << name << " x" << count;
      std::cout << "\n";
      std::cout << "  profiles   ";
      for (const auto& p : info->profiles) std::cout << " " << p.name;
      std::cout << "\n";
      std::cout << "  isa         " << info->isa << (info->portable ? " (portable)" : "") << ", threads "
                << (info->threads ? std::to_string(info->threads) : std::string("one per physical core")) << "\n";
      std::cout << "  plan size   " << mib_text(report->plan_bytes) << " (weights " << mib_text(report->weight_bytes)
                << ", of which prepared for the kernels " << mib_text(report->prepared_bytes) << ")\n";
      char line[128];
      std::snprintf(line, sizeof line,
                    "  build time  %.1f ms (tuning %.1f ms, %lld configurations timed, %lld from the timing cache)\n",
                    report->build_ms, report->tune_ms, static_cast<long long>(report->tuned_configs),
                    static_cast<long long>(report->timing_cache_hits));
      std::cout << line;
      if (a->verbose) {
        auto session = Session::create_from_plan(a->out);
        if (!session.is_ok()) return report_error(session.status());
        print_plan_kernels(**session);
      }
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
