// Recurrent layers: RNN, LSTM, GRU. Everything computes in double and rounds to the output dtype.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/kernel.h"
#include "kernels/ref/misc_util.h"

namespace kiln::cpu {

using namespace misc;

namespace {

// Recurrent layers

struct RnnActivation {
  std::string name;  // lowercase
  double alpha = 0, beta = 0;

  double operator()(double x) const {
    if (name == "sigmoid") return act::sigmoid(x);
    if (name == "tanh") return std::tanh(x);
    if (name == "relu") return act::relu(x);
    if (name == "affine") return alpha * x + beta;
    if (name == "leakyrelu") return act::leaky_relu(x, alpha);
    if (name == "thresholdedrelu") return act::thresholded_relu(x, alpha);
    if (name == "scaledtanh") return alpha * std::tanh(beta * x);
    if (name == "hardsigmoid") return act::hard_sigmoid(x, alpha, beta);
    if (name == "elu") return act::elu(x, alpha);
    if (name == "softsign") return act::softsign(x);
    if (name == "softplus") return act::softplus(x);
    return x;
  }
};

bool known_activation(const std::string& n) {
  static const char* kNames[] = {"sigmoid",    "tanh",        "relu", "affine",   "leakyrelu", "thresholdedrelu",
                                 "scaledtanh", "hardsigmoid", "elu",  "softsign", "softplus"};
  return std::any_of(std::begin(kNames), std::end(kNames), [&](const char* k) { return n == k; });
}

// Everything the three recurrent ops share: dims, inputs read as doubles, activations.
struct RnnSetup {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, num_dir = 1;
  int64_t layout = 0;
  int64_t gates = 1;
  std::string direction;
  double clip = 0;  // 0: no clipping
  DType dtype = DType::kFloat32;
  std::vector<double> x, w, r, b, h0;
  std::vector<int64_t> lens;
  std::vector<RnnActivation> acts;  // per direction: acts_per_dir entries

  double x_at(int64_t t, int64_t bb, int64_t i) const {
    return layout == 0 ? x[static_cast<size_t>((t * batch + bb) * input + i)]
                       : x[static_cast<size_t>((bb * seq + t) * input + i)];
  }
  // Offset of [dir, batch, j] in initial_h / Y_h / Y_c (layout-aware).
  size_t state_index(int64_t d, int64_t bb, int64_t j) const {
    return static_cast<size_t>(layout == 0 ? (d * batch + bb) * hidden + j : (bb * num_dir + d) * hidden + j);
  }
  std::vector<int64_t> state_dims() const {
    return layout == 0 ? std::vector<int64_t>{num_dir, batch, hidden} : std::vector<int64_t>{batch, num_dir, hidden};
  }
  size_t y_index(int64_t t, int64_t d, int64_t bb, int64_t j) const {
    return static_cast<size_t>(layout == 0 ? ((t * num_dir + d) * batch + bb) * hidden + j
                                           : ((bb * seq + t) * num_dir + d) * hidden + j);
  }
  std::vector<int64_t> y_dims() const {
    return layout == 0 ? std::vector<int64_t>{seq, num_dir, batch, hidden}
                       : std::vector<int64_t>{batch, seq, num_dir, hidden};
  }
  bool reversed(int64_t d) const { return direction == "reverse" || (direction == "bidirectional" && d == 1); }
  double clipped(double v) const { return clip > 0 ? std::max(-clip, std::min(clip, v)) : v; }
};

Status check_dims(const KernelContext& ctx, const Tensor& t, const std::string& what,
                  const std::vector<int64_t>& want) {
  if (t.dims() != want) {
    return ctx.error(what + " has shape " + dims_to_string(t.dims()) + " but " + dims_to_string(want) +
                     " was expected");
  }
  return Status::ok();
}

// Reads X, W, R, B, sequence_lens, initial_h and the attributes. `gates` is 1 (RNN), 3 (GRU) or 4 (LSTM).
StatusOr<RnnSetup> rnn_setup(const KernelContext& ctx, int64_t gates, const std::vector<std::string>& default_acts) {
  RnnSetup s;
  s.gates = gates;
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* w, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(const Tensor* r, ctx.required_input(2));
  if (!is_float_dtype(x->dtype())) return ctx.unsupported_dtype(x->dtype(), "X (input 0)");
  s.dtype = x->dtype();
  s.layout = ctx.attr_int("layout", 0);
  if (s.layout != 0 && s.layout != 1) {
    return ctx.error("attribute 'layout' is " + std::to_string(s.layout) + " but 0 or 1 was expected");
  }
  if (x->rank() != 3)
    return ctx.error("X (input 0) has shape " + dims_to_string(x->dims()) + " but rank 3 was expected");
  s.seq = s.layout == 0 ? x->dims()[0] : x->dims()[1];
  s.batch = s.layout == 0 ? x->dims()[1] : x->dims()[0];
  s.input = x->dims()[2];
  s.direction = ctx.attr_string("direction", "forward");
  if (s.direction != "forward" && s.direction != "reverse" && s.direction != "bidirectional") {
    return ctx.error("attribute 'direction' is '" + s.direction +
                     "' but forward, reverse or bidirectional was expected");
  }
  s.num_dir = s.direction == "bidirectional" ? 2 : 1;
  if (w->rank() != 3)
    return ctx.error("W (input 1) has shape " + dims_to_string(w->dims()) + " but rank 3 was expected");
  s.hidden = ctx.attr_int("hidden_size", w->dims()[1] / gates);
  KILN_RETURN_IF_ERROR(check_dims(ctx, *w, "W (input 1)", {s.num_dir, gates * s.hidden, s.input}));
  KILN_RETURN_IF_ERROR(check_dims(ctx, *r, "R (input 2)", {s.num_dir, gates * s.hidden, s.hidden}));
  s.x = to_doubles(*x);
  s.w = to_doubles(*w);
  s.r = to_doubles(*r);
  if (const Tensor* b = ctx.input(3)) {
    KILN_RETURN_IF_ERROR(check_dims(ctx, *b, "B (input 3)", {s.num_dir, 2 * gates * s.hidden}));
    s.b = to_doubles(*b);
  } else {
    s.b.assign(static_cast<size_t>(s.num_dir * 2 * gates * s.hidden), 0.0);
  }
  s.lens.assign(static_cast<size_t>(s.batch), s.seq);
  if (const Tensor* sl = ctx.input(4)) {
    auto v = to_int64s(*sl);
    if (static_cast<int64_t>(v.size()) != s.batch) {
      return ctx.error("sequence_lens (input 4) has " + std::to_string(v.size()) + " entries but the batch size is " +
                       std::to_string(s.batch));
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] < 0 || v[i] > s.seq) {
        return ctx.error("sequence_lens[" + std::to_string(i) + "] = " + std::to_string(v[i]) + " is outside [0, " +
                         std::to_string(s.seq) + "]");
      }
      s.lens[i] = v[i];
    }
  }
  if (const Tensor* h0 = ctx.input(5)) {
    KILN_RETURN_IF_ERROR(check_dims(ctx, *h0, "initial_h (input 5)", s.state_dims()));
    s.h0 = to_doubles(*h0);
  } else {
    s.h0.assign(static_cast<size_t>(s.num_dir * s.batch * s.hidden), 0.0);
  }
  s.clip = ctx.attr_float("clip", 0.0f);

  // Activations: one list per direction (a single direction's list is reused for both).
  std::vector<std::string> names;
  if (const auto* a = ctx.attr("activations"); a && a->type == ir::AttrType::kStrings) names = a->strings;
  const size_t per_dir = default_acts.size();
  if (names.empty()) {
    for (int64_t d = 0; d < s.num_dir; ++d) names.insert(names.end(), default_acts.begin(), default_acts.end());
  } else if (names.size() == per_dir && s.num_dir == 2) {
    std::vector<std::string> twice = names;
    twice.insert(twice.end(), names.begin(), names.end());
    names = twice;
  }
  if (names.size() != per_dir * static_cast<size_t>(s.num_dir)) {
    return ctx.error("attribute 'activations' has " + std::to_string(names.size()) + " entries but " +
                     std::to_string(per_dir * static_cast<size_t>(s.num_dir)) + " were expected");
  }
  const std::vector<float> alphas = ctx.attr_floats("activation_alpha");
  const std::vector<float> betas = ctx.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  for (const auto& n : names) {
    RnnActivation a;
    for (char c : n) a.name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!known_activation(a.name)) return ctx.error("activation '" + n + "' is not supported");
    bool uses_alpha = true, uses_beta = false;
    if (a.name == "leakyrelu")
      a.alpha = 0.01;
    else if (a.name == "thresholdedrelu" || a.name == "elu")
      a.alpha = 1.0;
    else if (a.name == "affine" || a.name == "scaledtanh") {
      a.alpha = 1.0;
      a.beta = 0.0;
      uses_beta = true;
      if (a.name == "scaledtanh") a.beta = 1.0;
    } else if (a.name == "hardsigmoid") {
      a.alpha = 0.2;
      a.beta = 0.5;
      uses_beta = true;
    } else {
      uses_alpha = false;
    }
    if (uses_alpha && ai < alphas.size()) a.alpha = alphas[ai++];
    if (uses_beta && bi < betas.size()) a.beta = betas[bi++];
    s.acts.push_back(a);
  }
  return s;
}

// dot(row of matrix m at `row` with `cols` columns, vector v)
double dot_row(const std::vector<double>& m, size_t offset, int64_t cols, const double* v) {
  double acc = 0;
  for (int64_t k = 0; k < cols; ++k) acc += m[offset + static_cast<size_t>(k)] * v[k];
  return acc;
}

// Gate pre-activations for one step: out[g*H + j] = W[d, g*H+j, :] . x + R[d, g*H+j, :] . h + Wb + Rb,
// for gates whose recurrent part is included (skip_recurrent marks gates that add R.h elsewhere).
void gate_inputs(const RnnSetup& s, int64_t d, const std::vector<double>& xt, const std::vector<double>& h,
                 std::vector<double>& wx, std::vector<double>& rh) {
  const int64_t gh = s.gates * s.hidden;
  wx.assign(static_cast<size_t>(gh), 0.0);
  rh.assign(static_cast<size_t>(gh), 0.0);
  for (int64_t g = 0; g < gh; ++g) {
    wx[static_cast<size_t>(g)] = dot_row(s.w, static_cast<size_t>((d * gh + g) * s.input), s.input, xt.data()) +
                                 s.b[static_cast<size_t>(d * 2 * gh + g)];
    rh[static_cast<size_t>(g)] = dot_row(s.r, static_cast<size_t>((d * gh + g) * s.hidden), s.hidden, h.data()) +
                                 s.b[static_cast<size_t>(d * 2 * gh + gh + g)];
  }
}

std::vector<double> x_step(const RnnSetup& s, int64_t t, int64_t b) {
  std::vector<double> xt(static_cast<size_t>(s.input));
  for (int64_t i = 0; i < s.input; ++i) xt[static_cast<size_t>(i)] = s.x_at(t, b, i);
  return xt;
}

// The recurrent loop shared by the three ops. `step(d, b, xt, h, c)` updates h (and c for LSTM) in place.
template <typename Step>
void run_recurrence(const RnnSetup& s, std::vector<double>& y, std::vector<double>& yh, std::vector<double>* c_state,
                    std::vector<double>* yc, Step step) {
  const size_t H = static_cast<size_t>(s.hidden);
  y.assign(static_cast<size_t>(s.seq * s.num_dir * s.batch * s.hidden), 0.0);
  yh.assign(static_cast<size_t>(s.num_dir * s.batch * s.hidden), 0.0);
  if (yc) yc->assign(yh.size(), 0.0);
  for (int64_t d = 0; d < s.num_dir; ++d) {
    for (int64_t b = 0; b < s.batch; ++b) {
      std::vector<double> h(H), c(H, 0.0);
      for (size_t j = 0; j < H; ++j) h[j] = s.h0[s.state_index(d, b, static_cast<int64_t>(j))];
      if (c_state) {
        for (size_t j = 0; j < H; ++j) c[j] = (*c_state)[s.state_index(d, b, static_cast<int64_t>(j))];
      }
      const int64_t len = s.lens[static_cast<size_t>(b)];
      for (int64_t k = 0; k < len; ++k) {
        const int64_t t = s.reversed(d) ? len - 1 - k : k;
        step(d, x_step(s, t, b), h, c);
        for (size_t j = 0; j < H; ++j) y[s.y_index(t, d, b, static_cast<int64_t>(j))] = h[j];
      }
      for (size_t j = 0; j < H; ++j) {
        yh[s.state_index(d, b, static_cast<int64_t>(j))] = h[j];
        if (yc) (*yc)[s.state_index(d, b, static_cast<int64_t>(j))] = c[j];
      }
    }
  }
}

}  // namespace

Status rnn_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(RnnSetup s, rnn_setup(ctx, 1, {"Tanh"}));
  const size_t H = static_cast<size_t>(s.hidden);
  std::vector<double> y, yh, wx, rh;
  run_recurrence(s, y, yh, nullptr, nullptr,
                 [&](int64_t d, const std::vector<double>& xt, std::vector<double>& h, std::vector<double>&) {
                   gate_inputs(s, d, xt, h, wx, rh);
                   const RnnActivation& f = s.acts[static_cast<size_t>(d)];
                   for (size_t j = 0; j < H; ++j) h[j] = f(s.clipped(wx[j] + rh[j]));
                 });
  KILN_RETURN_IF_ERROR(emit(ctx, 0, s.dtype, s.y_dims(), y));
  return emit(ctx, 1, s.dtype, s.state_dims(), yh);
}

Status gru_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(RnnSetup s, rnn_setup(ctx, 3, {"Sigmoid", "Tanh"}));
  const bool linear_before_reset = ctx.attr_int("linear_before_reset", 0) != 0;
  const size_t H = static_cast<size_t>(s.hidden);
  std::vector<double> y, yh, wx, rh, z(H), rg(H), hr(H);
  run_recurrence(s, y, yh, nullptr, nullptr,
                 [&](int64_t d, const std::vector<double>& xt, std::vector<double>& h, std::vector<double>&) {
                   const RnnActivation& f = s.acts[static_cast<size_t>(d * 2)];
                   const RnnActivation& g = s.acts[static_cast<size_t>(d * 2 + 1)];
                   gate_inputs(s, d, xt, h, wx, rh);  // gate order z, r, h
                   for (size_t j = 0; j < H; ++j) {
                     z[j] = f(s.clipped(wx[j] + rh[j]));
                     rg[j] = f(s.clipped(wx[H + j] + rh[H + j]));
                   }
                   const int64_t gh = 3 * s.hidden;
                   std::vector<double> hn(H);
                   if (linear_before_reset) {
                     for (size_t j = 0; j < H; ++j) hn[j] = g(s.clipped(wx[2 * H + j] + rg[j] * rh[2 * H + j]));
                   } else {
                     for (size_t j = 0; j < H; ++j) hr[j] = rg[j] * h[j];
                     for (size_t j = 0; j < H; ++j) {
                       const double rec =
                           dot_row(s.r,
                                   static_cast<size_t>((d * gh + 2 * s.hidden + static_cast<int64_t>(j)) * s.hidden),
                                   s.hidden, hr.data()) +
                           s.b[static_cast<size_t>(d * 2 * gh + gh + 2 * s.hidden) + j];
                       hn[j] = g(s.clipped(wx[2 * H + j] + rec));
                     }
                   }
                   for (size_t j = 0; j < H; ++j) h[j] = (1 - z[j]) * hn[j] + z[j] * h[j];
                 });
  KILN_RETURN_IF_ERROR(emit(ctx, 0, s.dtype, s.y_dims(), y));
  return emit(ctx, 1, s.dtype, s.state_dims(), yh);
}

Status lstm_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(RnnSetup s, rnn_setup(ctx, 4, {"Sigmoid", "Tanh", "Tanh"}));
  const size_t H = static_cast<size_t>(s.hidden);
  std::vector<double> c0(static_cast<size_t>(s.num_dir * s.batch * s.hidden), 0.0);
  if (const Tensor* c = ctx.input(6)) {
    KILN_RETURN_IF_ERROR(check_dims(ctx, *c, "initial_c (input 6)", s.state_dims()));
    c0 = to_doubles(*c);
  }
  std::vector<double> p(static_cast<size_t>(s.num_dir * 3 * s.hidden), 0.0);
  if (const Tensor* pt = ctx.input(7)) {
    KILN_RETURN_IF_ERROR(check_dims(ctx, *pt, "P (input 7)", {s.num_dir, 3 * s.hidden}));
    p = to_doubles(*pt);
  }
  const bool input_forget = ctx.attr_int("input_forget", 0) != 0;
  std::vector<double> y, yh, yc, wx, rh;
  run_recurrence(s, y, yh, &c0, &yc,
                 [&](int64_t d, const std::vector<double>& xt, std::vector<double>& h, std::vector<double>& c) {
                   const RnnActivation& f = s.acts[static_cast<size_t>(d * 3)];
                   const RnnActivation& g = s.acts[static_cast<size_t>(d * 3 + 1)];
                   const RnnActivation& hact = s.acts[static_cast<size_t>(d * 3 + 2)];
                   const double* pi = &p[static_cast<size_t>(d * 3 * s.hidden)];
                   const double* po = pi + H;
                   const double* pf = po + H;
                   gate_inputs(s, d, xt, h, wx, rh);  // gate order i, o, f, c
                   for (size_t j = 0; j < H; ++j) {
                     const double it = f(s.clipped(wx[j] + rh[j] + pi[j] * c[j]));
                     double ft = f(s.clipped(wx[2 * H + j] + rh[2 * H + j] + pf[j] * c[j]));
                     if (input_forget) ft = 1 - it;
                     const double ct = g(s.clipped(wx[3 * H + j] + rh[3 * H + j]));
                     const double cn = ft * c[j] + it * ct;
                     const double ot = f(s.clipped(wx[H + j] + rh[H + j] + po[j] * cn));
                     c[j] = cn;
                     h[j] = ot * hact(cn);
                   }
                 });
  KILN_RETURN_IF_ERROR(emit(ctx, 0, s.dtype, s.y_dims(), y));
  KILN_RETURN_IF_ERROR(emit(ctx, 1, s.dtype, s.state_dims(), yh));
  return emit(ctx, 2, s.dtype, s.state_dims(), yc);
}

}  // namespace kiln::cpu
