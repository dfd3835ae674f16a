// Conv followed by inference BatchNormalization, all parameters constant: the normalization folds into the
// convolution's weights and bias, W' = W * s and B' = (B - mean) * s + beta with s = scale / sqrt(var + eps)
// per output channel.
#include <cmath>

#include "optimizer/graph_util.h"
#include "optimizer/passes.h"

namespace kiln::opt {

int fold_conv_bn(ir::Model& m) {
  ir::Graph& g = m.graph;
  int rewrites = 0;
  GraphView view(g);
  for (auto& bn : g.nodes) {
    if (!is_onnx(bn, "BatchNormalization") || bn.inputs.size() != 5) continue;
    if (attr_int(bn, "training_mode", 0) != 0) continue;
    bool extra = false;
    for (size_t k = 1; k < bn.outputs.size(); ++k)
      extra = extra || (!bn.outputs[k].empty() && view.use_count(bn.outputs[k]));
    if (extra) continue;
    const int p = view.producer(bn.inputs[0]);
    if (p < 0 || view.single_reader(bn.inputs[0]) < 0) continue;
    ir::Node& conv = g.nodes[static_cast<size_t>(p)];
    if (!is_onnx(conv, "Conv") || conv.inputs.size() < 2) continue;
    const Tensor* w = constant_tensor(g, conv.inputs[1]);
    if (!w || w->dtype() != DType::kFloat32 || w->rank() < 3) continue;
    const int64_t M = w->dims()[0];
    const bool has_bias = conv.inputs.size() > 2 && !conv.inputs[2].empty();
    std::optional<std::vector<double>> bias;
    if (has_bias) {
      bias = constant_values(g, conv.inputs[2]);
      if (!bias) continue;
    }
    auto scale = constant_values(g, bn.inputs[1]);
    auto beta = constant_values(g, bn.inputs[2]);
    auto mean = constant_values(g, bn.inputs[3]);
    auto var = constant_values(g, bn.inputs[4]);
    auto sized = [M](const std::optional<std::vector<double>>& v) { return v && static_cast<int64_t>(v->size()) == M; };
    if (!sized(scale) || !sized(beta) || !sized(mean) || !sized(var) || (has_bias && !sized(bias))) continue;
    const double eps = attr_float(bn, "epsilon", 1e-5f);
    auto new_w = Tensor::allocate(DType::kFloat32, w->dims());
    auto new_b = Tensor::allocate(DType::kFloat32, {M});
    if (!new_w.is_ok() || !new_b.is_ok()) continue;
    const int64_t per = w->num_elements() / M;
    for (int64_t c = 0; c < M; ++c) {
      const size_t ci = static_cast<size_t>(c);
      const double s = (*scale)[ci] / std::sqrt((*var)[ci] + eps);
      for (int64_t k = 0; k < per; ++k) {
        new_w->data<float>()[c * per + k] = static_cast<float>(w->data<float>()[c * per + k] * s);
      }
      const double b0 = has_bias ? (*bias)[ci] : 0.0;
      new_b->data<float>()[c] = static_cast<float>((b0 - (*mean)[ci]) * s + (*beta)[ci]);
    }
    conv.inputs[1] = add_initializer(g, conv.inputs[1] + "_bn", std::move(new_w).value());
    const std::string b_name =
        add_initializer(g, (has_bias ? conv.inputs[2] : conv.inputs[1]) + "_bias", std::move(new_b).value());
    if (conv.inputs.size() < 3) conv.inputs.resize(3);
    conv.inputs[2] = b_name;
    conv.outputs[0] = bn.outputs[0];
    mark_removed(bn);
    ++rewrites;
  }
  sweep_removed(g);
  return rewrites;
}

}  // namespace kiln::opt
