// Activations that fused kernels apply to their result (ai.kiln FusedConv / FusedMatMul, the optimizer's
// fusions). The reference form here is what the oneDNN post-ops are tested against.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::cpu {

class KernelContext;

// The activation functions themselves, for one element of type T (float or double; relu also integers): the one
// definition the fused activations (apply_activation), the elementwise operators (Relu, Sigmoid, HardSigmoid,
// HardSwish, LeakyRelu, Elu, ThresholdedRelu, Softsign, Softplus) and the recurrent layers' activations use. The
// vectorized forms (kernels/x86/vmath.h, oneDNN's eltwise post-ops) are tested against these.
namespace act {
template <class T>
T relu(T x) {
  return x > 0 ? x : T{0};
}
template <class T>
T leaky_relu(T x, T alpha) {
  return x >= 0 ? x : alpha * x;
}
template <class T>
T thresholded_relu(T x, T alpha) {
  return x > alpha ? x : T{0};
}
template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
template <class T>
T hard_sigmoid(T x, T alpha, T beta) {
  return std::max(T(0), std::min(T(1), alpha * x + beta));
}
template <class T>
T hard_swish(T x) {
  return x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5)));
}
template <class T>
T silu(T x) {
  return x / (T(1) + std::exp(-x));
}
template <class T>
T elu(T x, T alpha) {
  return x >= 0 ? x : alpha * (std::exp(x) - T(1));
}
template <class T>
T softsign(T x) {
  return x / (T(1) + std::abs(x));
}
template <class T>
T softplus(T x) {
  return std::log1p(std::exp(x));
}
}  // namespace act

struct Activation {
  enum class Kind { kNone, kRelu, kLeakyRelu, kClip, kSigmoid, kHardSigmoid, kHardSwish, kSilu, kGelu, kTanh };
  Kind kind = Kind::kNone;
  float alpha = 0.0f;  // LeakyRelu slope, Clip min, HardSigmoid alpha
  float beta = 0.0f;   // Clip max, HardSigmoid beta

  bool none() const { return kind == Kind::kNone; }
  // The ONNX op name the activation stands for ("Relu", "Clip", ..., "Gelu"; "" for none).
  std::string name() const;
  // The `activation_params` attribute that goes with name().
  std::vector<float> params() const;
};

// From the fused node's `activation` and `activation_params` attributes. The error says what was expected.
StatusOr<Activation> make_activation(const std::string& name, const std::vector<float>& params);

// The activation of an ai.kiln fused node, from its `activation` / `activation_params` attributes; the error
// names the node.
StatusOr<Activation> fused_activation(const KernelContext& ctx);

// Applies the activation in place, elementwise, in float.
void apply_activation(const Activation& act, float* data, int64_t n);

// Whether the activation is a clamp min(max(x, lo), hi), which kernels apply in registers: none, Relu or Clip.
inline bool is_clamp(const Activation& act) {
  return act.none() || act.kind == Activation::Kind::kRelu || act.kind == Activation::Kind::kClip;
}
// Its bounds: none (-inf, inf), Relu (0, inf) or Clip's; false when it is not a clamp.
bool activation_clamp(const Activation& act, float& lo, float& hi);

}  // namespace kiln::cpu
