// kiln quantize: calibration, ranges and the QDQ model (include/kiln/quantize/quantize.h).
#include "kiln/quantize/quantize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "kiln/ir/builder.h"
#include "kiln/optimizer/optimizer.h"
#include "kiln/runtime/session.h"
#include "optimizer/graph_util.h"

namespace kiln::quant {
namespace {

using opt::constant_tensor;
using opt::is_onnx;

// Fresh names for what the QDQ model adds, made once for the whole graph (opt::fresh_name scans it on each call).
class Names {
 public:
  explicit Names(const ir::Graph& g) {
    for (const auto& n : g.nodes) {
      used_.insert(n.name);
      for (const auto& o : n.outputs) used_.insert(o);
      for (const auto& i : n.inputs) used_.insert(i);
    }
    for (const auto& i : g.initializers) used_.insert(i.name);
    for (const auto& i : g.inputs) used_.insert(i.name);
    for (const auto& o : g.outputs) used_.insert(o.name);
  }
  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
    used_.insert(name);
    return name;
  }
  std::string initializer(ir::Graph& g, const std::string& base, Tensor t) {
    std::string name = fresh(base);
    g.initializers.push_back(ir::NamedTensor{name, std::move(t), "", true, ""});
    return name;
  }

 private:
  std::set<std::string> used_;
};

constexpr int kBins = 2048;

std::string node_label(const ir::Node& n, size_t i) { return n.name.empty() ? "#" + std::to_string(i) : n.name; }

bool excluded(const Options& o, const ir::Node& n, size_t i) {
  const std::string label = node_label(n, i);
  return std::find(o.exclude.begin(), o.exclude.end(), label) != o.exclude.end();
}

// A quantizable node of the static mode: Conv with constant float32 W (rank >= 3), or MatMul by a constant 2-D
// float32 B. `why` says why a Conv/MatMul is not.
bool quantizable(const ir::Graph& g, const ir::Node& n, std::string& why) {
  const bool conv = is_onnx(n, "Conv");
  if (!conv && !is_onnx(n, "MatMul")) return false;
  if (n.inputs.size() < 2 || n.outputs.empty()) return false;
  const Tensor* w = constant_tensor(g, n.inputs[1]);
  if (!w || w->dtype() != DType::kFloat32) {
    why = "its weights are not a float32 constant";
    return false;
  }
  if (conv ? w->rank() < 3 : w->rank() != 2) {
    why = "its weights have rank " + std::to_string(w->rank());
    return false;
  }
  if (conv && n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const Tensor* b = constant_tensor(g, n.inputs[2]);
    if (!b || b->dtype() != DType::kFloat32) {
      why = "its bias is not a float32 constant";
      return false;
    }
  }
  return true;
}

// A Clip whose lower bound is 0 (ReLU6): quantized after it, like a Relu.
bool clip_from_zero(const ir::Model& m, const ir::Node& n) {
  if (!is_onnx(n, "Clip")) return false;
  const auto bounds = opt::clip_bounds(m, n);
  return bounds && bounds->first == 0.0f;
}

// What calibration collects for one tensor.
struct Stats {
  float min = std::numeric_limits<float>::infinity(), max = -std::numeric_limits<float>::infinity();
  std::vector<double> hist;  // pass 2: |x| over [0, max_abs] (symmetric) or x over [min, max]
};

void add_minmax(Stats& s, const Tensor& t) {
  const float* p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (std::isfinite(p[i])) {
      s.min = std::min(s.min, p[i]);
      s.max = std::max(s.max, p[i]);
    }
  }
}

void add_histogram(Stats& s, const Tensor& t, bool of_abs) {
  if (s.hist.empty()) s.hist.assign(kBins, 0.0);
  const double lo = of_abs ? 0.0 : s.min;
  const double hi = of_abs ? std::max(std::abs(s.min), std::abs(s.max)) : s.max;
  const double width = (hi - lo) / kBins;
  if (!(width > 0)) return;
  const float* p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (!std::isfinite(p[i])) continue;
    const double v = of_abs ? std::abs(p[i]) : p[i];
    const auto b = static_cast<int64_t>((v - lo) / width);
    s.hist[static_cast<size_t>(std::clamp<int64_t>(b, 0, kBins - 1))] += 1;
  }
}

// The value below which `fraction` of the histogram's mass lies (bins over [lo, lo + width * bins)).
double histogram_quantile(const std::vector<double>& hist, double lo, double width, double fraction) {
  double total = 0;
  for (double h : hist) total += h;
  double seen = 0;
  for (size_t i = 0; i < hist.size(); ++i) {
    seen += hist[i];
    if (seen >= fraction * total) return lo + width * static_cast<double>(i + 1);
  }
  return lo + width * static_cast<double>(hist.size());
}

struct QParams {
  float scale = 1;
  int32_t zero_point = 0;
};

QParams activation_params(float lo, float hi, bool symmetric) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  QParams q;
  if (symmetric) {
    const float a = std::max(std::abs(lo), std::abs(hi));
    q.scale = a > 0 ? a / 127.0f : 1.0f;
    return q;
  }
  q.scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  q.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / q.scale), 0.0f, 255.0f));
  return q;
}

Tensor scalar(float v) { return Tensor::from_vector<float>({}, {v}); }

Tensor zero_point_tensor(int32_t zp, bool symmetric) {
  return symmetric ? Tensor::from_vector<int8_t>({}, {static_cast<int8_t>(zp)})
                   : Tensor::from_vector<uint8_t>({}, {static_cast<uint8_t>(zp)});
}

// Symmetric int8 weights: per channel along `axis` (0 or 1 of a 2-D+ tensor) or per tensor. Returns the scales.
std::vector<float> quantize_weights(const Tensor& w, int64_t axis, bool per_channel, int qmax, Tensor& q) {
  const std::vector<int64_t>& d = w.dims();
  const int64_t channels = per_channel ? d[static_cast<size_t>(axis)] : 1;
  const int64_t inner = axis == 0 ? w.num_elements() / std::max<int64_t>(d[0], 1) : 1;
  auto channel_of = [&](int64_t i) -> int64_t {
    if (!per_channel) return 0;
    return axis == 0 ? i / inner : i % d[1];
  };
  std::vector<float> amax(static_cast<size_t>(channels), 0.0f);
  const float* p = w.data<float>();
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    float& a = amax[static_cast<size_t>(channel_of(i))];
    a = std::max(a, std::abs(p[i]));
  }
  std::vector<float> scales(amax.size());
  for (size_t c = 0; c < amax.size(); ++c) scales[c] = amax[c] > 0 ? amax[c] / static_cast<float>(qmax) : 1.0f;
  q = Tensor::allocate(DType::kInt8, d).value();
  for (int64_t i = 0; i < w.num_elements(); ++i) {
    const float v = std::nearbyint(p[i] / scales[static_cast<size_t>(channel_of(i))]);
    q.data<int8_t>()[i] = static_cast<int8_t>(std::clamp(v, static_cast<float>(-qmax), static_cast<float>(qmax)));
  }
  return scales;
}

Tensor float_vector(const std::vector<float>& v) {
  return v.size() == 1 ? scalar(v[0]) : Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
}

// A session of `model` with its values `names` added as graph outputs (float32, shape unknown).
StatusOr<std::unique_ptr<Session>> session_with_outputs(const ir::Model& model, const std::vector<std::string>& names,
                                                        int optimization_level) {
  ir::Model m = model;
  std::set<std::string> present;
  for (const auto& o : m.graph.outputs) present.insert(o.name);
  for (const auto& n : names) {
    if (!present.count(n)) {
      m.graph.outputs.push_back(ir::helper::make_tensor_value_info(n, DType::kFloat32, std::nullopt));
    }
  }
  SessionOptions so;
  so.optimization_level = optimization_level;
  return Session::create(std::move(m), so);
}

// The values `names` of batch `b` (float32 each; an error names the tensor that is not).
StatusOr<std::vector<Tensor>> run_batch(Session& session, const std::vector<std::string>& names,
                                        const std::vector<Feeds>& batches, size_t b) {
  auto out = session.run(batches[b], names);
  if (!out.is_ok()) return out.status().with_context("calibration batch " + std::to_string(b + 1));
  for (size_t i = 0; i < names.size(); ++i) {
    if ((*out)[i].dtype() != DType::kFloat32) {
      return invalid_argument("tensor '" + names[i] + "' is " + dtype_name((*out)[i].dtype()) +
                              "; only float32 tensors are quantized");
    }
  }
  return out;
}

// The model as the quantizer reads it: constants folded (exporters write Constant nodes and share weights through
// Identity nodes), identities removed and BatchNormalization folded into the convolutions before it.
StatusOr<ir::Model> prepared(const ir::Model& model) {
  ir::Model m = model;
  for (const char* pass : {"fold_constants", "eliminate_identity", "fold_conv_bn", "eliminate_dead_nodes"}) {
    KILN_RETURN_IF_ERROR(opt::run_pass(m, pass).status());
  }
  return m;
}

}  // namespace

double entropy_threshold(const std::vector<double>& histogram, double max_abs, int levels) {
  const int n = static_cast<int>(histogram.size());
  if (n <= levels || max_abs <= 0) return max_abs;
  std::vector<double> bins = histogram;
  bins[0] = bins[1];
  const double width = max_abs / n;
  double best_kl = std::numeric_limits<double>::infinity();
  int best = n;
  std::vector<double> p, q;
  for (int i = levels; i <= n; ++i) {
    // P: the first i bins, the outliers added to the last; Q: those i bins merged into `levels` levels, each level's
    // mass spread over its bins that were not empty.
    p.assign(bins.begin(), bins.begin() + i);
    double outliers = 0;
    for (int k = i; k < n; ++k) outliers += bins[static_cast<size_t>(k)];
    p.back() += outliers;
    q.assign(static_cast<size_t>(i), 0.0);
    const double per = static_cast<double>(i) / levels;
    for (int l = 0; l < levels; ++l) {
      const int a = static_cast<int>(std::floor(l * per)),
                e = l == levels - 1 ? i : static_cast<int>(std::floor((l + 1) * per));
      double mass = 0;
      int nonzero = 0;
      for (int k = a; k < e; ++k) {
        mass += bins[static_cast<size_t>(k)];
        nonzero += bins[static_cast<size_t>(k)] != 0;
      }
      for (int k = a; k < e; ++k) {
        if (bins[static_cast<size_t>(k)] != 0) q[static_cast<size_t>(k)] = mass / nonzero;
      }
    }
    double sp = 0, sq = 0;
    for (int k = 0; k < i; ++k) {
      sp += p[static_cast<size_t>(k)];
      sq += q[static_cast<size_t>(k)];
    }
    if (sp <= 0 || sq <= 0) continue;
    double kl = 0;
    for (int k = 0; k < i; ++k) {
      const double pk = p[static_cast<size_t>(k)] / sp;
      if (pk <= 0) continue;
      const double qk = q[static_cast<size_t>(k)] / sq;
      kl += qk > 0 ? pk * std::log(pk / qk) : pk * std::log(pk / 1e-12);  // an empty Q bin where P has mass
    }
    if (kl < best_kl) {
      best_kl = kl;
      best = i;
    }
  }
  return (best + 0.5) * width;
}

StatusOr<Report> quantize_static(const ir::Model& source, const std::vector<Feeds>& batches, const Options& options,
                                 ir::Model& out) {
  if (batches.empty()) return invalid_argument("no calibration data: at least one batch is needed");
  KILN_ASSIGN_OR_RETURN(const ir::Model model, prepared(source));
  const int64_t opset = model.opset("").value_or(0);
  if (opset < 10) return invalid_argument("the model is opset " + std::to_string(opset) + "; QuantizeLinear needs 10");
  if (options.per_channel && opset < 13) {
    return invalid_argument("per-channel weights need opset 13 (DequantizeLinear's axis); the model is opset " +
                            std::to_string(opset) + ": export it with opset_version=13 or more, or drop --per-channel");
  }
  const ir::Graph& g = model.graph;
  opt::GraphView view(g);
  Report report;
  // The quantized nodes, and per node the tensors whose ranges it needs: its input, and its output (through a
  // Relu or Clip from 0 that alone reads it: its output, so that fuse_qdq finds Conv -> Relu -> QuantizeLinear).
  std::vector<size_t> nodes;
  std::vector<std::string> tensors;
  auto want = [&](const std::string& t) {
    if (std::find(tensors.begin(), tensors.end(), t) == tensors.end()) tensors.push_back(t);
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    std::string why;
    if (!quantizable(g, n, why)) {
      if (!why.empty()) report.skipped.push_back(node_label(n, i) + ": " + why);
      continue;
    }
    if (excluded(options, n, i)) {
      report.skipped.push_back(node_label(n, i) + ": excluded");
      continue;
    }
    nodes.push_back(i);
    report.quantized.push_back(node_label(n, i));
    want(n.inputs[0]);
    std::string y = n.outputs[0];
    const int r = view.single_reader(y);
    if (r >= 0 &&
        (is_onnx(g.nodes[static_cast<size_t>(r)], "Relu") || clip_from_zero(model, g.nodes[static_cast<size_t>(r)]))) {
      y = g.nodes[static_cast<size_t>(r)].outputs[0];
    }
    // A graph output that no node reads stays float: its QuantizeLinear/DequantizeLinear pair would only add error.
    if (!view.is_graph_output(y) || !view.readers(y).empty()) want(y);
  }
  if (nodes.empty())
    return invalid_argument("the model has no Conv or MatMul with constant float32 weights to quantize");

  // Calibration: min/max, then (entropy, percentile) a histogram over that range.
  std::map<std::string, Stats> stats;
  const bool histograms = options.method != Method::kMinMax;
  KILN_ASSIGN_OR_RETURN(auto session, session_with_outputs(model, tensors, 99));
  for (size_t b = 0; b < batches.size(); ++b) {
    KILN_ASSIGN_OR_RETURN(const std::vector<Tensor> values, run_batch(*session, tensors, batches, b));
    for (size_t k = 0; k < tensors.size(); ++k) add_minmax(stats[tensors[k]], values[k]);
    if (options.progress) options.progress(1, b + 1, batches.size());
  }
  const bool abs_hist = options.method == Method::kEntropy || options.symmetric_activations;
  for (size_t b = 0; histograms && b < batches.size(); ++b) {
    KILN_ASSIGN_OR_RETURN(const std::vector<Tensor> values, run_batch(*session, tensors, batches, b));
    for (size_t k = 0; k < tensors.size(); ++k) add_histogram(stats[tensors[k]], values[k], abs_hist);
    if (options.progress) options.progress(2, b + 1, batches.size());
  }
  // report.ranges[k] is tensors[k]'s.
  for (const std::string& name : tensors) {
    const Stats& s = stats[name];
    TensorRange r;
    r.name = name;
    r.min = std::isfinite(s.min) ? s.min : 0.0f;
    r.max = std::isfinite(s.max) ? s.max : 0.0f;
    r.lo = r.min;
    r.hi = r.max;
    const double max_abs = std::max(std::abs(r.min), std::abs(r.max));
    if (options.method == Method::kEntropy && !s.hist.empty()) {
      const double t = entropy_threshold(s.hist, max_abs, r.min >= 0 ? 256 : 128);
      r.lo = std::max(r.min, static_cast<float>(-t));
      r.hi = std::min(r.max, static_cast<float>(t));
    } else if (options.method == Method::kPercentile && !s.hist.empty()) {
      const double f = std::clamp(options.percentile / 100.0, 0.0, 1.0);
      if (abs_hist) {
        const double t = histogram_quantile(s.hist, 0.0, max_abs / kBins, f);
        r.lo = std::max(r.min, static_cast<float>(-t));
        r.hi = std::min(r.max, static_cast<float>(t));
      } else {
        const double w = (static_cast<double>(r.max) - r.min) / kBins;
        r.lo = static_cast<float>(histogram_quantile(s.hist, r.min, w, 1.0 - f));
        r.hi = static_cast<float>(histogram_quantile(s.hist, r.min, w, f));
      }
    }
    const QParams q = activation_params(r.lo, r.hi, options.symmetric_activations);
    r.scale = q.scale;
    r.zero_point = q.zero_point;
    report.ranges.push_back(r);
  }

  // The QDQ model: a QuantizeLinear/DequantizeLinear pair after each calibrated tensor's producer, its readers
  // reading the dequantized value; int8 weights and int32 biases behind DequantizeLinear.
  out = model;
  ir::Graph& og = out.graph;
  std::map<std::string, std::string> dequantized;      // tensor -> its DequantizeLinear output
  std::map<std::string, std::vector<ir::Node>> after;  // producer output (or "" for graph inputs) -> nodes
  Names names(og);
  std::map<std::string, float> scale_of;
  for (TensorRange& r : report.ranges) {
    const std::string& t = r.name;
    scale_of[t] = r.scale;
    const std::string s = names.initializer(og, t + "_scale", scalar(r.scale));
    const std::string z =
        names.initializer(og, t + "_zero_point", zero_point_tensor(r.zero_point, options.symmetric_activations));
    const std::string tq = names.fresh(t + "_quantized"), td = names.fresh(t + "_dequantized");
    dequantized[t] = td;
    r.dequantized = td;
    const std::string key = view.producer(t) >= 0 ? t : "";
    after[key].push_back(ir::helper::make_node("QuantizeLinear", {t, s, z}, {tq}, tq));
    after[key].push_back(ir::helper::make_node("DequantizeLinear", {tq, s, z}, {td}, td));
  }
  // Readers of a calibrated tensor read its dequantized value (its own QuantizeLinear excepted).
  for (auto& n : og.nodes) {
    for (auto& in : n.inputs) {
      auto it = dequantized.find(in);
      if (it != dequantized.end()) in = it->second;
    }
  }
  const int qmax = options.reduce_range ? 64 : 127;
  std::vector<ir::Node> weight_nodes;
  for (size_t i : nodes) {
    ir::Node& n = og.nodes[i];
    const bool conv = is_onnx(n, "Conv");
    const Tensor& w = *constant_tensor(og, model.graph.nodes[i].inputs[1]);
    Tensor wq;
    const int64_t axis = conv ? 0 : 1;
    const std::vector<float> ws = quantize_weights(w, axis, options.per_channel, qmax, wq);
    const std::string base = model.graph.nodes[i].inputs[1];
    const std::string wq_name = names.initializer(og, base + "_quantized", std::move(wq));
    const std::string ws_name = names.initializer(og, base + "_scale", float_vector(ws));
    const std::string wd = names.fresh(base + "_dequantized");
    // DequantizeLinear's axis exists from opset 13 (per-channel needs it; per-tensor leaves it out).
    std::vector<ir::Attribute> axis_attr;
    if (options.per_channel) axis_attr.push_back(ir::helper::make_attribute("axis", axis));
    weight_nodes.push_back(ir::helper::make_node("DequantizeLinear", {wq_name, ws_name}, {wd}, wd, axis_attr));
    n.inputs[1] = wd;
    if (conv && n.inputs.size() > 2 && !n.inputs[2].empty()) {
      const Tensor& b = *constant_tensor(og, model.graph.nodes[i].inputs[2]);
      const float xs = scale_of.at(model.graph.nodes[i].inputs[0]);
      std::vector<int32_t> bq(static_cast<size_t>(b.num_elements()));
      std::vector<float> bs(bq.size());
      for (size_t m = 0; m < bq.size(); ++m) {
        bs[m] = xs * ws[ws.size() == 1 ? 0 : m];
        const double v = std::nearbyint(static_cast<double>(b.data<float>()[m]) / bs[m]);
        bq[m] = static_cast<int32_t>(std::clamp(v, -2147483647.0, 2147483647.0));
      }
      const std::string b_base = model.graph.nodes[i].inputs[2];
      const std::string bq_name = names.initializer(
          og, b_base + "_quantized", Tensor::from_vector<int32_t>({static_cast<int64_t>(bq.size())}, bq));
      const std::string bs_name =
          names.initializer(og, b_base + "_scale", ws.size() == 1 ? scalar(bs[0]) : float_vector(bs));
      const std::string bd = names.fresh(b_base + "_dequantized");
      std::vector<ir::Attribute> b_axis;
      if (options.per_channel) b_axis.push_back(ir::helper::make_attribute("axis", int64_t{0}));
      weight_nodes.push_back(ir::helper::make_node("DequantizeLinear", {bq_name, bs_name}, {bd}, bd, b_axis));
      n.inputs[2] = bd;
    }
  }
  // Node order: weights' DequantizeLinear and the graph inputs' pairs first, then each node followed by the pairs
  // of its outputs.
  std::vector<ir::Node> ordered = std::move(weight_nodes);
  for (auto& n : after[""]) ordered.push_back(std::move(n));
  for (auto& n : og.nodes) {
    std::vector<std::string> outs = n.outputs;
    ordered.push_back(std::move(n));
    for (const auto& o : outs) {
      auto it = after.find(o);
      if (it == after.end() || o.empty()) continue;
      for (auto& q : it->second) ordered.push_back(std::move(q));
    }
  }
  og.nodes = std::move(ordered);
  KILN_RETURN_IF_ERROR(opt::run_pass(out, "eliminate_dead_nodes").status());  // the float weights now unread
  return report;
}

StatusOr<Report> quantize_dynamic(const ir::Model& source, const Options& options, ir::Model& out) {
  KILN_ASSIGN_OR_RETURN(const ir::Model model, prepared(source));
  const int64_t opset = model.opset("").value_or(0);
  if (opset < 11) {
    return invalid_argument("the model is opset " + std::to_string(opset) + "; DynamicQuantizeLinear needs 11");
  }
  out = model;
  ir::Graph& g = out.graph;
  Names names(g);
  Report report;
  const int qmax = options.reduce_range ? 64 : 127;
  std::map<std::string, std::array<std::string, 3>> quantized_a;  // A -> (A uint8, its scale, its zero point)
  std::vector<ir::Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    const bool matmul = is_onnx(n, "MatMul"), gemm = is_onnx(n, "Gemm");
    const Tensor* b = (matmul || gemm) && n.inputs.size() >= 2 ? constant_tensor(g, n.inputs[1]) : nullptr;
    bool fits = b && b->dtype() == DType::kFloat32 && b->rank() == 2 && !n.outputs.empty();
    if (fits && gemm) {
      fits = opt::attr_int(n, "transA", 0) == 0 && opt::attr_float(n, "alpha", 1.0f) == 1.0f &&
             opt::attr_float(n, "beta", 1.0f) == 1.0f;
    }
    if (!fits || excluded(options, n, i)) {
      if (fits) report.skipped.push_back(node_label(n, i) + ": excluded");
      nodes.push_back(std::move(n));
      continue;
    }
    report.quantized.push_back(node_label(n, i));
    Tensor kn = *b;  // B as [K, N]
    if (gemm && opt::attr_int(n, "transB", 0) != 0) {
      const int64_t N = b->dims()[0], K = b->dims()[1];
      kn = Tensor::allocate(DType::kFloat32, {K, N}).value();
      for (int64_t r = 0; r < N; ++r)
        for (int64_t c = 0; c < K; ++c) kn.data<float>()[c * N + r] = b->data<float>()[r * K + c];
    }
    Tensor bq;
    const std::vector<float> bs = quantize_weights(kn, 1, options.per_channel, qmax, bq);
    const std::string label = node_label(n, i);
    const std::string bq_name = names.initializer(g, n.inputs[1] + "_quantized", std::move(bq));
    const std::string bs_name = names.initializer(g, n.inputs[1] + "_scale", float_vector(bs));
    const std::string a = n.inputs[0];
    auto qa = quantized_a.find(a);
    if (qa == quantized_a.end()) {
      const std::array<std::string, 3> outs{names.fresh(a + "_quantized"), names.fresh(a + "_scale"),
                                            names.fresh(a + "_zero_point")};
      nodes.push_back(ir::helper::make_node("DynamicQuantizeLinear", {a}, {outs[0], outs[1], outs[2]},
                                            names.fresh(a + "_dynamic_quantize")));
      qa = quantized_a.emplace(a, outs).first;
    }
    const auto& [aq, as, az] = qa->second;
    const std::string prod = names.fresh(label + "_int32"), prod_f = names.fresh(label + "_float"),
                      scale = names.fresh(label + "_output_scale");
    nodes.push_back(
        ir::helper::make_node("MatMulInteger", {aq, bq_name, az}, {prod}, names.fresh(label + "_matmul_integer")));
    nodes.push_back(ir::helper::make_node("Cast", {prod}, {prod_f}, names.fresh(label + "_cast"),
                                          {ir::helper::make_attribute("to", static_cast<int64_t>(DType::kFloat32))}));
    nodes.push_back(ir::helper::make_node("Mul", {as, bs_name}, {scale}, names.fresh(label + "_scale_mul")));
    const bool bias = gemm && n.inputs.size() > 2 && !n.inputs[2].empty();
    const std::string y = n.outputs[0];
    const std::string scaled = bias ? names.fresh(label + "_scaled") : y;
    nodes.push_back(ir::helper::make_node("Mul", {prod_f, scale}, {scaled}, names.fresh(label + "_rescale")));
    if (bias) nodes.push_back(ir::helper::make_node("Add", {scaled, n.inputs[2]}, {y}, names.fresh(label + "_bias")));
  }
  if (report.quantized.empty()) {
    return invalid_argument("the model has no MatMul or Gemm with a constant 2-D float32 B to quantize");
  }
  g.nodes = std::move(nodes);
  KILN_RETURN_IF_ERROR(opt::run_pass(out, "eliminate_dead_nodes").status());  // the float weights now unread
  return report;
}

Status report_errors(const ir::Model& model, const ir::Model& quantized, const std::vector<Feeds>& batches,
                     Report& report) {
  std::vector<std::string> fp32_names, q_names;
  for (const auto& r : report.ranges) {
    if (r.dequantized.empty()) continue;
    fp32_names.push_back(r.name);
    q_names.push_back(r.dequantized);
  }
  // Batch by batch, side by side. The QDQ graph runs as written (level 0): the fusions would remove the dequantized
  // values compared here.
  KILN_ASSIGN_OR_RETURN(auto fp32_session, session_with_outputs(model, fp32_names, 99));
  KILN_ASSIGN_OR_RETURN(auto q_session, session_with_outputs(quantized, q_names, 0));
  std::vector<double> diff(fp32_names.size(), 0.0), norm(fp32_names.size(), 0.0);
  for (size_t b = 0; b < batches.size(); ++b) {
    KILN_ASSIGN_OR_RETURN(const std::vector<Tensor> f, run_batch(*fp32_session, fp32_names, batches, b));
    KILN_ASSIGN_OR_RETURN(const std::vector<Tensor> q, run_batch(*q_session, q_names, batches, b));
    for (size_t k = 0; k < f.size(); ++k) {
      if (q[k].num_elements() != f[k].num_elements()) continue;
      for (int64_t i = 0; i < q[k].num_elements(); ++i) {
        const double fv = f[k].data<float>()[i], d = q[k].data<float>()[i] - fv;
        diff[k] += d * d;
        norm[k] += fv * fv;
      }
    }
  }
  for (size_t k = 0, r = 0; r < report.ranges.size(); ++r) {
    if (report.ranges[r].dequantized.empty()) continue;
    report.ranges[r].error = norm[k] > 0 ? std::sqrt(diff[k] / norm[k]) : std::sqrt(diff[k]);
    ++k;
  }
  return Status::ok();
}

}  // namespace kiln::quant
