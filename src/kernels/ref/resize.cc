// Resampling: Resize, Upsample, GridSample.
// Reference kernels: every input is read as double, computed with plain loops and written back in the output
// dtype (float16/bfloat16 round through float32).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"
#include "kernels/ref/nn_util.h"
#include "kernels/ref/resize.h"

namespace kiln::cpu {

using namespace nn;

// ---------------------------------------------------------------- Resize / Upsample

namespace {

struct ResizeOpts {
  std::string mode = "nearest", coord = "half_pixel", nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75, extrapolation = 0.0;
  bool exclude_outside = false, antialias = false;
};

using Taps = ResizeTaps;

double cubic_w(double s, double A) {
  s = std::fabs(s);
  if (s <= 1) return ((A + 2) * s - (A + 3)) * s * s + 1;
  if (s < 2) return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A;
  return 0;
}

// Interpolation taps for output coordinate o along one axis.
Taps resize_taps(const ResizeOpts& opt, int64_t o, int64_t in, int64_t out, double scale, double roi_lo,
                 double roi_hi) {
  Taps t;
  const double x = static_cast<double>(o);
  const double out_w = scale * static_cast<double>(in);
  double xo = 0;
  const std::string& c = opt.coord;
  if (c == "align_corners") {
    xo = out_w == 1 ? 0.0 : x * static_cast<double>(in - 1) / (out_w - 1);
  } else if (c == "asymmetric") {
    xo = x / scale;
  } else if (c == "tf_crop_and_resize") {
    xo = out_w == 1 ? (roi_hi - roi_lo) * static_cast<double>(in - 1) / 2
                    : x * (roi_hi - roi_lo) * static_cast<double>(in - 1) / (out_w - 1);
    xo += roi_lo * static_cast<double>(in - 1);
    if (xo < 0 || xo > static_cast<double>(in - 1)) {
      t.extrapolate = true;
      return t;
    }
  } else if (c == "pytorch_half_pixel") {
    xo = out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
  } else if (c == "half_pixel_symmetric") {
    const double adj = static_cast<double>(out) / out_w;
    const double center = static_cast<double>(in) / 2;
    xo = center * (1 - adj) + (x + 0.5) / scale - 0.5;
  } else if (c == "tf_half_pixel_for_nn") {
    xo = (x + 0.5) / scale;
  } else {  // half_pixel
    xo = (x + 0.5) / scale - 0.5;
  }
  auto clampi = [&](int64_t i) { return std::min(in - 1, std::max<int64_t>(0, i)); };
  const double fl = std::floor(xo);
  const bool integer = xo == fl;
  const int64_t base = integer ? static_cast<int64_t>(fl) - 1 : static_cast<int64_t>(fl);
  const double ratio = integer ? 1.0 : xo - fl;
  if (opt.mode == "nearest") {
    if (integer) {
      t.idx.push_back(clampi(static_cast<int64_t>(fl)));
    } else {
      bool up = false;
      const std::string& m = opt.nearest_mode;
      if (m == "round_prefer_ceil")
        up = ratio >= 0.5;
      else if (m == "floor")
        up = false;
      else if (m == "ceil")
        up = true;
      else if (m == "simple")
        up = scale < 1;  // opset-10 Resize / Upsample: ceil when downsampling, else floor
      else
        up = ratio > 0.5;
      t.idx.push_back(clampi(base + (up ? 1 : 0)));
    }
    t.w.push_back(1.0);
    return t;
  }
  const bool cubic = opt.mode == "cubic";
  if (opt.antialias && scale < 1) {
    const double support = (cubic ? 2.0 : 1.0) / scale;
    const int64_t lo = static_cast<int64_t>(std::ceil(xo - support)),
                  hi = static_cast<int64_t>(std::floor(xo + support));
    double sum = 0;
    for (int64_t i = lo; i <= hi; ++i) {
      const double d = (static_cast<double>(i) - xo) * scale;
      double w = cubic ? cubic_w(d, opt.cubic_a) : std::max(0.0, 1 - std::fabs(d));
      if ((i < 0 || i >= in) && opt.exclude_outside) w = 0;
      if (w == 0) continue;
      t.idx.push_back(clampi(i));
      t.w.push_back(w);
      sum += w;
    }
    for (double& w : t.w) w = sum != 0 ? w / sum : 0;
    return t;
  }
  Vec coeffs;
  int64_t first;
  if (cubic) {
    const double A = opt.cubic_a, r = ratio;
    coeffs = {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A, ((A + 2) * r - (A + 3)) * r * r + 1,
              ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
              ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A};
    first = base - 1;
  } else {
    coeffs = {1 - ratio, ratio};
    first = base;
  }
  double sum = 0;
  for (size_t k = 0; k < coeffs.size(); ++k) {
    const int64_t i = first + static_cast<int64_t>(k);
    if (opt.exclude_outside && (i < 0 || i >= in)) coeffs[k] = 0;
    sum += coeffs[k];
  }
  for (size_t k = 0; k < coeffs.size(); ++k) {
    t.idx.push_back(clampi(first + static_cast<int64_t>(k)));
    t.w.push_back(opt.exclude_outside && sum != 0 ? coeffs[k] / sum : coeffs[k]);
  }
  return t;
}

// The taps of every output index along every axis.
Status make_resize_plan(const KernelContext& ctx, const Tensor& x, const ResizeOpts& opt, const Vec& scales,
                        const Dims& out, const Vec& roi, ResizePlan& plan) {
  const size_t r = x.rank();
  KILN_RETURN_IF_ERROR(ctx.check_output_size(0, x.dtype(), out));
  if (x.num_elements() == 0 && product(out) != 0) {
    return ctx.error("input X of shape " + dstr(x.dims()) + " is empty but the output " + dstr(out) + " is not");
  }
  plan.taps.assign(r, {});
  for (size_t d = 0; d < r; ++d) {
    const double lo = roi.size() == 2 * r ? roi[d] : 0.0, hi = roi.size() == 2 * r ? roi[r + d] : 1.0;
    for (int64_t o = 0; o < out[d]; ++o) {
      plan.taps[d].push_back(resize_taps(opt, o, x.dims()[d], out[d], scales[d], lo, hi));
    }
  }
  plan.out = out;
  plan.extrapolation = opt.extrapolation;
  plan.any_extrapolation = false;
  for (const auto& axis : plan.taps) {
    for (const auto& t : axis) plan.any_extrapolation = plan.any_extrapolation || t.extrapolate;
  }
  return Status::ok();
}

// Interpolates on doubles, summing over every tap combination per output element.
Status resize_run(KernelContext& ctx, const Tensor& x, const ResizePlan& plan) {
  const size_t r = x.rank();
  const auto& taps = plan.taps;
  const Dims& out = plan.out;
  Vec xv = to_doubles(x), y(static_cast<size_t>(product(out)), 0.0);
  auto xs = strides_of(x.dims());
  Dims oi(r, 0);
  for (size_t i = 0; i < y.size(); ++i, next_index(oi, out)) {
    bool extra = false;
    Dims sizes(r);
    for (size_t d = 0; d < r; ++d) {
      const Taps& t = taps[d][static_cast<size_t>(oi[d])];
      if (t.extrapolate) extra = true;
      sizes[d] = static_cast<int64_t>(t.idx.size());
    }
    if (extra) {
      y[i] = plan.extrapolation;
      continue;
    }
    double s = 0;
    Dims ki(r, 0);
    const int64_t nk = product(sizes);
    for (int64_t k = 0; k < nk; ++k, next_index(ki, sizes)) {
      double w = 1;
      int64_t off = 0;
      for (size_t d = 0; d < r; ++d) {
        const Taps& t = taps[d][static_cast<size_t>(oi[d])];
        w *= t.w[static_cast<size_t>(ki[d])];
        off += t.idx[static_cast<size_t>(ki[d])] * xs[d];
      }
      s += w * xv[static_cast<size_t>(off)];
    }
    y[i] = s;
  }
  if (!is_float_dtype(x.dtype())) {
    for (double& v : y) v = std::nearbyint(v);
  }
  return write_output(ctx, 0, x.dtype(), out, y);
}

Status check_mode(const KernelContext& ctx, const ResizeOpts& o) {
  if (o.mode != "nearest" && o.mode != "linear" && o.mode != "cubic" && o.mode != "bilinear" && o.mode != "trilinear") {
    return ctx.error("unsupported mode '" + o.mode + "' (expected nearest, linear or cubic)");
  }
  static const char* coords[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",  "align_corners",
                                 "asymmetric", "tf_crop_and_resize",   "tf_half_pixel_for_nn"};
  if (std::find_if(std::begin(coords), std::end(coords), [&](const char* c) { return o.coord == c; }) ==
      std::end(coords)) {
    return ctx.error("unsupported coordinate_transformation_mode '" + o.coord + "'");
  }
  static const char* nm[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "simple"};
  if (std::find_if(std::begin(nm), std::end(nm), [&](const char* c) { return o.nearest_mode == c; }) == std::end(nm)) {
    return ctx.error("unsupported nearest_mode '" + o.nearest_mode + "'");
  }
  return Status::ok();
}

Status scales_to_sizes(const KernelContext& ctx, const Tensor& x, const Vec& scales, Dims& out) {
  if (scales.size() != x.rank()) {
    return ctx.error("scales has " + std::to_string(scales.size()) + " values; expected one per input dimension (" +
                     std::to_string(x.rank()) + ")");
  }
  out.resize(x.rank());
  for (size_t d = 0; d < x.rank(); ++d) {
    if (!(scales[d] > 0)) return ctx.error("scales must be positive");
    out[d] = static_cast<int64_t>(std::floor(scales[d] * static_cast<double>(x.dims()[d]) + 1e-9));
  }
  return Status::ok();
}

Status resize_args(const KernelContext& ctx, ResizePlan& plan) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *x, "input 0 (X)"));
  ResizeOpts opt;
  opt.mode = ctx.attr_string("mode", "nearest");
  const size_t r = x->rank();
  Vec scales(r, 1.0), roi;
  Dims out;
  if (ctx.opset() < 11) {
    opt.coord = "asymmetric";
    opt.nearest_mode = "simple";
    KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(1));
    scales = to_doubles(*s);
    KILN_RETURN_IF_ERROR(scales_to_sizes(ctx, *x, scales, out));
  } else {
    opt.coord = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
    opt.nearest_mode = ctx.attr_string("nearest_mode", "round_prefer_floor");
    opt.cubic_a = ctx.attr_float("cubic_coeff_a", -0.75f);
    opt.exclude_outside = ctx.attr_int("exclude_outside", 0) != 0;
    opt.extrapolation = ctx.attr_float("extrapolation_value", 0.0f);
    opt.antialias = ctx.attr_int("antialias", 0) != 0;
    Dims axes = ctx.attr_ints("axes", {});
    if (axes.empty()) {
      for (size_t d = 0; d < r; ++d) axes.push_back(static_cast<int64_t>(d));
    }
    for (int64_t& a : axes) {
      KILN_ASSIGN_OR_RETURN(a, normalize_axis(ctx, a, static_cast<int64_t>(r)));
    }
    const Tensor* roi_t = ctx.input(1);
    const Tensor* sc_t = ctx.input(2);
    const Tensor* sz_t = ctx.input(3);
    if (sc_t && sc_t->num_elements() == 0) sc_t = nullptr;
    if (sz_t && sz_t->num_elements() == 0) sz_t = nullptr;
    if ((sc_t != nullptr) == (sz_t != nullptr)) return ctx.error("exactly one of scales and sizes must be given");
    if (roi_t && roi_t->num_elements() > 0) {
      Vec rv = to_doubles(*roi_t);
      if (rv.size() != 2 * axes.size()) {
        return ctx.error("roi has " + std::to_string(rv.size()) + " values; expected " +
                         std::to_string(2 * axes.size()));
      }
      roi.assign(2 * r, 0.0);
      for (size_t d = 0; d < r; ++d) roi[r + d] = 1.0;
      for (size_t k = 0; k < axes.size(); ++k) {
        roi[static_cast<size_t>(axes[k])] = rv[k];
        roi[r + static_cast<size_t>(axes[k])] = rv[axes.size() + k];
      }
    }
    out = x->dims();
    if (sc_t) {
      Vec sv = to_doubles(*sc_t);
      if (sv.size() != axes.size()) {
        return ctx.error("scales has " + std::to_string(sv.size()) + " values; expected " +
                         std::to_string(axes.size()));
      }
      for (size_t k = 0; k < axes.size(); ++k) scales[static_cast<size_t>(axes[k])] = sv[k];
      KILN_RETURN_IF_ERROR(scales_to_sizes(ctx, *x, scales, out));
    } else {
      Dims sv = to_int64s(*sz_t);
      if (sv.size() != axes.size()) {
        return ctx.error("sizes has " + std::to_string(sv.size()) + " values; expected " + std::to_string(axes.size()));
      }
      const std::string policy = ctx.attr_string("keep_aspect_ratio_policy", "stretch");
      if (policy == "stretch") {
        for (size_t k = 0; k < axes.size(); ++k) {
          const size_t a = static_cast<size_t>(axes[k]);
          if (sv[k] <= 0) return ctx.error("sizes must be positive");
          out[a] = sv[k];
          scales[a] = static_cast<double>(sv[k]) / static_cast<double>(x->dims()[a]);
        }
      } else if (policy == "not_larger" || policy == "not_smaller") {
        double s = policy == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
        for (size_t k = 0; k < axes.size(); ++k) {
          const double v = static_cast<double>(sv[k]) / static_cast<double>(x->dims()[static_cast<size_t>(axes[k])]);
          s = policy == "not_larger" ? std::min(s, v) : std::max(s, v);
        }
        for (int64_t a : axes) {
          scales[static_cast<size_t>(a)] = s;
          out[static_cast<size_t>(a)] =
              static_cast<int64_t>(std::round(s * static_cast<double>(x->dims()[static_cast<size_t>(a)])));
        }
      } else {
        return ctx.error("unknown keep_aspect_ratio_policy '" + policy + "'");
      }
    }
  }
  if (opt.mode == "bilinear" || opt.mode == "trilinear") opt.mode = "linear";
  KILN_RETURN_IF_ERROR(check_mode(ctx, opt));
  return make_resize_plan(ctx, *x, opt, scales, out, roi, plan);
}

Status upsample_args(const KernelContext& ctx, ResizePlan& plan) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *x, "input 0 (X)"));
  ResizeOpts opt;
  opt.mode = ctx.attr_string("mode", "nearest");
  opt.coord = "asymmetric";
  opt.nearest_mode = "simple";
  Vec scales;
  if (ctx.opset() >= 9) {
    KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(1));
    scales = to_doubles(*s);
  } else {
    for (float f : ctx.attr_floats("scales", {})) scales.push_back(f);
  }
  Dims out;
  KILN_RETURN_IF_ERROR(scales_to_sizes(ctx, *x, scales, out));
  if (opt.mode == "bilinear" || opt.mode == "trilinear") opt.mode = "linear";
  KILN_RETURN_IF_ERROR(check_mode(ctx, opt));
  return make_resize_plan(ctx, *x, opt, scales, out, {}, plan);
}

}  // namespace

Status resize_plan(const KernelContext& ctx, ResizePlan& plan) {
  return ctx.node().op_type == "Upsample" ? upsample_args(ctx, plan) : resize_args(ctx, plan);
}

Status resize_kernel(KernelContext& ctx) {
  ResizePlan plan;
  KILN_RETURN_IF_ERROR(resize_plan(ctx, plan));
  return resize_run(ctx, *ctx.input(0), plan);
}

Status upsample_kernel(KernelContext& ctx) { return resize_kernel(ctx); }

// ---------------------------------------------------------------- GridSample

namespace {

double gs_reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const int64_t n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const int64_t n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

}  // namespace

Status gridsample_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* grid, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  if (x->rank() != 4) return ctx.error("input X must be 4-D (N, C, H, W), got " + dstr(x->dims()));
  if (grid->rank() != 4 || grid->dims()[3] != 2 || grid->dims()[0] != x->dims()[0]) {
    return ctx.error("grid must have shape (N, H_out, W_out, 2) with N = " + std::to_string(x->dims()[0]) + ", got " +
                     dstr(grid->dims()));
  }
  std::string mode = ctx.attr_string("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  if (mode == "linear") mode = "bilinear";
  if (mode == "cubic") mode = "bicubic";
  if (mode != "bilinear" && mode != "nearest" && mode != "bicubic") return ctx.error("unsupported mode '" + mode + "'");
  const std::string pad = ctx.attr_string("padding_mode", "zeros");
  if (pad != "zeros" && pad != "border" && pad != "reflection") {
    return ctx.error("unsupported padding_mode '" + pad + "'");
  }
  const bool align = ctx.attr_int("align_corners", 0) != 0;
  const int64_t N = x->dims()[0], C = x->dims()[1], H = x->dims()[2], W = x->dims()[3];
  const int64_t Ho = grid->dims()[1], Wo = grid->dims()[2];
  if ((H == 0 || W == 0) && N * C * Ho * Wo != 0) return ctx.error("input X has an empty spatial dimension");
  Vec xv = to_doubles(*x), gv = to_doubles(*grid), y(static_cast<size_t>(N * C * Ho * Wo));
  const double bx0 = align ? 0 : -0.5, by0 = align ? 0 : -0.5;
  const double bx1 = align ? static_cast<double>(W - 1) : static_cast<double>(W) - 0.5;
  const double by1 = align ? static_cast<double>(H - 1) : static_cast<double>(H) - 0.5;
  auto denorm = [&](double v, int64_t len) {
    return align ? (v + 1) / 2 * static_cast<double>(len - 1) : ((v + 1) * static_cast<double>(len) - 1) / 2;
  };
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double* img = xv.data() + (n * C + c) * H * W;
      auto pixel = [&](int64_t px, int64_t py) -> double {
        if (pad == "zeros") {
          if (px < 0 || px >= W || py < 0 || py >= H) return 0.0;
        } else if (pad == "border") {
          px = std::min(W - 1, std::max<int64_t>(0, px));
          py = std::min(H - 1, std::max<int64_t>(0, py));
        } else {
          px = static_cast<int64_t>(gs_reflect(static_cast<double>(px), bx0, bx1));
          py = static_cast<int64_t>(gs_reflect(static_cast<double>(py), by0, by1));
          px = std::min(W - 1, std::max<int64_t>(0, px));
          py = std::min(H - 1, std::max<int64_t>(0, py));
        }
        return img[py * W + px];
      };
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          const size_t gi = static_cast<size_t>(((n * Ho + i) * Wo + j) * 2);
          double gx = denorm(gv[gi], W), gy = denorm(gv[gi + 1], H);
          if (mode != "bicubic") {
            if (pad == "border") {
              gx = std::min(static_cast<double>(W - 1), std::max(0.0, gx));
              gy = std::min(static_cast<double>(H - 1), std::max(0.0, gy));
            } else if (pad == "reflection") {
              gx = gs_reflect(gx, bx0, bx1);
              gy = gs_reflect(gy, by0, by1);
            }
          }
          double v = 0;
          if (mode == "nearest") {
            v = pixel(static_cast<int64_t>(std::nearbyint(gx)), static_cast<int64_t>(std::nearbyint(gy)));
          } else if (mode == "bilinear") {
            const double fx = std::floor(gx), fy = std::floor(gy);
            const int64_t x1 = static_cast<int64_t>(fx), y1 = static_cast<int64_t>(fy);
            const double dx = gx - fx, dy = gy - fy;
            v = (1 - dy) * ((1 - dx) * pixel(x1, y1) + dx * pixel(x1 + 1, y1)) +
                dy * ((1 - dx) * pixel(x1, y1 + 1) + dx * pixel(x1 + 1, y1 + 1));
          } else {
            const double fx = std::floor(gx), fy = std::floor(gy);
            const int64_t x0 = static_cast<int64_t>(fx) - 1, y0 = static_cast<int64_t>(fy) - 1;
            const double tx = gx - fx, ty = gy - fy;
            auto coeffs = [](double t) {
              const double A = -0.75;
              return std::vector<double>{cubic_w(t + 1, A), cubic_w(t, A), cubic_w(1 - t, A), cubic_w(2 - t, A)};
            };
            Vec cx = coeffs(tx), cy = coeffs(ty);
            for (int64_t a = 0; a < 4; ++a) {
              double row = 0;
              for (int64_t b = 0; b < 4; ++b) row += cx[static_cast<size_t>(b)] * pixel(x0 + b, y0 + a);
              v += cy[static_cast<size_t>(a)] * row;
            }
          }
          y[static_cast<size_t>(((n * C + c) * Ho + i) * Wo + j)] = v;
        }
    }
  return write_output(ctx, 0, x->dtype(), {N, C, Ho, Wo}, y);
}

}  // namespace kiln::cpu
