// Level "all": int8 activations channels-last. oneDNN's int8 convolutions (VNNI, AMX) compute on NHWC tensors, so a
// QLinearConv on plain NCHW tensors pays a reorder of its input and of its output on every call: as much time as the
// convolutions themselves on ResNet-50. This pass turns each 2-D QLinearConv into ai.kiln NhwcQLinearConv (X and Y
// channels-last, W unchanged) and each ai.kiln QLinearAdd whose two inputs are channels-last into one on the
// channels-last tensors (an elementwise sum does not care, broadcasting included, when both operands are permuted
// alike), and a 2-D MaxPool of a channels-last (8-bit) tensor into ai.kiln NhwcMaxPool, so that a chain of them
// passes NHWC tensors along. A Transpose converts at the boundaries, once per
// value: perm [0, 2, 3, 1] into a convolution from a plain producer, [0, 3, 1, 2] where a plain consumer, a
// subgraph or a graph output needs the plain tensor. It runs only where the int8 kernels compute exact products
// for any weights (cpu::has_exact_int8_products): elsewhere they run the reference kernels, which gain nothing.
#include <unordered_map>
#include <unordered_set>

#include "kernels/capabilities.h"
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

ir::Attribute ints_attr(const std::string& name, std::vector<int64_t> v) {
  ir::Attribute a;
  a.name = name;
  a.type = ir::AttrType::kInts;
  a.ints = std::move(v);
  return a;
}

// A QLinearConv of rank-4 tensors with constant int8 weights (the ones the int8 kernels take).
bool nhwc_conv(const ir::Graph& g, const ir::Node& n) {
  if (!is_onnx(n, "QLinearConv") || n.inputs.size() < 8 || n.outputs.size() != 1) return false;
  const Tensor* w = constant_tensor(g, n.inputs[3]);
  return w && w->rank() == 4 && w->dtype() == DType::kInt8;
}

bool no_auto_pad(const ir::Node& n) {
  const ir::Attribute* pad = n.attr("auto_pad");
  return !pad || pad->s.empty() || pad->s == "NOTSET";
}

}  // namespace

int layout_nhwc_int8(ir::Model& m) {
  if (!cpu::has_exact_int8_products()) return 0;
  ir::Graph& g = m.graph;
  GraphView view(g);
  std::unordered_map<std::string, std::string> nhwc;  // value -> its channels-last form
  std::unordered_set<std::string> plain_missing;      // values that so far exist only channels-last
  std::vector<ir::Node> out;
  int rewrites = 0;

  auto transpose = [&](const std::string& from, const std::string& to, std::vector<int64_t> perm) {
    ir::Node t;
    t.op_type = "Transpose";
    t.name = fresh_name(g, to + "_transpose");
    t.inputs = {from};
    t.outputs = {to};
    t.attributes = {ints_attr("perm", std::move(perm))};
    out.push_back(std::move(t));
  };
  auto need_plain = [&](const std::string& name) {
    if (!plain_missing.count(name)) return;
    transpose(nhwc.at(name), name, {0, 3, 1, 2});
    plain_missing.erase(name);
  };
  auto need_nhwc = [&](const std::string& name) {
    auto it = nhwc.find(name);
    if (it != nhwc.end()) return it->second;
    const std::string t = fresh_name(g, name + "_nhwc");
    transpose(name, t, {0, 2, 3, 1});
    nhwc[name] = t;
    return t;
  };
  auto produce_nhwc = [&](const ir::Node& n) {
    const std::string& y = n.outputs[0];
    const std::string t = fresh_name(g, y + "_nhwc");
    nhwc[y] = t;
    plain_missing.insert(y);
    return t;
  };
  auto rewritten = [&](ir::Node c, const std::string& op) {
    const std::string y = c.outputs[0];
    c.op_type = op;
    c.domain = kKilnDomain;
    c.outputs = {produce_nhwc(c)};
    out.push_back(std::move(c));
    ++rewrites;
    if (view.is_graph_output(y) || view.read_by_subgraph(y)) need_plain(y);
  };

  for (auto& n : g.nodes) {
    if (n.domain.empty() && nhwc_conv(g, n)) {
      ir::Node c = n;
      c.inputs[0] = need_nhwc(n.inputs[0]);
      rewritten(std::move(c), "NhwcQLinearConv");
      continue;
    }
    // A 2-D MaxPool of a channels-last value (an 8-bit one: fuse_qdq made it; only 8-bit values get that form).
    if (is_onnx(n, "MaxPool") && n.inputs.size() == 1 && nhwc.count(n.inputs[0]) &&
        attr_ints(n, "kernel_shape").size() == 2 && (n.outputs.size() == 1 || n.outputs[1].empty()) && no_auto_pad(n)) {
      ir::Node p = n;
      p.inputs[0] = nhwc.at(n.inputs[0]);
      p.outputs.resize(1);
      rewritten(std::move(p), "NhwcMaxPool");
      continue;
    }
    if (is_kiln(n, "QLinearAdd") && n.inputs.size() >= 8 && n.outputs.size() == 1 && nhwc.count(n.inputs[0]) &&
        nhwc.count(n.inputs[3])) {
      ir::Node a = n;
      a.inputs[0] = nhwc.at(n.inputs[0]);
      a.inputs[3] = nhwc.at(n.inputs[3]);
      rewritten(std::move(a), "QLinearAdd");
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
