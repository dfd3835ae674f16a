// Level "all": the channel-blocked (NCHWc) layout. 2-D float32 convolutions (plain, grouped-as-depthwise or
// fused) become ai.kiln NchwcConv, and max/average/global-average pooling of their results NchwcMaxPool,
// NchwcAveragePool and NchwcGlobalAveragePool, so activations stay in the layout oneDNN computes in from one
// convolution to the next. ReorderInput / ReorderOutput convert at the boundaries, once per value, where a
// plain consumer (or a graph output) needs the plain tensor. The block is the one oneDNN prefers on this CPU
// (8 with AVX2, 16 with AVX-512), so the rewritten graph is for this machine.
#include <unordered_map>
#include <unordered_set>

#include "kernels/capabilities.h"
#include "kiln/ir/builder.h"
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

using ir::helper::make_attribute;

// Channels C and M of a convolution that can run blocked, or {0, 0}.
std::pair<int64_t, int64_t> blockable_conv(const ir::Graph& g, const ir::Node& n) {
  if (!(is_onnx(n, "Conv") || is_kiln(n, "FusedConv")) || n.inputs.size() < 2) return {0, 0};
  const Tensor* w = constant_tensor(g, n.inputs[1]);
  if (!w || w->dtype() != DType::kFloat32 || w->rank() != 4) return {0, 0};
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const Tensor* b = constant_tensor(g, n.inputs[2]);
    if (!b || b->dtype() != DType::kFloat32) return {0, 0};
  }
  const int64_t group = attr_int(n, "group", 1), M = w->dims()[0], C = w->dims()[1] * group;
  if (group != 1 && !(group == C && group == M)) return {0, 0};  // plain or depthwise only
  return {C, M};
}

bool blockable_pool(const ir::Node& n, const GraphView& view) {
  if (!is_onnx(n, "MaxPool") && !is_onnx(n, "AveragePool")) return false;
  if (attr_ints(n, "kernel_shape").size() != 2) return false;
  const ir::Attribute* pad = n.attr("auto_pad");
  if (pad && pad->s != "NOTSET" && !pad->s.empty()) return false;
  return n.outputs.size() < 2 || n.outputs[1].empty() || view.use_count(n.outputs[1]) == 0;
}

}  // namespace

int layout_nchwc(ir::Model& m) {
  ir::Graph& g = m.graph;
  const int64_t B = cpu::preferred_nchwc_block();
  GraphView view(g);
  struct Blocked {
    std::string name;
    int64_t channels;
  };
  std::unordered_map<std::string, Blocked> blocked;  // value -> its blocked form
  std::unordered_set<std::string> plain_missing;     // values that so far exist only blocked
  std::vector<ir::Node> out;
  int rewrites = 0;

  auto need_plain = [&](const std::string& name) {
    if (!plain_missing.count(name)) return;
    const Blocked& b = blocked.at(name);
    ir::Node r;
    r.op_type = "ReorderOutput";
    r.domain = kKilnDomain;
    r.inputs = {b.name};
    r.outputs = {name};
    r.attributes = {make_attribute("channels", b.channels), make_attribute("block", B)};
    out.push_back(std::move(r));
    plain_missing.erase(name);
  };
  auto need_blocked = [&](const std::string& name, int64_t channels) -> std::string {
    auto it = blocked.find(name);
    if (it != blocked.end()) return it->second.channels == channels ? it->second.name : "";
    ir::Node r;
    r.op_type = "ReorderInput";
    r.domain = kKilnDomain;
    r.inputs = {name};
    r.outputs = {fresh_name(g, name + "_nchwc")};
    r.attributes = {make_attribute("block", B)};
    blocked[name] = {r.outputs[0], channels};
    out.push_back(std::move(r));
    return blocked[name].name;
  };
  auto produce_blocked = [&](const std::string& name, int64_t channels) {
    const std::string b = fresh_name(g, name + "_nchwc");
    blocked[name] = {b, channels};
    plain_missing.insert(name);
    return b;
  };

  for (auto& n : g.nodes) {
    auto [C, M] = blockable_conv(g, n);
    if (C > 0) {
      std::string x = n.inputs[0];
      auto it = blocked.find(x);
      if (it != blocked.end() && it->second.channels == C) {
        x = it->second.name;
      } else if (C >= B || attr_int(n, "group", 1) != 1) {
        x = need_blocked(x, C);
      }
      // A residual input must already be blocked with the same channels (another NCHWc node's result): its
      // shape is then a convolution's, which the blocked sum takes (broadcast included).
      std::string z;
      const bool has_z = n.inputs.size() > 3 && !n.inputs[3].empty();
      if (has_z) {
        auto zit = blocked.find(n.inputs[3]);
        if (zit != blocked.end() && zit->second.channels == M) z = zit->second.name;
      }
      if (!x.empty() && (!has_z || !z.empty())) {
        ir::Node c = n;
        c.op_type = "NchwcConv";
        c.domain = kKilnDomain;
        c.inputs[0] = x;
        if (!z.empty()) c.inputs[3] = z;
        c.outputs = {produce_blocked(n.outputs[0], M)};
        set_attr(c, make_attribute("block", B));
        out.push_back(std::move(c));
        ++rewrites;
        const std::string& y = n.outputs[0];
        if (view.is_graph_output(y) || view.read_by_subgraph(y)) need_plain(y);
        continue;
      }
    }
    const bool from_blocked = !n.inputs.empty() && blocked.count(n.inputs[0]);
    if (from_blocked && blockable_pool(n, view)) {
      const Blocked b = blocked.at(n.inputs[0]);
      ir::Node p = n;
      p.op_type = is_onnx(n, "MaxPool") ? "NchwcMaxPool" : "NchwcAveragePool";
      p.domain = kKilnDomain;
      p.inputs = {b.name};
      p.outputs = {produce_blocked(n.outputs[0], b.channels)};
      set_attr(p, make_attribute("channels", b.channels));
      set_attr(p, make_attribute("block", B));
      out.push_back(std::move(p));
      ++rewrites;
      if (view.is_graph_output(n.outputs[0]) || view.read_by_subgraph(n.outputs[0])) need_plain(n.outputs[0]);
      continue;
    }
    if (from_blocked && is_onnx(n, "GlobalAveragePool") && n.inputs.size() == 1) {
      const Blocked b = blocked.at(n.inputs[0]);
      ir::Node p = n;
      p.op_type = "NchwcGlobalAveragePool";
      p.domain = kKilnDomain;
      p.inputs = {b.name};
      p.attributes = {make_attribute("channels", b.channels), make_attribute("block", B)};
      out.push_back(std::move(p));
      ++rewrites;
      continue;
    }
    for_each_read(n, need_plain);
    out.push_back(n);
  }
  for (const auto& o : g.outputs) need_plain(o.name);
  if (rewrites == 0) return 0;
  g.nodes = std::move(out);
  import_kiln_domain(m);
  return rewrites;
}

}  // namespace kiln::opt
