#include "kernels/activation.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernel.h"

namespace kiln::cpu {

std::string Activation::name() const {
  switch (kind) {
    case Kind::kNone: return "";
    case Kind::kRelu: return "Relu";
    case Kind::kLeakyRelu: return "LeakyRelu";
    case Kind::kClip: return "Clip";
    case Kind::kSigmoid: return "Sigmoid";
    case Kind::kHardSigmoid: return "HardSigmoid";
    case Kind::kHardSwish: return "HardSwish";
    case Kind::kSilu: return "Silu";
    case Kind::kGelu: return "Gelu";
    case Kind::kTanh: return "Tanh";
  }
  return "";
}

std::vector<float> Activation::params() const {
  switch (kind) {
    case Kind::kLeakyRelu: return {alpha};
    case Kind::kClip:
    case Kind::kHardSigmoid: return {alpha, beta};
    default: return {};
  }
}

StatusOr<Activation> make_activation(const std::string& name, const std::vector<float>& params) {
  using K = Activation::Kind;
  struct Entry {
    const char* name;
    K kind;
    size_t nparams;
  };
  static const Entry kEntries[] = {{"", K::kNone, 0},
                                   {"Relu", K::kRelu, 0},
                                   {"LeakyRelu", K::kLeakyRelu, 1},
                                   {"Clip", K::kClip, 2},
                                   {"Sigmoid", K::kSigmoid, 0},
                                   {"HardSigmoid", K::kHardSigmoid, 2},
                                   {"HardSwish", K::kHardSwish, 0},
                                   {"Silu", K::kSilu, 0},
                                   {"Gelu", K::kGelu, 0},
                                   {"Tanh", K::kTanh, 0}};
  for (const auto& e : kEntries) {
    if (name != e.name) continue;
    if (params.size() != e.nparams) {
      return invalid_argument("activation '" + name + "' takes " + std::to_string(e.nparams) +
                              " activation_params, got " + std::to_string(params.size()));
    }
    Activation a;
    a.kind = e.kind;
    if (e.nparams > 0) a.alpha = params[0];
    if (e.nparams > 1) a.beta = params[1];
    return a;
  }
  return invalid_argument("unknown activation '" + name +
                          "' (expected Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Silu, Gelu or Tanh)");
}

bool activation_clamp(const Activation& act, float& lo, float& hi) {
  if (!is_clamp(act)) return false;
  const bool clip = act.kind == Activation::Kind::kClip;
  lo = act.none() ? -INFINITY : clip ? act.alpha : 0.0f;
  hi = clip ? act.beta : INFINITY;
  return true;
}

void apply_activation(const Activation& act, float* d, int64_t n) {
  using K = Activation::Kind;
  const float a = act.alpha, b = act.beta;
  switch (act.kind) {
    case K::kNone: return;
    case K::kRelu:
      for (int64_t i = 0; i < n; ++i) d[i] = act::relu(d[i]);
      return;
    case K::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) d[i] = act::leaky_relu(d[i], a);
      return;
    case K::kClip:
      for (int64_t i = 0; i < n; ++i) d[i] = std::min(std::max(d[i], a), b);
      return;
    case K::kSigmoid:
      for (int64_t i = 0; i < n; ++i) d[i] = act::sigmoid(d[i]);
      return;
    case K::kHardSigmoid:
      for (int64_t i = 0; i < n; ++i) d[i] = act::hard_sigmoid(d[i], a, b);
      return;
    case K::kHardSwish:
      for (int64_t i = 0; i < n; ++i) d[i] = act::hard_swish(d[i]);
      return;
    case K::kSilu:
      for (int64_t i = 0; i < n; ++i) d[i] = act::silu(d[i]);
      return;
    case K::kGelu:
      for (int64_t i = 0; i < n; ++i) d[i] = 0.5f * d[i] * (1.0f + std::erf(d[i] * 0.70710678118654752f));
      return;
    case K::kTanh:
      for (int64_t i = 0; i < n; ++i) d[i] = std::tanh(d[i]);
      return;
  }
}

StatusOr<Activation> fused_activation(const KernelContext& ctx) {
  auto act = make_activation(ctx.attr_string("activation", ""), ctx.attr_floats("activation_params"));
  if (!act.is_ok()) return ctx.error(act.status().message());
  return act;
}

}  // namespace kiln::cpu
