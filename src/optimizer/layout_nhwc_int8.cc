// Level "all": int8 activations channels-last. oneDNN's int8 convolutions (VNNI, AMX) compute on NHWC tensors, so a
// QLinearConv on plain NCHW tensors pays a reorder of its input and of its output on every call: as much time as the
// convolutions themselves on ResNet-50. This pass turns each 2-D QLinearConv into ai.kiln NhwcQLinearConv (X and Y
// channels-last, W unchanged) and each ai.kiln QLinearAdd whose two inputs are channels-last into one on the
// channels-last tensors (an elementwise sum does not care, broadcasting included, when both operands are permuted
// alike), and a 2-D MaxPool of a channels-last (8-bit) tensor into ai.kiln NhwcMaxPool, so that a chain of them
// passes NHWC tensors along. A Transpose converts at the boundaries, once per
// value: perm [0, 2, 3, 1] into a convolution from a plain producer, [0, 3, 1, 2] where a plain consumer, a
// subgraph or a graph output needs the plain tensor. It runs only where the int8 kernels compute exact products
// for any weights (cpu::has_exact_int8_products): elsewhere they run the reference kernels, which gain nothing. Then
// it fuses the residual sums into the convolutions (fuse_residual_sums).
#include "kernels/capabilities.h"
#include "kiln/ir/builder.h"
#include "optimizer/channels_last.h"
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

using ir::helper::make_attribute;

// A QLinearConv of rank-4 tensors with constant int8 weights (the ones the int8 kernels take).
bool nhwc_conv(const ir::Graph& g, const ir::Node& n) {
  if (!is_onnx(n, "QLinearConv") || n.inputs.size() < 8 || n.outputs.size() != 1) return false;
  const Tensor* w = constant_tensor(g, n.inputs[3]);
  return w && w->rank() == 4 && w->dtype() == DType::kInt8;
}

// The residual sums: a channels-last QLinearAdd whose operand is the only use of a NhwcQLinearConv's result (with
// that result's scale and zero point) becomes that convolution's inputs 9-13 (the other operand Z, its scale and
// zero point, the sum's scale and zero point) and attribute `activation`: oneDNN adds Z in the convolution's output
// buffer (its sum post-op) instead of a pass over three tensors. Only where rounding once instead of twice moves a
// result by at most one step (cpu::fused_residual_sum_fits); Z must come from a node before the convolution. Returns
// how many it fused.
int fuse_residual_sums(ir::Graph& g) {
  int fused = 0;
  GraphView view(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& add = g.nodes[i];
    if (!is_kiln(add, "QLinearAdd") || add.inputs.size() < 8 || add.outputs.size() != 1) continue;
    for (size_t side : {size_t{0}, size_t{3}}) {
      const std::string& r = add.inputs[side];
      const int c = view.producer(r);
      if (c < 0 || view.single_reader(r) != static_cast<int>(i)) continue;
      ir::Node& conv = g.nodes[static_cast<size_t>(c)];
      if (!is_kiln(conv, "NhwcQLinearConv") || conv.inputs.size() < 8 || conv.inputs.size() > 9) continue;
      const size_t other = side == 0 ? 3 : 0;
      const std::string& z = add.inputs[other];
      const int zp = view.producer(z);
      if (zp >= c || z == r) continue;  // Z must be ready when the convolution runs
      if (!same_scale(g, conv.inputs[6], add.inputs[side + 1]) ||
          !same_zero_point(g, conv.inputs[7], add.inputs[side + 2]) || !scalar_f32(g, conv.inputs[6]) ||
          !scalar_f32(g, add.inputs[6]) ||
          !cpu::fused_residual_sum_fits(scalar_value(g, conv.inputs[6]), scalar_value(g, add.inputs[6]))) {
        continue;
      }
      conv.inputs.resize(9);  // B, or "" where there is none
      conv.inputs.insert(conv.inputs.end(),
                         {z, add.inputs[other + 1], add.inputs[other + 2], add.inputs[6], add.inputs[7]});
      conv.outputs = add.outputs;
      const ir::Attribute* act = add.attr("activation");
      if (act) conv.attributes.push_back(*act);
      mark_removed(add);
      ++fused;
      break;
    }
    if (add.op_type.empty()) view = GraphView(g);
  }
  sweep_removed(g);
  return fused;
}

}  // namespace

int layout_nhwc_int8(ir::Model& m) {
  if (!cpu::has_exact_int8_products()) return 0;
  ir::Graph& g = m.graph;
  auto transpose = [&g](std::vector<int64_t> perm) {
    return [&g, perm](const std::string& from, const std::string& to) {
      ir::Node t;
      t.op_type = "Transpose";
      t.name = fresh_name(g, to + "_transpose");
      t.inputs = {from};
      t.outputs = {to};
      t.attributes = {make_attribute("perm", perm)};
      return t;
    };
  };
  ChannelsLast cl(g, transpose({0, 2, 3, 1}), transpose({0, 3, 1, 2}));
  for (auto& n : g.nodes) {
    if (n.domain.empty() && nhwc_conv(g, n)) {
      ir::Node c = n;
      c.inputs[0] = cl.need_nhwc(n.inputs[0]);
      cl.rewritten(std::move(c), "NhwcQLinearConv");
      continue;
    }
    // A 2-D MaxPool of a channels-last value (an 8-bit one: fuse_qdq made it; only 8-bit values get that form).
    if (cl.maxpool(n)) continue;
    if (is_kiln(n, "QLinearAdd") && n.inputs.size() >= 8 && n.outputs.size() == 1 && cl.has(n.inputs[0]) &&
        cl.has(n.inputs[3])) {
      ir::Node a = n;
      a.inputs[0] = cl.nhwc(n.inputs[0]);
      a.inputs[3] = cl.nhwc(n.inputs[3]);
      cl.rewritten(std::move(a), "QLinearAdd");
      continue;
    }
    cl.keep(n);
  }
  const int changed = cl.finish(m);
  if (changed == 0) return 0;
  eliminate_dead_nodes(m);  // the QDQ nodes fuse_qdq left unread still read the convolutions' results
  return changed + fuse_residual_sums(g);
}

}  // namespace kiln::opt
