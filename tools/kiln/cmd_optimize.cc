// kiln optimize MODEL -O OUT [--opt-level L] [--pass NAME]... [--precision fp32|bf16] [--print-kernels
// [--shape NAME=1x3x224x224]... [--reference] [--no-tune] [--disable-kernel NAME]...]: writes the graph kiln runs,
// after the optimizer, so it can be inspected (kiln show, Netron). Fused operators are in the ai.kiln domain.
// --print-kernels runs the written graph once on zero-filled inputs and lists every node with the kernel that ran it
// (and, where candidates were timed, their times).
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "kiln/onnx/model_io.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/session.h"

namespace kiln::cli {
namespace {

// Runs the (already optimized) model once on zero-filled inputs and prints "NODE  OP  KERNEL[  DETAIL]" per node.
int print_kernels(ir::Model model, const std::vector<std::string>& shapes, bool reference, bool tune,
                  const std::string& precision, const std::vector<std::string>& disabled) {
  SessionOptions options;
  options.precision = precision;
  options.disabled_kernels = disabled;
  options.optimization_level = 0;  // the graph as written
  options.reference_kernels = reference;
  options.tune = tune;
  auto session = Session::create(std::move(model), options);
  if (!session.is_ok()) return report_error(session.status());
  const Session& s = **session;
  std::vector<std::vector<int64_t>> dims;
  if (int code = input_dims(s, shapes, dims); code != kExitOk) return code;
  NamedTensors feeds;
  for (size_t i = 0; i < s.inputs().size(); ++i) {
    const IoInfo& in = s.inputs()[i];
    if (in.type.kind != ir::Type::Kind::kTensor) {
      std::cerr << "kiln: input '" << in.name << "' is " << in.type.to_string()
                << "; --print-kernels feeds tensors only\n";
      return kExitUsage;
    }
    const DType dtype = in.type.elem_type == DType::kUndefined ? DType::kFloat32 : in.type.elem_type;
    auto t = Tensor::allocate(dtype, dims[i]);
    if (!t.is_ok()) return report_error(t.status());
    feeds.emplace_back(in.name, std::move(t).value());
  }
  auto out = s.run(feeds);
  if (!out.is_ok()) return report_error(out.status());
  for (const KernelChoice& c : s.kernel_choices()) {
    std::cout << (c.node.empty() ? "-" : c.node) << "  " << c.op << "  " << (c.kernel.empty() ? "(not run)" : c.kernel)
              << (c.detail.empty() ? "" : "  " + c.detail);
    // Where the kernel was chosen by timing: every candidate's best time.
    for (size_t i = 0; i < c.timings.size(); ++i) {
      const auto& [kernel, ms] = c.timings[i];
      char buf[32];
      std::snprintf(buf, sizeof buf, ms < 0 ? "failed" : "%.3f ms", ms);
      std::cout << (i == 0 ? "  (timed: " : ", ") << kernel << " " << buf << (i + 1 == c.timings.size() ? ")" : "");
    }
    std::cout << "\n";
  }
  if (s.tuned_configs() > 0) {
    std::printf("  tuning: %.1f ms, %lld configurations timed\n", s.tune_ms(),
                static_cast<long long>(s.tuned_configs()));
  }
  return kExitOk;
}

}  // namespace

void add_optimize(CLI::App& root, std::function<int()>& run) {
  auto* cmd = root.add_subcommand("optimize", "Write the optimized graph kiln runs (fused ops in ai.kiln)");
  struct Args {
    std::string model, out, opt_level = "all";
    std::vector<std::string> passes, shapes;
    bool print_kernels = false, reference = false, no_tune = false;
    std::vector<std::string> disabled_kernels;
    std::string precision = "fp32";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "The .onnx file")->required();
  cmd->add_option("-O,--output", a->out, "Where to write the optimized model")->required();
  add_opt_level_option(cmd, a->opt_level);
  cmd->add_option("--pass", a->passes, "Run only these passes, in this order (repeat or a,b,c)");
  cmd->add_flag("--print-kernels", a->print_kernels,
                "Run the optimized graph once on zero-filled inputs and list each node with its kernel");
  cmd->add_option("--shape", a->shapes,
                  "NAME=1x3x224x224: with --print-kernels, the shape of an input with symbolic dims; repeat");
  cmd->add_flag("--reference,--reference-kernels", a->reference,
                "With --print-kernels: choose the reference kernels (as kiln run --reference)");
  cmd->add_flag("--no-tune", a->no_tune,
                "With --print-kernels: take each node's first-guess kernel instead of timing the candidates");
  add_precision_option(cmd, a->precision);
  add_disable_kernel_option(cmd, a->disabled_kernels);
  cmd->callback([&run, a] {
    run = [a] {
      ir::Model model;
      int code = kExitOk;
      if (!load_or_report(a->model, model, code)) return code;
      const size_t before = model.graph.nodes.size();
      std::vector<opt::PassStat> stats;
      const opt::Options options = opt::options_for_precision(a->precision);
      if (a->passes.empty()) {
        auto report = opt::optimize(model, *opt::parse_level(a->opt_level), options);
        if (!report.is_ok()) return report_error(report.status());
        stats = report->passes;
      } else {
        for (const auto& name : split_list(a->passes)) {
          auto n = opt::run_pass(model, name, options);
          if (!n.is_ok()) return report_error(n.status());
          stats.push_back({name, *n});
        }
      }
      for (const auto& s : stats) std::cout << "  " << s.pass << ": " << s.rewrites << "\n";
      Status st = onnx::save_model(model, a->out);
      if (!st.is_ok()) return report_error(st);
      std::cout << "nodes " << before << " -> " << model.graph.nodes.size() << "; wrote " << a->out << "\n";
      if (a->print_kernels)
        return print_kernels(std::move(model), a->shapes, a->reference, !a->no_tune, a->precision, a->disabled_kernels);
      return kExitOk;
    };
  });
}

}  // namespace kiln::cli
