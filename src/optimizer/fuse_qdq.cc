// QDQ models (torch's quantization-aware training export, kiln quantize, ONNX Runtime's quantize_static) write each
// quantized layer as DequantizeLinear on its input and weights, the float operator, and QuantizeLinear on its output.
// This pass turns
//   DequantizeLinear(xq) -> Conv(., DequantizeLinear(wq), bias?) [-> Relu] -> QuantizeLinear   into QLinearConv,
//   (a Clip(0, max) in place of the Relu where max is at least the largest value the output represents),
//   DequantizeLinear(aq) -> MatMul(., DequantizeLinear(bq))      [-> Relu] -> QuantizeLinear   into QLinearMatMul,
//   DequantizeLinear(a) + DequantizeLinear(b) [-> Relu] -> QuantizeLinear                      into ai.kiln QLinearAdd,
//   DequantizeLinear(x) -> MaxPool -> QuantizeLinear (the same scale and zero point)            into MaxPool(x),
// which the int8 kernels run (fast/quantized.cc), as ONNX Runtime's QDQ transformer does. Only the cases those
// kernels take: activations with constant scalar scales and zero points, constant int8 weights with zero points 0
// and per-tensor or per-output-channel scales. A float bias becomes int32 at scale x_scale * w_scale[m] (the
// reference QDQ graph adds it in float before quantizing: the results agree within one quantization step). A Relu
// between the operator and QuantizeLinear is dropped only where it changes nothing: when the output's zero point is
// the lowest value of its type, quantizing clamps at zero already.
#include <cmath>
#include <limits>
#include <optional>

#include "kiln/ir/builder.h"
#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {
namespace {

struct Dequantized {
  std::string q, scale, zero_point;  // zero_point: "" when absent
  int64_t axis = 1;
};

// A QuantizeLinear/DequantizeLinear node's zero point input ("" when absent).
const std::string& zero_point_name(const ir::Node& n) {
  static const std::string kNone;
  return n.inputs.size() > 2 ? n.inputs[2] : kNone;
}

// The inputs of the DequantizeLinear producing `name`.
std::optional<Dequantized> dequantized(const ir::Graph& g, const GraphView& view, const std::string& name) {
  const int p = view.producer(name);
  if (p < 0) return std::nullopt;
  const ir::Node& n = g.nodes[static_cast<size_t>(p)];
  if (!is_onnx(n, "DequantizeLinear") || n.inputs.size() < 2 || n.inputs[0].empty()) return std::nullopt;
  return Dequantized{n.inputs[0], n.inputs[1], zero_point_name(n), attr_int(n, "axis", 1)};
}

// An activation's (scale, zero point) as QLinear* inputs: the zero point made explicit (uint8 0) when absent.
std::string zero_point_input(ir::Graph& g, const std::string& name, const std::string& base) {
  if (!name.empty()) return name;
  return add_initializer(g, base + "_zero_point", Tensor::from_vector<uint8_t>({}, {0}));
}

// Weights `q` quantized to int8 with zero points 0 (absent, or all zero) and float32 scales, one or `channels`
// (then along `axis`, which must be `want_axis`).
bool symmetric_int8(const ir::Graph& g, const Dequantized& d, int64_t channels, int64_t want_axis) {
  const Tensor* w = constant_tensor(g, d.q);
  const Tensor* s = constant_tensor(g, d.scale);
  if (!w || w->dtype() != DType::kInt8 || !s || s->dtype() != DType::kFloat32) return false;
  if (s->num_elements() != 1 && (s->num_elements() != channels ||
                                 (d.axis != want_axis && d.axis != want_axis - static_cast<int64_t>(w->rank())))) {
    return false;
  }
  if (!d.zero_point.empty()) {
    const Tensor* z = constant_tensor(g, d.zero_point);
    if (!z || z->dtype() != DType::kInt8) return false;
    for (int64_t i = 0; i < z->num_elements(); ++i) {
      if (z->data<int8_t>()[i] != 0) return false;
    }
  }
  return true;
}

// The int32 bias of a quantized convolution from its float bias `b` (a constant, or a DequantizeLinear of one):
// round(b[m] / (x_scale * w_scale[m])), saturated. "" when it cannot be had.
std::string int32_bias(ir::Graph& g, const GraphView& view, const std::string& b, double x_scale, const Tensor& w_scale,
                       int64_t channels, const std::string& base) {
  std::vector<double> values;
  if (auto d = dequantized(g, view, b)) {
    const Tensor* q = constant_tensor(g, d->q);
    const Tensor* s = constant_tensor(g, d->scale);
    if (!q || q->dtype() != DType::kInt32 || !s || s->dtype() != DType::kFloat32 || q->num_elements() != channels) {
      return "";
    }
    for (int64_t m = 0; m < channels; ++m) {
      values.push_back(static_cast<double>(q->data<int32_t>()[m]) * s->data<float>()[s->num_elements() == 1 ? 0 : m]);
    }
  } else {
    const Tensor* t = constant_tensor(g, b);
    if (!t || t->dtype() != DType::kFloat32 || t->num_elements() != channels) return "";
    for (int64_t m = 0; m < channels; ++m) values.push_back(t->data<float>()[m]);
  }
  std::vector<int32_t> q(static_cast<size_t>(channels));
  for (int64_t m = 0; m < channels; ++m) {
    const double s = x_scale * w_scale.data<float>()[w_scale.num_elements() == 1 ? 0 : m];
    if (!(s > 0)) return "";
    const double v = std::nearbyint(values[static_cast<size_t>(m)] / s);
    if (!(std::abs(v) < 2147483647.0)) return "";
    q[static_cast<size_t>(m)] = static_cast<int32_t>(v);
  }
  return add_initializer(g, base + "_bias_int32", Tensor::from_vector<int32_t>({channels}, q));
}

// The per-tensor QuantizeLinear that alone reads `y`, directly or through an activation (a Relu or a Clip) that alone
// reads y: its node index, or -1. `act` receives the activation's index (-1 when there is none).
int quantize_after(const ir::Graph& g, const GraphView& view, const std::string& y, int& act) {
  act = -1;
  int r = view.single_reader(y);
  if (r < 0) return -1;
  std::string in = y;
  if (is_onnx(g.nodes[static_cast<size_t>(r)], "Relu") || is_onnx(g.nodes[static_cast<size_t>(r)], "Clip")) {
    act = r;
    in = g.nodes[static_cast<size_t>(r)].outputs[0];
    r = view.single_reader(in);
    if (r < 0) return -1;
  }
  const ir::Node& n = g.nodes[static_cast<size_t>(r)];
  if (!is_onnx(n, "QuantizeLinear") || n.inputs.size() < 2 || n.inputs[0] != in) return -1;
  if (!scalar_f32(g, n.inputs[1]) || !scalar_zero_point(g, zero_point_name(n))) return -1;
  return r;
}

// Whether activation `act` before QuantizeLinear `quant` changes nothing: quantizing clamps at the zero point's value
// of 0.0, so a Relu is redundant when that is the type's lowest; a Clip from 0 too, when its upper bound is at or
// above the largest value the output can represent.
bool redundant_before(const ir::Model& m, const ir::Node& act, const ir::Node& quant) {
  const ir::Graph& g = m.graph;
  const auto [is_int8, zero] = zero_point_value(g, zero_point_name(quant));
  if (zero != (is_int8 ? -128 : 0)) return false;
  if (is_onnx(act, "Relu")) return true;
  const auto bounds = clip_bounds(m, act);
  const double top = ((is_int8 ? 127.0 : 255.0) - zero) * scalar_value(g, quant.inputs[1]);
  return bounds && bounds->first == 0.0f && bounds->second >= top;
}

}  // namespace

int fuse_qdq(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  // One view for the whole sweep: a rewrite changes only its own nodes (the operator, the activation and the
  // QuantizeLinear it absorbs), which no later match reads through the view.
  GraphView view(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const bool conv = is_onnx(g.nodes[i], "Conv");
    if (!conv && !is_onnx(g.nodes[i], "MatMul")) continue;
    const ir::Node& op = g.nodes[i];
    if (op.inputs.size() < 2 || op.outputs.empty()) continue;
    auto x = dequantized(g, view, op.inputs[0]);
    auto w = dequantized(g, view, op.inputs[1]);
    if (!x || !w || !scalar_f32(g, x->scale) || !scalar_zero_point(g, x->zero_point)) continue;
    const Tensor* wq = constant_tensor(g, w->q);
    if (!wq || (conv ? wq->rank() < 3 : wq->rank() != 2)) continue;
    const int64_t channels = conv ? wq->dims()[0] : wq->dims()[1];
    if (!symmetric_int8(g, *w, channels, conv ? 0 : 1)) continue;
    int relu = -1;
    const int q = quantize_after(g, view, op.outputs[0], relu);
    if (q < 0 ||
        (relu >= 0 && !redundant_before(m, g.nodes[static_cast<size_t>(relu)], g.nodes[static_cast<size_t>(q)]))) {
      continue;
    }
    const std::string bias = conv && op.inputs.size() > 2 ? op.inputs[2] : "";
    std::string bias_q;
    if (!bias.empty()) {
      bias_q = int32_bias(g, view, bias, constant_tensor(g, x->scale)->data<float>()[0], *constant_tensor(g, w->scale),
                          channels, op.name.empty() ? "qconv" : op.name);
      if (bias_q.empty()) continue;
    }
    // Copies before add_initializer and the rewrite (references into g.nodes stay valid: no node is added).
    ir::Node& quant = g.nodes[static_cast<size_t>(q)];
    const std::string y_zp = zero_point_input(g, zero_point_name(quant), quant.outputs[0]);
    const std::string x_zp = zero_point_input(g, x->zero_point, op.inputs[0]);
    const std::string w_zp = w->zero_point.empty()
                                 ? add_initializer(g, w->q + "_zero_point", Tensor::from_vector<int8_t>({}, {0}))
                                 : w->zero_point;
    ir::Node& n = g.nodes[i];
    n.op_type = conv ? "QLinearConv" : "QLinearMatMul";
    n.domain.clear();
    n.inputs = {x->q, x->scale, x_zp, w->q, w->scale, w_zp, quant.inputs[1], y_zp};
    if (!bias_q.empty()) n.inputs.push_back(bias_q);
    n.outputs = {quant.outputs[0]};
    mark_removed(quant);
    if (relu >= 0) mark_removed(g.nodes[static_cast<size_t>(relu)]);
    ++rewrites;
  }
  // DequantizeLinear(a) + DequantizeLinear(b) [-> Relu] -> QuantizeLinear: ai.kiln QLinearAdd (the residual sums
  // between quantized convolutions), its arithmetic that of the QDQ graph.
  int adds = 0;
  sweep_removed(g);
  view = GraphView(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!is_onnx(g.nodes[i], "Add") || g.nodes[i].inputs.size() != 2 || g.nodes[i].outputs.empty()) continue;
    const ir::Node& add = g.nodes[i];
    auto a = dequantized(g, view, add.inputs[0]);
    auto b = dequantized(g, view, add.inputs[1]);
    if (!a || !b || !scalar_f32(g, a->scale) || !scalar_f32(g, b->scale) || !scalar_zero_point(g, a->zero_point) ||
        !scalar_zero_point(g, b->zero_point)) {
      continue;
    }
    int relu = -1;
    const int q = quantize_after(g, view, add.outputs[0], relu);
    if (q < 0 || (relu >= 0 && !is_onnx(g.nodes[static_cast<size_t>(relu)], "Relu"))) continue;  // QLinearAdd's Relu
    ir::Node& quant = g.nodes[static_cast<size_t>(q)];
    const std::string label = add.name.empty() ? add.outputs[0] : add.name;
    const std::string a_zp = zero_point_input(g, a->zero_point, label + "_a");
    const std::string b_zp = zero_point_input(g, b->zero_point, label + "_b");
    const std::string c_zp = zero_point_input(g, zero_point_name(quant), quant.outputs[0]);
    ir::Node& n = g.nodes[i];
    n.op_type = "QLinearAdd";
    n.domain = kKilnDomain;
    n.inputs = {a->q, a->scale, a_zp, b->q, b->scale, b_zp, quant.inputs[1], c_zp};
    n.outputs = {quant.outputs[0]};
    if (relu >= 0) {
      set_attr(n, ir::helper::make_attribute("activation", std::string("Relu")));
      mark_removed(g.nodes[static_cast<size_t>(relu)]);
    }
    mark_removed(quant);
    ++adds;
  }
  sweep_removed(g);
  if (adds) import_kiln_domain(m);
  // DequantizeLinear(x) -> MaxPool -> QuantizeLinear with the same scale and zero point: MaxPool on x itself (opset
  // 12 pools 8-bit tensors). The maximum commutes with dequantizing (an increasing map), and quantizing a dequantized
  // value with its own parameters gives it back, so the result is the QDQ graph's exactly.
  int pools = 0;
  if (m.opset("").value_or(0) >= 12) {
    view = GraphView(g);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const ir::Node& pool = g.nodes[i];
      if (!is_onnx(pool, "MaxPool") || pool.inputs.size() != 1 || pool.outputs.empty() ||
          (pool.outputs.size() > 1 && !pool.outputs[1].empty())) {
        continue;
      }
      auto x = dequantized(g, view, pool.inputs[0]);
      int act = -1;
      const int q = quantize_after(g, view, pool.outputs[0], act);
      if (!x || q < 0 || act >= 0 || !scalar_f32(g, x->scale) || !scalar_zero_point(g, x->zero_point)) continue;
      ir::Node& quant = g.nodes[static_cast<size_t>(q)];
      if (!same_scale(g, x->scale, quant.inputs[1]) || !same_zero_point(g, x->zero_point, zero_point_name(quant))) {
        continue;
      }
      ir::Node& n = g.nodes[i];
      n.inputs[0] = x->q;
      n.outputs = {quant.outputs[0]};
      mark_removed(quant);
      ++pools;
    }
    sweep_removed(g);
  }
  return rewrites + adds + pools;
}

}  // namespace kiln::opt
