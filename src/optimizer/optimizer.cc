// The pass manager: the passes of each level, in the order they run.
#include "kiln/optimizer/optimizer.h"

#include "kernels/isa.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

struct PassDef {
  const char* name;
  int level;
  int (*run)(ir::Model&);
  int (*run_with)(ir::Model&, const Options&) = nullptr;  // a pass that reads the options instead
  int operator()(ir::Model& m, const Options& o) const { return run_with ? run_with(m, o) : run(m); }
};

// Order matters: folding first (it exposes constants to the fusions; quantize/dequantize nodes are folded after
// fuse_qdq has taken the int8 weights it fuses), Conv+Add before the activation fusion
// (Relu(Conv + Z) is one FusedConv), GELU before the activation fusion (MatMul + bias + GELU is one
// FusedMatMul), the bfloat16 channels-last layout before the NCHWc one (it takes the convolutions it rewrites),
// dead nodes last.
const std::vector<PassDef>& passes() {
  static const std::vector<PassDef> kPasses = {
      {"fold_constants", kBasic, fold_constants},
      {"eliminate_identity", kBasic, eliminate_identity},
      {"fuse_qdq", kBasic, fuse_qdq},
      {"fold_quantized_constants", kBasic, fold_quantized_constants},
      {"fold_conv_bn", kBasic, fold_conv_bn},
      {"fold_transpose_reshape", kBasic, fold_transpose_reshape},
      {"fuse_matmul_add", kBasic, fuse_matmul_add},
      {"fuse_gelu", kExtended, fuse_gelu},
      {"fuse_layernorm", kExtended, fuse_layernorm},
      {"fuse_attention", kExtended, fuse_attention},
      {"fuse_conv_add", kExtended, fuse_conv_add},
      {"fuse_activation", kExtended, fuse_activation},
      {"layout_nhwc_bf16", kAll, nullptr, layout_nhwc_bf16},
      {"layout_nchwc", kAll, layout_nchwc},
      {"layout_nhwc_int8", kAll, layout_nhwc_int8},
      {"eliminate_dead_nodes", kBasic, eliminate_dead_nodes},
  };
  return kPasses;
}

}  // namespace

StatusOr<int> parse_level(const std::string& text) {
  if (text == "disabled" || text == "0") return kDisabled;
  if (text == "basic" || text == "1") return kBasic;
  if (text == "extended" || text == "2") return kExtended;
  if (text == "all" || text == "99" || text == "3") return kAll;
  return invalid_argument("unknown optimization level '" + text +
                          "' (expected disabled, basic, extended or all, or 0, 1, 2, 99)");
}

const char* level_name(int level) {
  if (level <= kDisabled) return "disabled";
  if (level == kBasic) return "basic";
  if (level == kExtended) return "extended";
  return "all";
}

Options options_for_precision(const std::string& precision) {
  Options o;
  const std::optional<cpu::Precision> p = cpu::parse_precision(precision);
  o.bf16 = p && cpu::effective_precision(*p, cpu::default_isa()) == cpu::Precision::kBf16;
  return o;
}

StatusOr<Report> optimize(ir::Model& model, int level, const Options& options) {
  if (level < 0) {
    return invalid_argument("optimization level " + std::to_string(level) + " is negative (expected 0, 1, 2 or 99)");
  }
  Report report;
  report.nodes_before = model.graph.nodes.size();
  if (level > kDisabled) {
    for (const auto& p : passes()) {
      if (p.level > level) continue;
      report.passes.push_back({p.name, p(model, options)});
    }
  }
  report.nodes_after = model.graph.nodes.size();
  return report;
}

StatusOr<int> run_pass(ir::Model& model, const std::string& name, const Options& options) {
  std::string names;
  for (const auto& p : passes()) {
    if (name == p.name) return p(model, options);
    names += (names.empty() ? "" : ", ") + std::string(p.name);
  }
  return invalid_argument("unknown optimizer pass '" + name + "' (passes: " + names + ")");
}

std::vector<std::string> pass_names() {
  std::vector<std::string> out;
  for (const auto& p : passes()) out.emplace_back(p.name);
  return out;
}

}  // namespace kiln::opt
