// Activations that fused kernels apply to their result (ai.kiln FusedConv / FusedMatMul, the optimizer's
// fusions). The reference form here is what the oneDNN post-ops are tested against.
#pragma once

#include <string>
#include <vector>

#include "kiln/core/status.h"

namespace kiln::cpu {

class KernelContext;

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

}  // namespace kiln::cpu
