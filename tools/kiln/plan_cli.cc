// What kiln show and kiln check print for an engine plan (.kplan), and the per-node kernel list of kiln build
// --verbose.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "kiln/runtime/plan.h"

namespace kiln::cli {
namespace {

std::string join(const std::vector<std::string>& items, const char* sep = " ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string threads_text(int threads) {
  return threads ? std::to_string(threads) : std::string("one per physical core");
}

}  // namespace

void print_plan_kernels(const Session& s) {
  const PlanInfo* info = s.plan_info();
  std::cout << "\nKernels (node  op  kernel per profile";
  if (info) {
    for (const auto& p : info->profiles) std::cout << " [" << p.name << "]";
  }
  std::cout << ")\n";
  for (const KernelChoice& c : s.kernel_choices()) {
    std::cout << "  " << (c.node.empty() ? "-" : c.node) << "  " << c.op;
    if (c.planned.empty()) std::cout << "  (chosen at run time)";
    for (size_t p = 0; p < c.planned.size(); ++p) {
      std::cout << "  " << (c.planned[p].empty() ? "(chosen at run time)" : c.planned[p])
                << (c.planned_details[p].empty() ? "" : " " + c.planned_details[p]);
    }
    std::cout << "\n";
  }
}

int show_plan(const std::string& path, const std::string& format) {
  auto session = Session::create_from_plan(path);
  if (!session.is_ok()) return report_error(session.status());
  const Session& s = **session;
  const PlanInfo& info = *s.plan_info();
  if (format == "json") {
    nlohmann::json j;
    j["plan"] = {{"format_version", info.format_version},
                 {"kiln_version", info.kiln_version},
                 {"source", info.source_name},
                 {"source_hash", hex(info.source_hash)},
                 {"isa", info.isa},
                 {"cpu_features", info.cpu_features},
                 {"cpu", info.cpu_name},
                 {"threads", info.threads},
                 {"precision", info.precision},
                 {"portable", info.portable},
                 {"optimization_level", info.optimization_level},
                 {"tuned", info.tuned},
                 {"build_ms", info.build_ms},
                 {"tune_ms", info.tune_ms},
                 {"created", info.created},
                 {"file_bytes", info.file_bytes},
                 {"graph_bytes", info.graph_bytes},
                 {"weight_bytes", info.weight_bytes},
                 {"weight_tensors", info.weight_tensors}};
    for (const auto& p : info.profiles) {
      nlohmann::json jp = {{"name", p.name}, {"inputs", nlohmann::json::array()}};
      for (const auto& i : p.inputs)
        jp["inputs"].push_back({{"name", i.name}, {"min", i.min}, {"opt", i.opt}, {"max", i.max}});
      j["profiles"].push_back(jp);
    }
    for (const auto& i : s.inputs()) j["inputs"].push_back({{"name", i.name}, {"type", i.type.to_string()}});
    for (const auto& o : s.outputs()) j["outputs"].push_back({{"name", o.name}, {"type", o.type.to_string()}});
    j["nodes"] = nlohmann::json::array();
    for (const KernelChoice& c : s.kernel_choices()) {
      j["nodes"].push_back({{"name", c.node}, {"op", c.op}, {"kernels", c.planned}, {"details", c.planned_details}});
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "Plan        " << path << " (format " << info.format_version << ", " << mib_text(info.file_bytes)
            << ": weights " << mib_text(info.weight_bytes) << " in " << info.weight_tensors << " tensors)\n";
  char built[256];
  std::snprintf(built, sizeof built, "%.1f ms (tuning %.1f ms)", info.build_ms, info.tune_ms);
  std::cout << "Built       " << info.created << " by kiln " << info.kiln_version << " from " << info.source_name
            << " (hash " << hex(info.source_hash) << ") in " << built << "\n";
  std::cout << "Target      " << info.isa << (info.portable ? " (portable)" : "")
            << ", needs: " << (info.cpu_features.empty() ? "nothing" : join(info.cpu_features)) << "; built on "
            << info.cpu_name << "\n";
  std::cout << "Options     precision " << info.precision << ", optimization level " << info.optimization_level
            << ", threads " << threads_text(info.threads) << ", kernels " << (info.tuned ? "timed" : "first guesses")
            << "\n";
  std::cout << "\nProfiles\n";
  for (const auto& p : info.profiles) {
    std::cout << "  " << p.name << "\n";
    for (const auto& i : p.inputs) {
      std::cout << "    " << i.name << "  min " << dims_to_string(i.min) << "  opt " << dims_to_string(i.opt)
                << "  max " << dims_to_string(i.max) << "\n";
    }
  }
  std::cout << "\nInputs\n";
  for (const auto& i : s.inputs()) std::cout << "  " << i.name << "  " << i.type.to_string() << "\n";
  std::cout << "\nOutputs\n";
  for (const auto& o : s.outputs()) std::cout << "  " << o.name << "  " << o.type.to_string() << "\n";
  print_plan_kernels(s);
  return kExitOk;
}

int check_plan(const std::string& path, bool quiet) {
  // The structure (header, graph section, tensors' bounds), that this machine can run it, then every weight.
  auto session = Session::create_from_plan(path);
  if (!session.is_ok()) {
    std::cout << session.status().message() << "\n" << path << ": invalid plan\n";
    return exit_code_for(session.status()) == kExitUsage ? kExitUsage : kExitInvalid;
  }
  Status weights = verify_plan_weights(path);
  if (!weights.is_ok()) {
    std::cout << weights.message() << "\n" << path << ": invalid plan\n";
    return kExitInvalid;
  }
  if (!quiet) {
    const PlanInfo& info = *(*session)->plan_info();
    std::cout << path << ": valid plan (format " << info.format_version << ", kiln " << info.kiln_version << ", "
              << (*session)->kernel_choices().size() << " nodes, " << info.weight_tensors << " weights of "
              << mib_text(info.weight_bytes) << " verified, for " << info.isa << ")\n";
  }
  return kExitOk;
}

}  // namespace kiln::cli
