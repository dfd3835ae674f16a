#include "kiln/runtime/kernels.h"

#include "kernels/kernel.h"

namespace kiln {
namespace {

void visit(const ir::Model& model, const ir::Graph& g, const std::string& scope, ir::Report& report,
           const CustomOps* custom) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const std::string where = scope + n.describe(i);
    const auto opset = model.opset(n.domain);
    if (opset && !model.find_function(n.domain, n.op_type) && !has_cpu_kernel(n.domain, n.op_type, *opset) &&
        !(custom && custom->find(n.domain, n.op_type, *opset).op)) {
      report.add(ir::Problem::Severity::kWarning, where,
                 "kiln's CPU runtime has no kernel for " + (n.domain.empty() ? "" : n.domain + "::") + n.op_type +
                     " at opset " + std::to_string(*opset) + "; kiln run cannot run this model yet");
    }
    std::vector<const ir::Graph*> subs;
    ir::Graph::collect_subgraphs(n, subs);
    for (const auto* s : subs) visit(model, *s, where + " subgraph: ", report, custom);
  }
}

}  // namespace

bool has_cpu_kernel(const std::string& domain, const std::string& op, int64_t opset) {
  return cpu::find_kernel(domain, op, opset) != nullptr;
}

void report_unrunnable_nodes(const ir::Model& model, ir::Report& report, const CustomOps* custom) {
  visit(model, model.graph, "", report, custom);
}

}  // namespace kiln
