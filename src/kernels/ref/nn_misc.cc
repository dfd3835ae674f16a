// Other neural-network operators: Col2Im, MaxUnpool, RoiAlign, NonMaxSuppression, the losses, Det.
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

// ---------------------------------------------------------------- Col2Im, MaxUnpool

Status col2im_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* img_t, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(const Tensor* blk_t, ctx.required_input(2));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *x, "input 0 (input)"));
  const Dims img = to_int64s(*img_t), blk = to_int64s(*blk_t);
  const size_t nsp = img.size();
  if (blk.size() != nsp || nsp == 0) return ctx.error("image_shape and block_shape must have the same non-zero length");
  if (x->rank() != 3) return ctx.error("input must be 3-D (N, C*prod(block_shape), L), got " + dstr(x->dims()));
  const Dims dil = ctx.attr_ints("dilations", Dims(nsp, 1)), str = ctx.attr_ints("strides", Dims(nsp, 1));
  const Dims pads = ctx.attr_ints("pads", Dims(2 * nsp, 0));
  if (dil.size() != nsp || str.size() != nsp || pads.size() != 2 * nsp) {
    return ctx.error("dilations/strides/pads do not match the number of spatial dimensions");
  }
  const int64_t bsz = product(blk);
  const int64_t N = x->dims()[0];
  if (bsz <= 0 || x->dims()[1] % bsz != 0) {
    return ctx.error("input dimension 1 (" + std::to_string(x->dims()[1]) +
                     ") must be a multiple of prod(block_shape) = " + std::to_string(bsz));
  }
  const int64_t C = x->dims()[1] / bsz;
  Dims nb(nsp);
  for (size_t d = 0; d < nsp; ++d) {
    if (str[d] <= 0 || dil[d] <= 0) return ctx.error("strides and dilations must be positive");
    nb[d] = (img[d] + pads[d] + pads[nsp + d] - (dil[d] * (blk[d] - 1) + 1)) / str[d] + 1;
  }
  const int64_t L = product(nb);
  if (x->dims()[2] != L) {
    return ctx.error("input dimension 2 is " + std::to_string(x->dims()[2]) + "; expected " + std::to_string(L) +
                     " sliding blocks");
  }
  const int64_t isz = product(img);
  auto istr = strides_of(img);
  Vec xv = to_doubles(*x), y(static_cast<size_t>(N * C * isz), 0.0);
  Dims bi(nsp), li(nsp);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      std::fill(bi.begin(), bi.end(), 0);
      for (int64_t b = 0; b < bsz; ++b, next_index(bi, blk)) {
        std::fill(li.begin(), li.end(), 0);
        for (int64_t l = 0; l < L; ++l, next_index(li, nb)) {
          int64_t off = 0;
          bool inside = true;
          for (size_t d = 0; d < nsp; ++d) {
            const int64_t p = li[d] * str[d] - pads[d] + bi[d] * dil[d];
            if (p < 0 || p >= img[d]) {
              inside = false;
              break;
            }
            off += p * istr[d];
          }
          if (inside) {
            y[static_cast<size_t>((n * C + c) * isz + off)] +=
                xv[static_cast<size_t>((n * C * bsz + c * bsz + b) * L + l)];
          }
        }
      }
    }
  Dims od{N, C};
  od.insert(od.end(), img.begin(), img.end());
  return write_output(ctx, 0, x->dtype(), od, y);
}

Status maxunpool_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* ind, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *x, "input 0 (X)"));
  if (x->rank() < 3) return ctx.error("input X must have rank >= 3, got " + dstr(x->dims()));
  if (ind->dims() != x->dims()) {
    return ctx.error("input I has shape " + dstr(ind->dims()) + "; expected the shape of X " + dstr(x->dims()));
  }
  const size_t nsp = x->rank() - 2;
  ConvGeom g;
  g.in.assign(x->dims().begin() + 2, x->dims().end());
  if (!ctx.attr("kernel_shape")) return ctx.error("attribute kernel_shape is required");
  KILN_RETURN_IF_ERROR(read_window_attrs(ctx, nsp, {}, g));
  Dims inferred{x->dims()[0], x->dims()[1]};
  for (size_t d = 0; d < nsp; ++d) {
    inferred.push_back((g.in[d] - 1) * g.strides[d] + g.kernel[d] - g.pad_begin[d] - g.pad_end[d]);
  }
  Dims od = inferred;
  if (const Tensor* os = ctx.input(2)) {
    Dims v = to_int64s(*os);
    if (v.size() != x->rank()) return ctx.error("output_shape must have " + std::to_string(x->rank()) + " values");
    od = v;
  }
  KILN_RETURN_IF_ERROR(ctx.check_output_size(0, x->dtype(), od));
  // Indices address the inferred (default) output; they are re-laid out into output_shape when given.
  const auto istr = strides_of(inferred), ostr = strides_of(od);
  const int64_t total = product(inferred);
  Vec xv = to_doubles(*x), y(static_cast<size_t>(product(od)), 0.0);
  Dims iv = to_int64s(*ind);
  for (size_t i = 0; i < xv.size(); ++i) {
    if (iv[i] < 0 || iv[i] >= total) {
      return ctx.error("index " + std::to_string(iv[i]) + " in I is out of range for the unpooled shape " +
                       dstr(inferred));
    }
    int64_t off = 0;
    bool inside = true;
    for (size_t d = 0; d < od.size(); ++d) {
      const int64_t c = (iv[i] / istr[d]) % inferred[d];
      if (c >= od[d]) inside = false;
      off += c * ostr[d];
    }
    if (inside) y[static_cast<size_t>(off)] = xv[i];
  }
  return write_output(ctx, 0, x->dtype(), od, y);
}

// ---------------------------------------------------------------- RoiAlign

Status roialign_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* rois_t, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(const Tensor* bi_t, ctx.required_input(2));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  if (x->rank() != 4) return ctx.error("input X must be 4-D, got " + dstr(x->dims()));
  if (rois_t->rank() != 2 || rois_t->dims()[1] != 4) {
    return ctx.error("rois must have shape (num_rois, 4), got " + dstr(rois_t->dims()));
  }
  const int64_t R = rois_t->dims()[0];
  if (bi_t->num_elements() != R) return ctx.error("batch_indices must have num_rois elements");
  const std::string mode = ctx.attr_string("mode", "avg");
  const int64_t oh = ctx.attr_int("output_height", 1), ow = ctx.attr_int("output_width", 1);
  const int64_t sr = ctx.attr_int("sampling_ratio", 0);
  const double ss = ctx.attr_float("spatial_scale", 1.0f);
  const std::string ctm =
      ctx.attr_string("coordinate_transformation_mode", ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel");
  const double off = ctm == "half_pixel" ? 0.5 : 0.0;
  const int64_t N = x->dims()[0], C = x->dims()[1], H = x->dims()[2], W = x->dims()[3];
  if ((H == 0 || W == 0) && R * C != 0) return ctx.error("input X has an empty spatial dimension");
  if (oh <= 0 || ow <= 0) return ctx.error("output_height and output_width must be positive");
  Vec xv = to_doubles(*x), rv = to_doubles(*rois_t), y(static_cast<size_t>(R * C * oh * ow));
  Dims bidx = to_int64s(*bi_t);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = bidx[static_cast<size_t>(r)];
    if (b < 0 || b >= N) return ctx.error("batch_indices value " + std::to_string(b) + " is out of range");
    const double x1 = rv[static_cast<size_t>(r * 4)] * ss - off, y1 = rv[static_cast<size_t>(r * 4 + 1)] * ss - off;
    const double x2 = rv[static_cast<size_t>(r * 4 + 2)] * ss - off, y2 = rv[static_cast<size_t>(r * 4 + 3)] * ss - off;
    double rw = x2 - x1, rh = y2 - y1;
    if (ctm != "half_pixel") {
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    const double bh = rh / static_cast<double>(oh), bw = rw / static_cast<double>(ow);
    const int64_t gh = sr > 0 ? sr : static_cast<int64_t>(std::ceil(rh / static_cast<double>(oh)));
    const int64_t gw = sr > 0 ? sr : static_cast<int64_t>(std::ceil(rw / static_cast<double>(ow)));
    const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
    for (int64_t c = 0; c < C; ++c) {
      const double* img = xv.data() + (b * C + c) * H * W;
      for (int64_t ph = 0; ph < oh; ++ph)
        for (int64_t pw = 0; pw < ow; ++pw) {
          double acc = 0;
          bool first = true;
          for (int64_t iy = 0; iy < gh; ++iy) {
            double yy =
                y1 + static_cast<double>(ph) * bh + (static_cast<double>(iy) + 0.5) * bh / static_cast<double>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              double xx =
                  x1 + static_cast<double>(pw) * bw + (static_cast<double>(ix) + 0.5) * bw / static_cast<double>(gw);
              double val = 0;
              double w1 = 0, w2 = 0, w3 = 0, w4 = 0;
              int64_t yl = 0, xl = 0, yh = 0, xh = 0;
              bool valid = !(yy < -1.0 || yy > static_cast<double>(H) || xx < -1.0 || xx > static_cast<double>(W));
              if (valid) {
                double py = std::max(yy, 0.0), px = std::max(xx, 0.0);
                yl = static_cast<int64_t>(py);
                xl = static_cast<int64_t>(px);
                if (yl >= H - 1) {
                  yh = yl = H - 1;
                  py = static_cast<double>(yl);
                } else {
                  yh = yl + 1;
                }
                if (xl >= W - 1) {
                  xh = xl = W - 1;
                  px = static_cast<double>(xl);
                } else {
                  xh = xl + 1;
                }
                const double ly = py - static_cast<double>(yl), lx = px - static_cast<double>(xl);
                const double hy = 1 - ly, hx = 1 - lx;
                w1 = hy * hx;
                w2 = hy * lx;
                w3 = ly * hx;
                w4 = ly * lx;
              }
              if (mode == "max") {
                if (valid) {
                  val = std::max(std::max(w1 * img[yl * W + xl], w2 * img[yl * W + xh]),
                                 std::max(w3 * img[yh * W + xl], w4 * img[yh * W + xh]));
                }
                acc = first ? val : std::max(acc, val);
                first = false;
              } else {
                if (valid) {
                  val = w1 * img[yl * W + xl] + w2 * img[yl * W + xh] + w3 * img[yh * W + xl] + w4 * img[yh * W + xh];
                }
                acc += val;
              }
            }
          }
          y[static_cast<size_t>(((r * C + c) * oh + ph) * ow + pw)] = mode == "max" ? acc : acc / count;
        }
    }
  }
  return write_output(ctx, 0, x->dtype(), {R, C, oh, ow}, y);
}

// ---------------------------------------------------------------- NonMaxSuppression

Status nonmaxsuppression_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* boxes_t, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* scores_t, ctx.required_input(1));
  if (boxes_t->rank() != 3 || boxes_t->dims()[2] != 4) {
    return ctx.error("boxes must have shape (num_batches, spatial_dimension, 4), got " + dstr(boxes_t->dims()));
  }
  if (scores_t->rank() != 3 || scores_t->dims()[0] != boxes_t->dims()[0] || scores_t->dims()[2] != boxes_t->dims()[1]) {
    return ctx.error("scores must have shape (num_batches, num_classes, spatial_dimension) matching boxes " +
                     dstr(boxes_t->dims()) + ", got " + dstr(scores_t->dims()));
  }
  int64_t max_out = 0;
  double iou_th = 0, score_th = -std::numeric_limits<double>::infinity();
  bool has_score_th = false;
  if (const Tensor* t = ctx.input(2); t && t->num_elements() > 0) max_out = to_int64s(*t)[0];
  if (const Tensor* t = ctx.input(3); t && t->num_elements() > 0) iou_th = to_doubles(*t)[0];
  if (const Tensor* t = ctx.input(4); t && t->num_elements() > 0) {
    score_th = to_doubles(*t)[0];
    has_score_th = true;
  }
  const bool center = ctx.attr_int("center_point_box", 0) != 0;
  const int64_t B = boxes_t->dims()[0], S = boxes_t->dims()[1], Cn = scores_t->dims()[1];
  Vec bx = to_doubles(*boxes_t), sc = to_doubles(*scores_t);
  auto corners = [&](int64_t b, int64_t i, double& y1, double& x1, double& y2, double& x2) {
    const double* p = bx.data() + (b * S + i) * 4;
    if (center) {
      x1 = p[0] - p[2] / 2;
      x2 = p[0] + p[2] / 2;
      y1 = p[1] - p[3] / 2;
      y2 = p[1] + p[3] / 2;
    } else {
      y1 = std::min(p[0], p[2]);
      y2 = std::max(p[0], p[2]);
      x1 = std::min(p[1], p[3]);
      x2 = std::max(p[1], p[3]);
    }
  };
  auto iou = [&](int64_t b, int64_t i, int64_t j) {
    double ay1, ax1, ay2, ax2, by1, bx1, by2, bx2;
    corners(b, i, ay1, ax1, ay2, ax2);
    corners(b, j, by1, bx1, by2, bx2);
    const double iw = std::max(0.0, std::min(ax2, bx2) - std::max(ax1, bx1));
    const double ih = std::max(0.0, std::min(ay2, by2) - std::max(ay1, by1));
    const double inter = iw * ih;
    const double uni = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
    return uni > 0 ? inter / uni : 0.0;
  };
  Vec sel;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < Cn; ++c) {
      std::vector<int64_t> cand;
      for (int64_t i = 0; i < S; ++i) {
        const double s = sc[static_cast<size_t>((b * Cn + c) * S + i)];
        if (!has_score_th || s > score_th) cand.push_back(i);
      }
      std::stable_sort(cand.begin(), cand.end(), [&](int64_t i, int64_t j) {
        return sc[static_cast<size_t>((b * Cn + c) * S + i)] > sc[static_cast<size_t>((b * Cn + c) * S + j)];
      });
      std::vector<int64_t> kept;
      for (int64_t i : cand) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool ok = true;
        for (int64_t k : kept) {
          if (iou(b, i, k) > iou_th) {
            ok = false;
            break;
          }
        }
        if (!ok) continue;
        kept.push_back(i);
        sel.insert(sel.end(), {static_cast<double>(b), static_cast<double>(c), static_cast<double>(i)});
      }
    }
  return write_output(ctx, 0, DType::kInt64, {static_cast<int64_t>(sel.size() / 3), 3}, sel);
}

// ---------------------------------------------------------------- losses

namespace {

// Negative log-likelihood over log-probabilities lp of shape (N, C, d...), target (N, d...).
Status nll_core(KernelContext& ctx, const Dims& dims, const Vec& lp, const Tensor& target, const Tensor* weight,
                DType out_dtype) {
  if (dims.size() < 2) return ctx.error("input must have shape (N, C, d1, ...), got " + dstr(dims));
  Dims td = dims;
  td.erase(td.begin() + 1);
  if (target.dims() != td) {
    return ctx.error("target has shape " + dstr(target.dims()) + "; expected " + dstr(td));
  }
  const int64_t N = dims[0], C = dims[1], D = product(dims, 2);
  const std::string reduction = ctx.attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean") {
    return ctx.error("unknown reduction '" + reduction + "'");
  }
  const auto* ii = ctx.attr("ignore_index");
  const bool has_ignore = ii != nullptr;
  const int64_t ignore = ctx.attr_int("ignore_index", 0);
  Dims t = to_int64s(target);
  Vec w = weight ? to_doubles(*weight) : Vec(static_cast<size_t>(C), 1.0);
  if (static_cast<int64_t>(w.size()) != C) return ctx.error("weight must have C = " + std::to_string(C) + " elements");
  Vec loss(static_cast<size_t>(N * D), 0.0);
  double wsum = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) {
      const int64_t cls = t[static_cast<size_t>(n * D + d)];
      if (has_ignore && cls == ignore) continue;
      if (cls < 0 || cls >= C) {
        return ctx.error("target value " + std::to_string(cls) + " is out of range [0, " + std::to_string(C) + ")");
      }
      const double wc = w[static_cast<size_t>(cls)];
      loss[static_cast<size_t>(n * D + d)] = -lp[static_cast<size_t>((n * C + cls) * D + d)] * wc;
      wsum += wc;
    }
  if (reduction == "none") return write_output(ctx, 0, out_dtype, td, loss);
  double s = 0;
  for (double v : loss) s += v;
  if (reduction == "mean") s = wsum != 0 ? s / wsum : 0.0;
  return write_output(ctx, 0, out_dtype, {}, {s});
}

}  // namespace

Status negativeloglikelihoodloss_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (input)"));
  return nll_core(ctx, x->dims(), to_doubles(*x), *t, ctx.input(2), x->dtype());
}

Status softmaxcrossentropyloss_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* t, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (scores)"));
  if (x->rank() < 2) return ctx.error("scores must have shape (N, C, d1, ...), got " + dstr(x->dims()));
  const int64_t N = x->dims()[0], C = x->dims()[1], D = product(x->dims(), 2);
  Vec xv = to_doubles(*x), lp(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, xv[static_cast<size_t>((n * C + c) * D + d)]);
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(xv[static_cast<size_t>((n * C + c) * D + d)] - mx);
      for (int64_t c = 0; c < C; ++c) {
        const size_t i = static_cast<size_t>((n * C + c) * D + d);
        lp[i] = xv[i] - mx - std::log(s);
      }
    }
  KILN_RETURN_IF_ERROR(nll_core(ctx, x->dims(), lp, *t, ctx.input(2), x->dtype()));
  if (wants_output(ctx, 1)) KILN_RETURN_IF_ERROR(write_output(ctx, 1, x->dtype(), x->dims(), lp));
  return Status::ok();
}

// ---------------------------------------------------------------- Det

Status det_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  const size_t r = x->rank();
  if (r < 2 || x->dims()[r - 1] != x->dims()[r - 2]) {
    return ctx.error("input must have shape (..., M, M), got " + dstr(x->dims()));
  }
  const int64_t M = x->dims()[r - 1];
  const Dims od(x->dims().begin(), x->dims().end() - 2);
  const int64_t B = product(od);
  Vec xv = to_doubles(*x), y(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    Vec a(xv.begin() + b * M * M, xv.begin() + (b + 1) * M * M);
    double det = 1;
    for (int64_t k = 0; k < M; ++k) {
      int64_t piv = k;
      for (int64_t i = k + 1; i < M; ++i) {
        if (std::fabs(a[static_cast<size_t>(i * M + k)]) > std::fabs(a[static_cast<size_t>(piv * M + k)])) piv = i;
      }
      if (a[static_cast<size_t>(piv * M + k)] == 0) {
        det = 0;
        break;
      }
      if (piv != k) {
        for (int64_t j = 0; j < M; ++j)
          std::swap(a[static_cast<size_t>(k * M + j)], a[static_cast<size_t>(piv * M + j)]);
        det = -det;
      }
      const double p = a[static_cast<size_t>(k * M + k)];
      det *= p;
      for (int64_t i = k + 1; i < M; ++i) {
        const double f = a[static_cast<size_t>(i * M + k)] / p;
        for (int64_t j = k; j < M; ++j) a[static_cast<size_t>(i * M + j)] -= f * a[static_cast<size_t>(k * M + j)];
      }
    }
    y[static_cast<size_t>(b)] = det;
  }
  return write_output(ctx, 0, x->dtype(), od, y);
}

}  // namespace kiln::cpu
