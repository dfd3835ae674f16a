// kiln check: structural checks (ir::verify), operator lookup per opset, then libonnx's checker and strict
// shape inference for the opsets libonnx knows (<= 17). Newer opsets are checked structurally, with a note.
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "kiln/onnx/check.h"
#include "onnx/custom_schemas.h"
#include "onnx/proto_convert.h"

namespace kiln::onnx {
namespace {

using Sev = ir::Problem::Severity;

// Operators that ONNX added after opset 17 (which the linked libonnx does not know), with their first opset.
struct NewOp {
  const char* name;
  int since;
};
constexpr NewOp kOpsAfter17[] = {
    {"BitwiseAnd", 18},
    {"BitwiseNot", 18},
    {"BitwiseOr", 18},
    {"BitwiseXor", 18},
    {"CenterCropPad", 18},
    {"Col2Im", 18},
    {"GroupNormalization", 18},
    {"Mish", 18},
    {"OptionalGetElement", 18},
    {"OptionalHasElement", 18},
    {"DeformConv", 19},
    {"AffineGrid", 20},
    {"Gelu", 20},
    {"ImageDecoder", 20},
    {"RegexFullMatch", 20},
    {"StringConcat", 20},
    {"StringSplit", 20},
};

bool is_onnx_domain(const std::string& d) { return d.empty() || d == "ai.onnx" || d == "ai.onnx.ml"; }

// One line from a libonnx exception: "msg (context: ...)".
std::string one_line(std::string what) {
  const std::string ctx = "==> Context: ";
  auto pos = what.find(ctx);
  std::string context;
  if (pos != std::string::npos) {
    context = what.substr(pos + ctx.size());
    what = what.substr(0, pos);
  }
  auto trim = [](std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    while (!s.empty() && s.back() == ' ') s.pop_back();
    while (!s.empty() && s.front() == ' ') s.erase(s.begin());
    return s;
  };
  what = trim(what);
  context = trim(context);
  return context.empty() ? what : what + " (" + context + ")";
}

// The subgraphs an attribute holds (a GRAPH or a GRAPHS attribute).
std::vector<const ir::Graph*> subgraphs_of(const ir::Attribute& a) {
  std::vector<const ir::Graph*> subs;
  if (a.type == ir::AttrType::kGraph && a.g) subs.push_back(a.g.get());
  for (const auto& sg : a.graphs) subs.push_back(sg.get());
  return subs;
}

void check_known_ops(const ir::Model& model, const ir::Graph& g, const std::string& scope, ir::Report& report,
                     const CustomOps* custom) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const std::string where = scope + n.describe(i);
    if (model.find_function(n.domain, n.op_type)) continue;
    auto version = model.opset(n.domain);
    if (!version) continue;  // reported by verify_model
    const CustomOps::Found found = custom ? custom->find(n.domain, n.op_type, *version) : CustomOps::Found{};
    if (found.op) {
      const auto ins = static_cast<int64_t>(n.inputs.size());
      const auto outs = static_cast<int64_t>(n.outputs.size());
      if (ins < found.op->min_inputs || ins > found.op->max_inputs || outs != found.op->num_outputs) {
        report.add(Sev::kError, where,
                   "has " + std::to_string(ins) + " inputs and " + std::to_string(outs) +
                       " outputs, but the custom op from '" + found.library->path() + "' takes " +
                       std::to_string(found.op->min_inputs) + " to " + std::to_string(found.op->max_inputs) +
                       " inputs and gives " + std::to_string(found.op->num_outputs) + " outputs");
      }
    } else if (is_onnx_domain(n.domain)) {
      const std::string dom = n.domain == "ai.onnx" ? "" : n.domain;
      const auto* schema = ::ONNX_NAMESPACE::OpSchemaRegistry::Schema(
          n.op_type, static_cast<int>(std::min<int64_t>(*version, INT32_MAX)), dom);
      bool known = schema != nullptr;
      if (!known && dom.empty()) {
        for (const auto& op : kOpsAfter17) {
          if (n.op_type == op.name && *version >= op.since) known = true;
        }
      }
      if (!known) {
        bool exists_later = ::ONNX_NAMESPACE::OpSchemaRegistry::Schema(n.op_type, INT32_MAX, dom) != nullptr;
        std::string msg = "no operator '" + n.op_type + "' in domain '" + (dom.empty() ? "ai.onnx" : dom) +
                          "' at opset " + std::to_string(*version);
        if (exists_later) msg += " (it exists only in later opsets)";
        report.add(Sev::kError, where, msg);
      } else if (schema && schema->Deprecated()) {
        report.add(Sev::kWarning, where, "'" + n.op_type + "' is deprecated at opset " + std::to_string(*version));
      }
    } else {
      report.add(Sev::kNote, where,
                 "custom domain '" + n.domain + "' (opset " + std::to_string(*version) +
                     "): kiln cannot check this operator's inputs and attributes");
    }
    for (const auto& a : n.attributes) {
      const std::vector<const ir::Graph*> subs = subgraphs_of(a);
      for (const auto* sg : subs) {
        check_known_ops(model, *sg, where + " attribute '" + a.name + "' subgraph: ", report, custom);
      }
    }
  }
}

// What ONNX 1.12's shape inference assumes without checking, and crashes on when it does not hold (found by fuzzing):
// a convolution's X with spatial dims (rank >= 3) and its W of X's rank; STFT's signal of rank 3 (it reads dims 0 and
// 1 of any rank); LayerNormalization's axis within X's rank (it writes dim `axis` of Mean's shape). Checked from the
// declared ranks (graph inputs, initializers, value_info) before libonnx sees the model, for the graph and every
// subgraph.
void check_libonnx_preconditions(const ir::Graph& g, const std::string& where, std::map<std::string, size_t> ranks,
                                 ir::Report& report) {
  auto note = [&ranks](const ir::ValueInfo& v) {
    if (v.type.kind == ir::Type::Kind::kTensor && v.type.shape) ranks[v.name] = v.type.shape->rank();
  };
  for (const auto& v : g.inputs) note(v);
  for (const auto& v : g.value_info) note(v);
  for (const auto& v : g.outputs) note(v);
  for (const auto& t : g.initializers) ranks[t.name] = t.tensor.rank();
  auto rank_of = [&ranks](const ir::Node& n, size_t i) -> std::optional<size_t> {
    if (i >= n.inputs.size() || n.inputs[i].empty()) return std::nullopt;
    auto it = ranks.find(n.inputs[i]);
    return it == ranks.end() ? std::nullopt : std::optional<size_t>(it->second);
  };
  static const std::map<std::string, size_t> kWeightInput = {
      {"Conv", 1}, {"ConvTranspose", 1}, {"ConvInteger", 1}, {"QLinearConv", 3}, {"DeformConv", 1}};
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& n = g.nodes[k];
    const std::string label = where + n.describe(k);
    auto w_input = kWeightInput.find(n.op_type);
    if (n.domain.empty() && w_input != kWeightInput.end()) {
      const auto x = rank_of(n, 0), w = rank_of(n, w_input->second);
      if (x && *x < 3) {
        report.add(
            Sev::kError, label,
            "input 0 (X) has rank " + std::to_string(*x) + "; a convolution needs (N, C, spatial...): rank 3 or more");
      } else if (x && w && *w != *x) {
        report.add(
            Sev::kError, label,
            "weight W has rank " + std::to_string(*w) + " but X has rank " + std::to_string(*x) + "; they must match");
      }
    }
    if (n.domain.empty() && n.op_type == "STFT") {
      const auto signal = rank_of(n, 0);
      if (signal && *signal != 3) {
        report.add(Sev::kError, label,
                   "input 0 (signal) has rank " + std::to_string(*signal) +
                       "; STFT needs [batch_size, signal_length, 1 or 2]: rank 3");
      }
    }
    if (n.domain.empty() && n.op_type == "LayerNormalization") {
      const auto x = rank_of(n, 0);
      const ir::Attribute* axis = n.attr("axis");
      const int64_t a = axis && axis->type == ir::AttrType::kInt ? axis->i : -1;
      if (x && (a < -static_cast<int64_t>(*x) || a >= static_cast<int64_t>(*x))) {
        report.add(Sev::kError, label,
                   "attribute 'axis' is " + std::to_string(a) + " but input 0 (X) has rank " + std::to_string(*x) +
                       ": expected an axis in [-" + std::to_string(*x) + ", " + std::to_string(*x) + ")");
      }
    }
    // libonnx's convolution and pooling inference divides by every stride (fuzzing: strides [2, 0] was an FPE).
    for (const auto& a : n.attributes) {
      if (n.domain.empty() && (a.name == "strides" || a.name == "dilations") && a.type == ir::AttrType::kInts) {
        for (size_t i = 0; i < a.ints.size(); ++i) {
          if (a.ints[i] <= 0) {
            report.add(Sev::kError, label,
                       "attribute '" + a.name + "' has " + std::to_string(a.ints[i]) + " at position " +
                           std::to_string(i) + "; every value must be positive");
            break;
          }
        }
      }
    }
    for (const auto& a : n.attributes) {
      const std::vector<const ir::Graph*> subs = subgraphs_of(a);
      for (const auto* sg : subs) {
        check_libonnx_preconditions(*sg, label + " attribute '" + a.name + "' subgraph: ", ranks, report);
      }
    }
  }
}

void check_arity(const ir::Model& model, const ir::Graph& g, const std::string& scope, ir::Report& report) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    const std::string where = scope + n.describe(i);
    auto version = model.opset(n.domain);
    if (!version && is_onnx_domain(n.domain) && !model.find_function(n.domain, n.op_type)) {
      // Without the opset there is no schema to hold the node to (fuzzing: a Sub without outputs crashed a pass).
      report.add(Sev::kError, where,
                 "the model imports no opset for domain '" + (n.domain.empty() ? std::string("ai.onnx") : n.domain) +
                     "' (opset_import)");
    }
    if (version && is_onnx_domain(n.domain) && !model.find_function(n.domain, n.op_type)) {
      const auto* schema = ::ONNX_NAMESPACE::OpSchemaRegistry::Schema(
          n.op_type, static_cast<int>(std::min<int64_t>(*version, INT32_MAX)), n.domain == "ai.onnx" ? "" : n.domain);
      if (schema) {
        // Trailing empty names are omitted optional inputs.
        size_t inputs = n.inputs.size();
        while (inputs > 0 && n.inputs[inputs - 1].empty()) --inputs;
        const auto count = [](size_t k, int lo, int hi) {
          return std::to_string(k) + " (expected " + std::to_string(lo) +
                 (hi == lo        ? ""
                  : hi >= 1 << 20 ? " or more"
                                  : " to " + std::to_string(hi)) +
                 ")";
        };
        if (static_cast<int>(inputs) < schema->min_input() || static_cast<int>(inputs) > schema->max_input()) {
          report.add(Sev::kError, where, "has " + count(inputs, schema->min_input(), schema->max_input()) + " inputs");
        }
        if (static_cast<int>(n.outputs.size()) < schema->min_output() ||
            static_cast<int>(n.outputs.size()) > schema->max_output()) {
          report.add(Sev::kError, where,
                     "has " + count(n.outputs.size(), schema->min_output(), schema->max_output()) + " outputs");
        }
      }
    }
    for (const auto& a : n.attributes) {
      const std::vector<const ir::Graph*> subs = subgraphs_of(a);
      for (const auto* sg : subs) check_arity(model, *sg, where + " attribute '" + a.name + "' subgraph: ", report);
    }
  }
}

}  // namespace

Status check_node_arity(const ir::Model& model) {
  ir::Report report;
  check_arity(model, model.graph, "", report);
  for (const auto& p : report.problems) {
    if (p.severity == Sev::kError) return invalid_model(p.where + ": " + p.message);
  }
  return Status::ok();
}

int max_known_opset() {
  return ::ONNX_NAMESPACE::OpSchemaRegistry::DomainToVersionRange::Instance().Map().at(::onnx::ONNX_DOMAIN).second;
}

ir::Report check_model(const ir::Model& model, const CustomOps* custom) {
  ir::Report report;
  ir::verify_model(model, report);
  check_known_ops(model, model.graph, "", report, custom);
  check_libonnx_preconditions(model.graph, "", {}, report);

  const int max_opset = max_known_opset();
  const auto opset = model.opset("");
  if (opset && *opset > max_opset) {
    report.add(Sev::kNote, "model",
               "opset " + std::to_string(*opset) +
                   " is newer than the ONNX checker kiln links (opsets <= " + std::to_string(max_opset) +
                   "): the model was checked structurally, without ONNX's per-operator and shape checks");
    return report;
  }
  if (!report.valid()) return report;  // libonnx would stop at the first of the errors already listed

  ::ONNX_NAMESPACE::ModelProto proto;
  auto st = model_to_proto(model, &proto);
  if (!st.is_ok()) {
    report.add(Sev::kError, "model", st.message());
    return report;
  }
  try {
    ::ONNX_NAMESPACE::checker::check_model(proto);
  } catch (const std::exception& e) {
    report.add(Sev::kError, "onnx checker", one_line(e.what()));
    return report;
  }
  try {
    ::ONNX_NAMESPACE::ShapeInferenceOptions options(/*check_type=*/true, /*strict_mode=*/1,
                                                    /*data_prop=*/false);
    // With custom ops, a registry that also knows them: their shape functions type their outputs.
    static const CustomOps kNoCustomOps;
    CustomSchemaRegistry custom_registry(custom ? *custom : kNoCustomOps);
    const ::ONNX_NAMESPACE::ISchemaRegistry* registry =
        custom && !custom->empty() ? static_cast<const ::ONNX_NAMESPACE::ISchemaRegistry*>(&custom_registry)
                                   : ::ONNX_NAMESPACE::OpSchemaRegistry::Instance();
    ::ONNX_NAMESPACE::shape_inference::InferShapes(proto, registry, options);
  } catch (const std::exception& e) {
    report.add(Sev::kError, "shape inference", one_line(e.what()));
  }
  return report;
}

Status infer_shapes(ir::Model& model, const CustomOps* custom) {
  auto opset = model.opset("");
  if (opset && *opset > max_known_opset()) {
    return unimplemented("shape inference for opset " + std::to_string(*opset) + " needs ONNX > 1.12");
  }
  ir::Report pre;
  check_libonnx_preconditions(model.graph, "", {}, pre);
  if (!pre.valid()) {
    return invalid_model("shape inference skipped: " + pre.problems.front().where + ": " +
                         pre.problems.front().message);
  }
  ::ONNX_NAMESPACE::ModelProto proto;
  KILN_RETURN_IF_ERROR(model_to_proto(model, &proto));
  try {
    static const CustomOps kNoCustomOps;
    CustomSchemaRegistry custom_registry(custom ? *custom : kNoCustomOps);
    if (custom && !custom->empty()) {
      ::ONNX_NAMESPACE::shape_inference::InferShapes(proto, &custom_registry);
    } else {
      ::ONNX_NAMESPACE::shape_inference::InferShapes(proto);
    }
  } catch (const std::exception& e) {
    return invalid_model("shape inference failed: " + one_line(e.what()));
  }
  const auto& g = proto.graph();
  model.graph.value_info.clear();
  for (const auto& v : g.value_info()) {
    ir::ValueInfo vi;
    vi.name = v.name();
    vi.doc_string = v.doc_string();
    if (v.has_type()) vi.type = type_from_proto(v.type());
    model.graph.value_info.push_back(std::move(vi));
  }
  for (int i = 0; i < g.output_size() && i < static_cast<int>(model.graph.outputs.size()); ++i) {
    auto& out = model.graph.outputs[static_cast<size_t>(i)];
    if (out.type.kind == ir::Type::Kind::kNone && g.output(i).has_type())
      out.type = type_from_proto(g.output(i).type());
  }
  return Status::ok();
}

}  // namespace kiln::onnx
