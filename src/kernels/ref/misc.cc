// Miscellaneous operators: recurrent layers (RNN, LSTM, GRU), signal processing (window functions, DFT, STFT,
// MelWeightMatrix), random generators, text (StringNormalizer, TfIdfVectorizer) and the training optimizers of
// ai.onnx.preview.training (Adagrad, Momentum, Adam). Everything computes in double and rounds to the output dtype.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel.h"

namespace kiln::cpu {
namespace {

constexpr double kPi = 3.14159265358979323846;

bool is_real_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16;
}

// A tensor of `dtype` and `dims` holding `values` (numeric dtypes, bool and float16/bfloat16).
StatusOr<Tensor> make_tensor(const KernelContext& ctx, DType dtype, const std::vector<int64_t>& dims,
                             const std::vector<double>& values) {
  if (is_half(dtype)) {
    KILN_ASSIGN_OR_RETURN(Tensor f, make_tensor(ctx, DType::kFloat32, dims, values));
    return from_float(f, dtype);
  }
  auto t = Tensor::allocate(dtype, dims);
  if (!t.is_ok()) return ctx.error(t.status().message());
  Tensor out = std::move(t).value();
  const size_t n = std::min(values.size(), static_cast<size_t>(out.num_elements()));
  bool ok = dispatch_numeric(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* dst = out.data<T>();
    if constexpr (std::is_same_v<T, bool>) {
      for (size_t i = 0; i < n; ++i) dst[i] = values[i] != 0;
    } else {
      for (size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(values[i]);
    }
  });
  if (!ok) return ctx.unsupported_dtype(dtype, "the output");
  return out;
}

// Generated outputs (windows, random tensors, ...) above this many elements are refused rather than attempted.
constexpr int64_t kMaxGenerated = int64_t{1} << 31;

Status emit(KernelContext& ctx, size_t index, DType dtype, const std::vector<int64_t>& dims,
            const std::vector<double>& values) {
  if (index >= ctx.num_outputs()) return Status::ok();
  KILN_ASSIGN_OR_RETURN(Tensor t, make_tensor(ctx, dtype, dims, values));
  ctx.set_output(index, std::move(t));
  return Status::ok();
}

StatusOr<double> scalar_value(const KernelContext& ctx, size_t index, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(index));
  if (t->num_elements() != 1) {
    return ctx.error(what + " (input " + std::to_string(index) + ") must hold one element but has shape " +
                     dims_to_string(t->dims()));
  }
  if (t->dtype() == DType::kString) return ctx.unsupported_dtype(t->dtype(), "input " + std::to_string(index));
  return to_doubles(*t)[0];
}

// A one-element integer input (a float input is accepted when it holds an integral value in int64 range).
StatusOr<int64_t> scalar_int(const KernelContext& ctx, size_t index, const std::string& what) {
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(index));
  if (t->num_elements() == 1 && (dtype_is_integer(t->dtype()) || t->dtype() == DType::kBool) &&
      dtype_bits(t->dtype()) % 8 == 0) {
    return to_int64s(*t)[0];
  }
  KILN_ASSIGN_OR_RETURN(double v, scalar_value(ctx, index, what));
  if (!(v >= -9.2e18 && v <= 9.2e18) || std::floor(v) != v) {
    return ctx.error(what + " (input " + std::to_string(index) + ") is " + std::to_string(v) +
                     " but an integer was expected");
  }
  return static_cast<int64_t>(v);
}

StatusOr<DType> dtype_attr(const KernelContext& ctx, const std::string& name, DType def) {
  const int64_t v = ctx.attr_int(name, static_cast<int64_t>(def));
  if (!dtype_is_valid(static_cast<int32_t>(v))) {
    return ctx.error("attribute '" + name + "' = " + std::to_string(v) + " is not a valid ONNX data type");
  }
  return static_cast<DType>(v);
}

// ============================================================================================
// Recurrent layers
// ============================================================================================

struct Activation {
  std::string name;  // lowercase
  double alpha = 0, beta = 0;

  double operator()(double x) const {
    if (name == "sigmoid") return 1 / (1 + std::exp(-x));
    if (name == "tanh") return std::tanh(x);
    if (name == "relu") return x > 0 ? x : 0;
    if (name == "affine") return alpha * x + beta;
    if (name == "leakyrelu") return x >= 0 ? x : alpha * x;
    if (name == "thresholdedrelu") return x > alpha ? x : 0;
    if (name == "scaledtanh") return alpha * std::tanh(beta * x);
    if (name == "hardsigmoid") return std::max(0.0, std::min(1.0, alpha * x + beta));
    if (name == "elu") return x >= 0 ? x : alpha * (std::exp(x) - 1);
    if (name == "softsign") return x / (1 + std::abs(x));
    if (name == "softplus") return std::log1p(std::exp(x));
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
  std::vector<Activation> acts;  // per direction: acts_per_dir entries

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
  if (!is_real_float(x->dtype())) return ctx.unsupported_dtype(x->dtype(), "X (input 0)");
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
    Activation a;
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
                   const Activation& f = s.acts[static_cast<size_t>(d)];
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
                   const Activation& f = s.acts[static_cast<size_t>(d * 2)];
                   const Activation& g = s.acts[static_cast<size_t>(d * 2 + 1)];
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
                   const Activation& f = s.acts[static_cast<size_t>(d * 3)];
                   const Activation& g = s.acts[static_cast<size_t>(d * 3 + 1)];
                   const Activation& hact = s.acts[static_cast<size_t>(d * 3 + 2)];
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

// ============================================================================================
// Signal processing
// ============================================================================================

namespace {

// Generalized cosine window: a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size (periodic) or size - 1.
Status cosine_window(KernelContext& ctx, double a0, double a1, double a2) {
  KILN_ASSIGN_OR_RETURN(int64_t size, scalar_int(ctx, 0, "size"));
  if (size < 0 || size > kMaxGenerated) {
    return ctx.error("size is " + std::to_string(size) + " but a size in [0, 2^31] was expected");
  }
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "output_datatype", DType::kFloat32));
  const bool periodic = ctx.attr_int("periodic", 1) != 0;
  const double n_denom = static_cast<double>(periodic ? size : size - 1);
  std::vector<double> v(static_cast<size_t>(size));
  for (int64_t n = 0; n < size; ++n) {
    const double x = n_denom > 0 ? 2 * kPi * static_cast<double>(n) / n_denom : 0.0;
    v[static_cast<size_t>(n)] = a0 - a1 * std::cos(x) + a2 * std::cos(2 * x);
  }
  return emit(ctx, 0, dt, {size}, v);
}

// cos/sin of -2 pi m / n for m in [0, n): the twiddle factors of a length-n DFT.
struct Twiddles {
  std::vector<double> c, s;
  explicit Twiddles(int64_t n) : c(static_cast<size_t>(n)), s(static_cast<size_t>(n)) {
    for (int64_t m = 0; m < n; ++m) {
      const double ang = -2 * kPi * static_cast<double>(m) / static_cast<double>(n);
      c[static_cast<size_t>(m)] = std::cos(ang);
      s[static_cast<size_t>(m)] = std::sin(ang);
    }
  }
};

// The first n_out bins of a length-n DFT of complex samples (re, im); the inverse uses the conjugate twiddles
// and scales by 1/n.
void dft_line(const Twiddles& tw, const std::vector<double>& re, const std::vector<double>& im, int64_t n, bool inverse,
              int64_t n_out, std::vector<double>& out_re, std::vector<double>& out_im) {
  out_re.assign(static_cast<size_t>(n_out), 0.0);
  out_im.assign(static_cast<size_t>(n_out), 0.0);
  const double sign = inverse ? -1.0 : 1.0;
  for (int64_t k = 0; k < n_out; ++k) {
    double sr = 0, si = 0;
    int64_t m = 0;  // (j * k) mod n
    for (int64_t j = 0; j < n; ++j) {
      const double c = tw.c[static_cast<size_t>(m)], s = sign * tw.s[static_cast<size_t>(m)];
      const double xr = re[static_cast<size_t>(j)], xi = im[static_cast<size_t>(j)];
      sr += xr * c - xi * s;
      si += xr * s + xi * c;
      m += k % n;
      if (m >= n) m -= n;
    }
    if (inverse) {
      sr /= static_cast<double>(n);
      si /= static_cast<double>(n);
    }
    out_re[static_cast<size_t>(k)] = sr;
    out_im[static_cast<size_t>(k)] = si;
  }
}

}  // namespace

Status hann_window_kernel(KernelContext& ctx) { return cosine_window(ctx, 0.5, 0.5, 0.0); }
Status hamming_window_kernel(KernelContext& ctx) { return cosine_window(ctx, 25.0 / 46.0, 21.0 / 46.0, 0.0); }
Status blackman_window_kernel(KernelContext& ctx) { return cosine_window(ctx, 0.42, 0.5, 0.08); }

Status dft_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (!is_real_float(x->dtype())) return ctx.unsupported_dtype(x->dtype());
  const int64_t rank = static_cast<int64_t>(x->rank());
  if (rank < 2 || (x->dims().back() != 1 && x->dims().back() != 2)) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) +
                     " but [..., signal, 1] (real) or [..., signal, 2] (complex) was expected");
  }
  int64_t axis = ctx.attr_int("axis", 1);
  if (ctx.opset() >= 20) {
    axis = -2;
    if (ctx.input(2)) {
      KILN_ASSIGN_OR_RETURN(axis, scalar_int(ctx, 2, "axis"));
    }
  }
  KILN_ASSIGN_OR_RETURN(axis, normalize_axis(ctx, axis, rank));
  if (axis == rank - 1) {
    return ctx.error("axis " + std::to_string(axis) + " is the real/imaginary axis; a signal axis was expected");
  }
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  const bool onesided = ctx.attr_int("onesided", 0) != 0;
  const int64_t len_in = x->dims()[static_cast<size_t>(axis)];
  int64_t n = len_in;
  if (const Tensor* l = ctx.input(1); l && l->num_elements() > 0) {
    KILN_ASSIGN_OR_RETURN(n, scalar_int(ctx, 1, "dft_length"));
    if (n < 1 || n > kMaxGenerated) {
      return ctx.error("dft_length is " + std::to_string(n) + " but a positive length was expected");
    }
  }
  if (n < 1) return ctx.error("the signal axis " + std::to_string(axis) + " is empty and no dft_length was given");
  const Twiddles tw(n);
  const int64_t n_out = onesided ? n / 2 + 1 : n;
  const bool complex_in = x->dims().back() == 2;
  std::vector<int64_t> out_dims = x->dims();
  out_dims[static_cast<size_t>(axis)] = n_out;
  out_dims.back() = 2;
  const auto xv = to_doubles(*x);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x->dims()[static_cast<size_t>(i)];
  for (int64_t i = axis + 1; i < rank - 1; ++i) inner *= x->dims()[static_cast<size_t>(i)];
  const int64_t cin = complex_in ? 2 : 1;
  std::vector<double> out(static_cast<size_t>(outer * n_out * inner * 2), 0.0);
  std::vector<double> re(static_cast<size_t>(n)), im(static_cast<size_t>(n)), ore, oim;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      for (int64_t j = 0; j < n; ++j) {
        if (j < len_in) {
          const size_t base = static_cast<size_t>(((o * len_in + j) * inner + in) * cin);
          re[static_cast<size_t>(j)] = xv[base];
          im[static_cast<size_t>(j)] = complex_in ? xv[base + 1] : 0.0;
        } else {
          re[static_cast<size_t>(j)] = im[static_cast<size_t>(j)] = 0.0;
        }
      }
      dft_line(tw, re, im, n, inverse, n_out, ore, oim);
      for (int64_t k = 0; k < n_out; ++k) {
        const size_t base = static_cast<size_t>(((o * n_out + k) * inner + in) * 2);
        out[base] = ore[static_cast<size_t>(k)];
        out[base + 1] = oim[static_cast<size_t>(k)];
      }
    }
  }
  return emit(ctx, 0, x->dtype(), out_dims, out);
}

Status stft_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* sig, ctx.required_input(0));
  if (!is_real_float(sig->dtype())) return ctx.unsupported_dtype(sig->dtype());
  if (sig->rank() != 3 || (sig->dims()[2] != 1 && sig->dims()[2] != 2)) {
    return ctx.error("signal has shape " + dims_to_string(sig->dims()) +
                     " but [batch, length, 1] or [batch, length, 2] was expected");
  }
  KILN_ASSIGN_OR_RETURN(int64_t step, scalar_int(ctx, 1, "frame_step"));
  if (step < 1) return ctx.error("frame_step is " + std::to_string(step) + " but a positive step was expected");
  const Tensor* window = ctx.input(2);
  int64_t frame_len = -1;
  if (ctx.input(3)) {
    KILN_ASSIGN_OR_RETURN(frame_len, scalar_int(ctx, 3, "frame_length"));
  }
  std::vector<double> win;
  if (window) {
    if (window->rank() != 1)
      return ctx.error("window has shape " + dims_to_string(window->dims()) + " but rank 1 was expected");
    if (frame_len >= 0 && frame_len != window->dims()[0]) {
      return ctx.error("frame_length " + std::to_string(frame_len) + " differs from the window length " +
                       std::to_string(window->dims()[0]));
    }
    frame_len = window->dims()[0];
    win = to_doubles(*window);
  }
  if (frame_len < 1) return ctx.error("needs a window (input 2) or a positive frame_length (input 3)");
  win.resize(static_cast<size_t>(frame_len), 1.0);
  if (!window) std::fill(win.begin(), win.end(), 1.0);
  const int64_t batch = sig->dims()[0], length = sig->dims()[1];
  const bool complex_in = sig->dims()[2] == 2;
  if (frame_len > length) {
    return ctx.error("frame length " + std::to_string(frame_len) + " exceeds the signal length " +
                     std::to_string(length));
  }
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  const int64_t frames = (length - frame_len) / step + 1;
  const Twiddles tw(frame_len);
  const int64_t bins = onesided ? frame_len / 2 + 1 : frame_len;
  const auto sv = to_doubles(*sig);
  const int64_t cin = complex_in ? 2 : 1;
  std::vector<double> out(static_cast<size_t>(batch * frames * bins * 2));
  std::vector<double> re(static_cast<size_t>(frame_len)), im(static_cast<size_t>(frame_len)), ore, oim;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t j = 0; j < frame_len; ++j) {
        const size_t base = static_cast<size_t>((b * length + f * step + j) * cin);
        re[static_cast<size_t>(j)] = sv[base] * win[static_cast<size_t>(j)];
        im[static_cast<size_t>(j)] = complex_in ? sv[base + 1] * win[static_cast<size_t>(j)] : 0.0;
      }
      dft_line(tw, re, im, frame_len, false, bins, ore, oim);
      for (int64_t k = 0; k < bins; ++k) {
        const size_t base = static_cast<size_t>(((b * frames + f) * bins + k) * 2);
        out[base] = ore[static_cast<size_t>(k)];
        out[base + 1] = oim[static_cast<size_t>(k)];
      }
    }
  }
  return emit(ctx, 0, sig->dtype(), {batch, frames, bins, 2}, out);
}

Status mel_weight_matrix_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(int64_t num_mel, scalar_int(ctx, 0, "num_mel_bins"));
  KILN_ASSIGN_OR_RETURN(int64_t dft_len, scalar_int(ctx, 1, "dft_length"));
  KILN_ASSIGN_OR_RETURN(int64_t rate, scalar_int(ctx, 2, "sample_rate"));
  KILN_ASSIGN_OR_RETURN(double lower, scalar_value(ctx, 3, "lower_edge_hertz"));
  KILN_ASSIGN_OR_RETURN(double upper, scalar_value(ctx, 4, "upper_edge_hertz"));
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "output_datatype", DType::kFloat32));
  if (num_mel < 1 || dft_len < 1 || rate < 1) {
    return ctx.error("num_mel_bins, dft_length and sample_rate must be positive (got " + std::to_string(num_mel) +
                     ", " + std::to_string(dft_len) + ", " + std::to_string(rate) + ")");
  }
  if (num_mel > kMaxGenerated / (dft_len / 2 + 1)) return ctx.error("the requested matrix is too large");
  if (lower < 0 || upper < lower) {
    return ctx.error("the edge frequencies must satisfy 0 <= lower_edge_hertz <= upper_edge_hertz");
  }
  const int64_t spec_bins = dft_len / 2 + 1;
  const float low_mel = 2595.0f * std::log10(1.0f + static_cast<float>(lower) / 700.0f);
  const float high_mel = 2595.0f * std::log10(1.0f + static_cast<float>(upper) / 700.0f);
  const float mel_step = (high_mel - low_mel) / static_cast<float>(num_mel + 2);
  std::vector<int64_t> bins(static_cast<size_t>(num_mel + 2));
  for (int64_t i = 0; i < num_mel + 2; ++i) {
    double f = static_cast<double>(i) * static_cast<double>(mel_step) + static_cast<double>(low_mel);
    f = 700.0 * (std::pow(10.0, f / 2595.0) - 1.0);
    bins[static_cast<size_t>(i)] =
        static_cast<int64_t>(std::floor(static_cast<double>(dft_len + 1) * f / static_cast<double>(rate)));
  }
  std::vector<double> out(static_cast<size_t>(spec_bins * num_mel), 0.0);
  auto at = [&](int64_t row, int64_t col) -> double* {
    if (row < 0 || row >= spec_bins) return nullptr;
    return &out[static_cast<size_t>(row * num_mel + col)];
  };
  for (int64_t i = 0; i < num_mel; ++i) {
    const int64_t lo = bins[static_cast<size_t>(i)], center = bins[static_cast<size_t>(i + 1)],
                  hi = bins[static_cast<size_t>(i + 2)];
    const int64_t low_to_center = center - lo;
    if (low_to_center == 0) {
      if (double* p = at(center, i)) *p = 1;
    } else {
      for (int64_t j = lo; j <= center; ++j) {
        if (double* p = at(j, i)) *p = static_cast<double>(j - lo) / static_cast<double>(low_to_center);
      }
    }
    const int64_t center_to_high = hi - center;
    if (center_to_high > 0) {
      for (int64_t j = center; j < hi; ++j) {
        if (double* p = at(j, i)) *p = static_cast<double>(hi - j) / static_cast<double>(center_to_high);
      }
    }
  }
  return emit(ctx, 0, dt, {spec_bins, num_mel}, out);
}

// ============================================================================================
// Random generators (seeded with the 'seed' attribute when present)
// ============================================================================================

namespace {

std::mt19937_64 make_engine(const KernelContext& ctx) {
  const ir::Attribute* a = ctx.attr("seed");
  if (a && a->type == ir::AttrType::kFloat) {
    uint32_t bits = 0;
    std::memcpy(&bits, &a->f, sizeof(bits));
    return std::mt19937_64(bits);
  }
  std::random_device rd;
  return std::mt19937_64((static_cast<uint64_t>(rd()) << 32) ^ rd());
}

StatusOr<std::vector<int64_t>> shape_attr(const KernelContext& ctx) {
  const ir::Attribute* a = ctx.attr("shape");
  if (!a || a->type != ir::AttrType::kInts) return ctx.error("attribute 'shape' is required but missing");
  int64_t n = 1;
  for (int64_t d : a->ints) {
    if (d < 0) return ctx.error("attribute 'shape' " + dims_to_string(a->ints) + " has a negative dimension");
    if (d > 0 && n > kMaxGenerated / d) {
      return ctx.error("attribute 'shape' " + dims_to_string(a->ints) + " has too many elements");
    }
    n *= d;
  }
  return a->ints;
}

int64_t count_of(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

template <typename Gen>
Status random_fill(KernelContext& ctx, DType dt, const std::vector<int64_t>& dims, Gen gen) {
  if (!is_real_float(dt)) return ctx.unsupported_dtype(dt, "the requested output dtype");
  std::vector<double> v(static_cast<size_t>(count_of(dims)));
  for (auto& e : v) e = gen();
  return emit(ctx, 0, dt, dims, v);
}

Status random_normal(KernelContext& ctx, DType dt, const std::vector<int64_t>& dims) {
  auto eng = make_engine(ctx);
  std::normal_distribution<double> dist(ctx.attr_float("mean", 0.0f), ctx.attr_float("scale", 1.0f));
  return random_fill(ctx, dt, dims, [&] { return dist(eng); });
}

Status random_uniform(KernelContext& ctx, DType dt, const std::vector<int64_t>& dims) {
  auto eng = make_engine(ctx);
  const double low = ctx.attr_float("low", 0.0f), high = ctx.attr_float("high", 1.0f);
  if (high < low) return ctx.error("attribute 'high' is below 'low'");
  std::uniform_real_distribution<double> dist(low, high);
  return random_fill(ctx, dt, dims, [&] { return dist(eng); });
}

}  // namespace

Status random_normal_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", DType::kFloat32));
  KILN_ASSIGN_OR_RETURN(auto dims, shape_attr(ctx));
  return random_normal(ctx, dt, dims);
}

Status random_uniform_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", DType::kFloat32));
  KILN_ASSIGN_OR_RETURN(auto dims, shape_attr(ctx));
  return random_uniform(ctx, dt, dims);
}

Status random_normal_like_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", x->dtype()));
  return random_normal(ctx, dt, x->dims());
}

Status random_uniform_like_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", x->dtype()));
  return random_uniform(ctx, dt, x->dims());
}

Status bernoulli_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (!is_real_float(x->dtype())) return ctx.unsupported_dtype(x->dtype());
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", x->dtype()));
  if (dt == DType::kString) return ctx.unsupported_dtype(dt, "the requested output dtype");
  auto eng = make_engine(ctx);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto p = to_doubles(*x);
  std::vector<double> v(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    if (!(p[i] >= 0 && p[i] <= 1)) {
      return ctx.error("probability " + std::to_string(p[i]) + " at index " + std::to_string(i) + " is outside [0, 1]");
    }
    v[i] = u(eng) < p[i] ? 1.0 : 0.0;
  }
  return emit(ctx, 0, dt, x->dims(), v);
}

Status multinomial_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (!is_real_float(x->dtype())) return ctx.unsupported_dtype(x->dtype());
  if (x->rank() != 2) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) + " but [batch_size, class_size] was expected");
  }
  KILN_ASSIGN_OR_RETURN(DType dt, dtype_attr(ctx, "dtype", DType::kInt32));
  if (dt != DType::kInt32 && dt != DType::kInt64) {
    return ctx.error(std::string("attribute 'dtype' is ") + dtype_name(dt) + " but int32 or int64 was expected");
  }
  const int64_t samples = ctx.attr_int("sample_size", 1);
  if (samples < 0) return ctx.error("attribute 'sample_size' is negative");
  const int64_t batch = x->dims()[0], classes = x->dims()[1];
  if (classes < 1) return ctx.error("class_size is 0; at least one class was expected");
  auto eng = make_engine(ctx);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  auto lp = to_doubles(*x);
  std::vector<double> out(static_cast<size_t>(batch * samples));
  std::vector<double> cdf(static_cast<size_t>(classes));
  for (int64_t b = 0; b < batch; ++b) {
    double mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, lp[static_cast<size_t>(b * classes + c)]);
    double acc = 0;
    for (int64_t c = 0; c < classes; ++c) {
      acc += std::exp(lp[static_cast<size_t>(b * classes + c)] - mx);
      cdf[static_cast<size_t>(c)] = acc;
    }
    for (int64_t s = 0; s < samples; ++s) {
      const double r = u(eng) * acc;
      int64_t c = 0;
      while (c < classes - 1 && cdf[static_cast<size_t>(c)] <= r) ++c;
      out[static_cast<size_t>(b * samples + s)] = static_cast<double>(c);
    }
  }
  return emit(ctx, 0, dt, {batch, samples}, out);
}

// ============================================================================================
// Text
// ============================================================================================

namespace {

std::string ascii_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string ascii_upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Status string_normalizer_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (x->dtype() != DType::kString) return ctx.unsupported_dtype(x->dtype());
  const bool two_d = x->rank() == 2;
  if (!(x->rank() == 1 || (two_d && x->dims()[0] == 1))) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) + " but [C] or [1, C] was expected");
  }
  const std::string action = ctx.attr_string("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER") {
    return ctx.error("attribute 'case_change_action' is '" + action + "' but NONE, LOWER or UPPER was expected");
  }
  const bool case_sensitive = ctx.attr_int("is_case_sensitive", 0) != 0;
  std::vector<std::string> stop;
  if (const auto* a = ctx.attr("stopwords"); a && a->type == ir::AttrType::kStrings) stop = a->strings;
  if (!case_sensitive) {
    for (auto& s : stop) s = ascii_lower(s);
  }
  std::vector<std::string> out;
  for (const auto& s : x->strings()) {
    const std::string key = case_sensitive ? s : ascii_lower(s);
    if (std::find(stop.begin(), stop.end(), key) != stop.end()) continue;
    out.push_back(action == "LOWER" ? ascii_lower(s) : action == "UPPER" ? ascii_upper(s) : s);
  }
  if (out.empty()) out.push_back("");
  const int64_t n = static_cast<int64_t>(out.size());
  ctx.set_output(0, Tensor::from_strings(two_d ? std::vector<int64_t>{1, n} : std::vector<int64_t>{n}, std::move(out)));
  return Status::ok();
}

Status tfidf_vectorizer_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  const bool strings = x->dtype() == DType::kString;
  if (!strings && x->dtype() != DType::kInt32 && x->dtype() != DType::kInt64) {
    return ctx.unsupported_dtype(x->dtype());
  }
  if (x->rank() != 1 && x->rank() != 2) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) + " but [C] or [N, C] was expected");
  }
  const int64_t min_n = ctx.attr_int("min_gram_length", 1), max_n = ctx.attr_int("max_gram_length", 1);
  const int64_t max_skip = ctx.attr_int("max_skip_count", 0);
  const std::string mode = ctx.attr_string("mode", "TF");
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF") {
    return ctx.error("attribute 'mode' is '" + mode + "' but TF, IDF or TFIDF was expected");
  }
  if (min_n < 1 || max_n < min_n || max_skip < 0) {
    return ctx.error("needs 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0");
  }
  const std::vector<int64_t> counts = ctx.attr_ints("ngram_counts");
  const std::vector<int64_t> indexes = ctx.attr_ints("ngram_indexes");
  const std::vector<float> weights = ctx.attr_floats("weights");
  std::vector<std::string> pool_s;
  std::vector<int64_t> pool_i = ctx.attr_ints("pool_int64s");
  if (const auto* a = ctx.attr("pool_strings"); a && a->type == ir::AttrType::kStrings) pool_s = a->strings;
  if (strings && pool_s.empty() && !pool_i.empty()) return ctx.error("string input needs 'pool_strings'");
  const int64_t pool_size = static_cast<int64_t>(strings ? pool_s.size() : pool_i.size());

  // Items as strings (integers printed) so that one map serves both kinds.
  auto item_of_pool = [&](int64_t k) {
    return strings ? pool_s[static_cast<size_t>(k)] : std::to_string(pool_i[static_cast<size_t>(k)]);
  };
  std::map<std::vector<std::string>, int64_t> ngram_to_out;  // n-gram -> output index
  std::map<int64_t, double> out_weight;
  int64_t ngram_id = 0;
  for (size_t level = 0; level < counts.size(); ++level) {
    const int64_t n = static_cast<int64_t>(level) + 1;
    const int64_t start = counts[level];
    const int64_t end = level + 1 < counts.size() ? counts[level + 1] : pool_size;
    if (start < 0 || end > pool_size || end < start || (end - start) % n != 0) {
      return ctx.error("attribute 'ngram_counts' does not split the pool into whole " + std::to_string(n) + "-grams");
    }
    for (int64_t k = start; k < end; k += n, ++ngram_id) {
      if (ngram_id >= static_cast<int64_t>(indexes.size())) {
        return ctx.error("attribute 'ngram_indexes' has fewer entries than the pool has n-grams");
      }
      std::vector<std::string> g;
      for (int64_t m = 0; m < n; ++m) g.push_back(item_of_pool(k + m));
      const int64_t oi = indexes[static_cast<size_t>(ngram_id)];
      ngram_to_out[g] = oi;
      out_weight[oi] = static_cast<size_t>(ngram_id) < weights.size() ? weights[static_cast<size_t>(ngram_id)] : 1.0;
    }
  }
  int64_t out_size = 0;
  for (int64_t i : indexes) {
    if (i < 0) return ctx.error("attribute 'ngram_indexes' has a negative entry");
    out_size = std::max(out_size, i + 1);
  }
  const int64_t rows = x->rank() == 2 ? x->dims()[0] : 1;
  const int64_t cols = x->rank() == 2 ? x->dims()[1] : x->dims()[0];
  std::vector<std::string> items(static_cast<size_t>(rows * cols));
  if (strings) {
    items = x->strings();
  } else {
    auto v = to_int64s(*x);
    for (size_t i = 0; i < v.size(); ++i) items[i] = std::to_string(v[i]);
  }
  std::vector<double> out(static_cast<size_t>(rows * out_size), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const std::string* row = &items[static_cast<size_t>(r * cols)];
    for (int64_t skip = 0; skip <= max_skip; ++skip) {
      const int64_t dist = skip + 1;
      // Unigrams are counted once (skips do not change them).
      const int64_t first_n = dist > 1 ? std::max<int64_t>(min_n, 2) : min_n;
      for (int64_t start = 0; start < cols; ++start) {
        std::vector<std::string> g;
        for (int64_t n = 1; n <= max_n; ++n) {
          const int64_t pos = start + (n - 1) * dist;
          if (pos >= cols) break;
          g.push_back(row[pos]);
          if (n < first_n) continue;
          auto it = ngram_to_out.find(g);
          if (it != ngram_to_out.end()) out[static_cast<size_t>(r * out_size + it->second)] += 1;
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < out_size; ++i) {
      double& v = out[static_cast<size_t>(r * out_size + i)];
      auto w = out_weight.find(i);
      const double weight = w == out_weight.end() ? 1.0 : w->second;
      if (mode == "IDF")
        v = v > 0 ? weight : 0;
      else if (mode == "TFIDF")
        v *= weight;
    }
  }
  return emit(ctx, 0, DType::kFloat32,
              x->rank() == 2 ? std::vector<int64_t>{rows, out_size} : std::vector<int64_t>{out_size}, out);
}

// ============================================================================================
// Training optimizers (ai.onnx.preview.training)
// ============================================================================================

namespace {

// Reads R, T and `groups` equally long lists of tensors (X, G, ...), checking shapes and dtypes.
struct OptimizerInputs {
  double r = 0;
  int64_t t = 0;
  size_t n = 0;
  std::vector<std::vector<const Tensor*>> groups;
};

StatusOr<OptimizerInputs> optimizer_inputs(const KernelContext& ctx, size_t groups) {
  OptimizerInputs in;
  KILN_ASSIGN_OR_RETURN(in.r, scalar_value(ctx, 0, "the learning rate R"));
  KILN_ASSIGN_OR_RETURN(in.t, scalar_int(ctx, 1, "the update count T"));
  if (ctx.num_inputs() < 2 || (ctx.num_inputs() - 2) % groups != 0) {
    return ctx.error("has " + std::to_string(ctx.num_inputs()) + " inputs but R, T and " + std::to_string(groups) +
                     " equally long lists of tensors were expected");
  }
  in.n = (ctx.num_inputs() - 2) / groups;
  in.groups.assign(groups, {});
  for (size_t g = 0; g < groups; ++g) {
    for (size_t i = 0; i < in.n; ++i) {
      const size_t idx = 2 + g * in.n + i;
      KILN_ASSIGN_OR_RETURN(const Tensor* tt, ctx.required_input(idx));
      if (!is_real_float(tt->dtype())) return ctx.unsupported_dtype(tt->dtype(), "input " + std::to_string(idx));
      const Tensor* x = g == 0 ? tt : in.groups[0][i];
      if (tt->dims() != x->dims()) {
        return ctx.error("input " + std::to_string(idx) + " has shape " + dims_to_string(tt->dims()) +
                         " but the matching X has shape " + dims_to_string(x->dims()));
      }
      in.groups[g].push_back(tt);
    }
  }
  return in;
}

}  // namespace

Status adagrad_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(OptimizerInputs in, optimizer_inputs(ctx, 3));
  const double decay = ctx.attr_float("decay_factor", 0.0f);
  const double eps = ctx.attr_float("epsilon", 1e-6f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const double r = in.r / (1 + static_cast<double>(in.t) * decay);
  for (size_t i = 0; i < in.n; ++i) {
    const Tensor& xt = *in.groups[0][i];
    auto x = to_doubles(xt), g = to_doubles(*in.groups[1][i]), h = to_doubles(*in.groups[2][i]);
    std::vector<double> xn(x.size()), hn(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      hn[k] = h[k] + gr * gr;
      xn[k] = x[k] - r * gr / (std::sqrt(hn[k]) + eps);
    }
    KILN_RETURN_IF_ERROR(emit(ctx, i, xt.dtype(), xt.dims(), xn));
    KILN_RETURN_IF_ERROR(emit(ctx, in.n + i, in.groups[2][i]->dtype(), xt.dims(), hn));
  }
  return Status::ok();
}

Status momentum_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(OptimizerInputs in, optimizer_inputs(ctx, 3));
  const double alpha = ctx.attr_float("alpha", 0.0f);
  const double beta = ctx.attr_float("beta", 0.0f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const std::string mode = ctx.attr_string("mode", "standard");
  if (mode != "standard" && mode != "nesterov") {
    return ctx.error("attribute 'mode' is '" + mode + "' but standard or nesterov was expected");
  }
  const double beta_adj = in.t > 0 ? beta : 1.0;
  for (size_t i = 0; i < in.n; ++i) {
    const Tensor& xt = *in.groups[0][i];
    auto x = to_doubles(xt), g = to_doubles(*in.groups[1][i]), v = to_doubles(*in.groups[2][i]);
    std::vector<double> xn(x.size()), vn(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      vn[k] = alpha * v[k] + beta_adj * gr;
      xn[k] = mode == "nesterov" ? x[k] - in.r * (gr + alpha * vn[k]) : x[k] - in.r * vn[k];
    }
    KILN_RETURN_IF_ERROR(emit(ctx, i, xt.dtype(), xt.dims(), xn));
    KILN_RETURN_IF_ERROR(emit(ctx, in.n + i, in.groups[2][i]->dtype(), xt.dims(), vn));
  }
  return Status::ok();
}

Status adam_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(OptimizerInputs in, optimizer_inputs(ctx, 4));
  const double alpha = ctx.attr_float("alpha", 0.9f);
  const double beta = ctx.attr_float("beta", 0.999f);
  const double eps = ctx.attr_float("epsilon", 1e-6f);
  const double norm = ctx.attr_float("norm_coefficient", 0.0f);
  const double norm_post = ctx.attr_float("norm_coefficient_post", 0.0f);
  const double t = static_cast<double>(in.t);
  const double r = in.t > 0 ? in.r * std::sqrt(1 - std::pow(beta, t)) / (1 - std::pow(alpha, t)) : in.r;
  for (size_t i = 0; i < in.n; ++i) {
    const Tensor& xt = *in.groups[0][i];
    auto x = to_doubles(xt), g = to_doubles(*in.groups[1][i]), v = to_doubles(*in.groups[2][i]),
         h = to_doubles(*in.groups[3][i]);
    std::vector<double> xn(x.size()), vn(x.size()), hn(x.size());
    for (size_t k = 0; k < x.size(); ++k) {
      const double gr = norm * x[k] + g[k];
      vn[k] = alpha * v[k] + (1 - alpha) * gr;
      hn[k] = beta * h[k] + (1 - beta) * gr * gr;
      xn[k] = (1 - norm_post) * (x[k] - r * vn[k] / (std::sqrt(hn[k]) + eps));
    }
    KILN_RETURN_IF_ERROR(emit(ctx, i, xt.dtype(), xt.dims(), xn));
    KILN_RETURN_IF_ERROR(emit(ctx, in.n + i, in.groups[2][i]->dtype(), xt.dims(), vn));
    KILN_RETURN_IF_ERROR(emit(ctx, 2 * in.n + i, in.groups[3][i]->dtype(), xt.dims(), hn));
  }
  return Status::ok();
}

}  // namespace kiln::cpu
