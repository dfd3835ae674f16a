// Convolutions: Conv, ai.kiln FusedConv, NchwcConv and NhwcConv, ConvInteger, QLinearConv (and ai.kiln
// NhwcQLinearConv), ConvTranspose.
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

// ---------------------------------------------------------------- Conv

namespace {

// Integer/plain convolution on doubles (zero points already subtracted; padding reads 0). Output planes
// (image n, channel m) are computed in parallel.
void conv_core(const KernelContext& ctx, const ConvGeom& g, const Vec& x, const Vec& w, const Vec* bias, Vec& y) {
  const size_t nsp = g.in.size();
  const int64_t in_sz = product(g.in), out_sz = product(g.out), k_sz = product(g.kernel);
  const int64_t Cg = g.C / g.group, Mg = g.M / g.group;
  auto in_str = strides_of(g.in);
  y.assign(static_cast<size_t>(g.N * g.M * out_sz), 0.0);
  const int64_t work_per_plane = std::max<int64_t>(1, out_sz * Cg * k_sz);
  ctx.parallel_for(g.N * g.M, std::max<int64_t>(1, 16384 / work_per_plane), [&](int64_t p0, int64_t p1) {
    Dims oi(nsp, 0), ki(nsp, 0);
    for (int64_t plane = p0; plane < p1; ++plane) {
      const int64_t n = plane / g.M, m = plane % g.M;
      const int64_t gr = m / Mg;
      std::fill(oi.begin(), oi.end(), 0);
      for (int64_t o = 0; o < out_sz; ++o, next_index(oi, g.out)) {
        double s = bias ? (*bias)[static_cast<size_t>(m)] : 0.0;
        for (int64_t c = 0; c < Cg; ++c) {
          const double* px = x.data() + (n * g.C + gr * Cg + c) * in_sz;
          const double* pw = w.data() + (m * Cg + c) * k_sz;
          std::fill(ki.begin(), ki.end(), 0);
          for (int64_t k = 0; k < k_sz; ++k, next_index(ki, g.kernel)) {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < nsp; ++d) {
              int64_t p = oi[d] * g.strides[d] - g.pad_begin[d] + ki[d] * g.dilations[d];
              if (p < 0 || p >= g.in[d]) {
                inside = false;
                break;
              }
              off += p * in_str[d];
            }
            if (inside) s += px[off] * pw[k];
          }
        }
        y[static_cast<size_t>(plane * out_sz + o)] = s;
      }
    }
  });
}

}  // namespace

namespace {

// Conv and ai.kiln FusedConv: y = act(Conv(X, W) + B + Z).
Status conv_common(KernelContext& ctx, const Activation& act, const Tensor* z) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* w, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  ConvGeom g;
  KILN_RETURN_IF_ERROR(conv_setup(ctx, x->dims(), *w, g));
  const Tensor* b = ctx.input(2);
  if (b && b->num_elements() != g.M) {
    return ctx.error("bias B has " + std::to_string(b->num_elements()) + " elements; expected " + std::to_string(g.M));
  }
  const bool fused = !act.none() || z;
  if (fused && x->dtype() != DType::kFloat32) return ctx.unsupported_dtype(x->dtype(), "input 0 (X)");
  const Dims od = out_dims(g, g.M);
  Vec bias;
  if (b) bias = to_doubles(*b);
  Vec y;
  conv_core(ctx, g, to_doubles(*x), to_doubles(*w), b ? &bias : nullptr, y);
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, x->dtype(), od, y));
  if (fused) {
    Tensor& out = ctx.outputs()[0];
    if (z) KILN_RETURN_IF_ERROR(add_broadcast_f32(ctx, out, *z));
    apply_activation(act, out.data<float>(), out.num_elements());
  }
  return Status::ok();
}

}  // namespace

Status conv_kernel(KernelContext& ctx) { return conv_common(ctx, Activation{}, nullptr); }

// ai.kiln FusedConv(X, W, B?, Z?): Conv with a residual input Z and an activation (the optimizer's fusions).
Status fusedconv_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Activation act, fused_activation(ctx));
  return conv_common(ctx, act, ctx.input(3));
}

// ai.kiln NchwcConv(X, W, B?, Z?): FusedConv on channel-blocked tensors (attribute `block`): X is plain
// [N, C, H, W] (a first layer with few channels) or blocked, Y and Z are blocked [N, ceil(M / block), OH, OW,
// block]. The reference path unblocks, runs the plain reference convolution and blocks the result.
Status nchwcconv_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* w, ctx.required_input(1));
  const Tensor* b = ctx.input(2);
  const Tensor* z = ctx.input(3);
  NchwcGeom n;
  KILN_RETURN_IF_ERROR(nchwc_conv_setup(ctx, *x, *w, b, z, n));
  const Activation& act = n.act;
  const ConvGeom& g = n.g;
  const Dims& xd = n.xd;
  const int64_t B = n.B, C = n.C, M = n.M;
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, n.bod));
  const Dims& od = n.od;
  Vec xv(static_cast<size_t>(product(xd)));
  if (n.blocked_in) {
    std::vector<float> plain(xv.size());
    nchwc_unblock(ctx, x->data<float>(), plain.data(), xd[0], C, xd[2] * xd[3], B);
    std::copy(plain.begin(), plain.end(), xv.begin());
  } else {
    xv = to_doubles(*x);
  }
  Vec bias;
  if (b) bias = to_doubles(*b);
  Vec yv;
  conv_core(ctx, g, xv, to_doubles(*w), b ? &bias : nullptr, yv);
  std::vector<float> plain(yv.begin(), yv.end());
  const int64_t ohw = od[2] * od[3];
  nchwc_block(ctx, plain.data(), y->data<float>(), od[0], M, ohw, B);
  if (z) KILN_RETURN_IF_ERROR(add_broadcast_f32(ctx, *y, *z));
  apply_activation(act, y->data<float>(), y->num_elements());
  zero_padding_lanes(*y, M, B);
  return Status::ok();
}

namespace {

// Per-output-channel zero point / scale: a scalar or M values.
Status per_channel(const KernelContext& ctx, const Tensor* t, int64_t M, double def, Vec& out,
                   const std::string& which) {
  out.assign(static_cast<size_t>(M), def);
  if (!t) return Status::ok();
  Vec v = to_doubles(*t);
  if (v.size() == 1) {
    std::fill(out.begin(), out.end(), v[0]);
  } else if (static_cast<int64_t>(v.size()) == M) {
    out = v;
  } else {
    return ctx.error(which + " has " + std::to_string(v.size()) + " elements; expected 1 or " + std::to_string(M));
  }
  return Status::ok();
}

// Conv on quantized inputs: returns the int accumulators.
Status int_conv(KernelContext& ctx, const Tensor& x, const Tensor* xzp, const Tensor& w, const Tensor* wzp, ConvGeom& g,
                Vec& y, const Vec* bias) {
  if (!is_8bit(x.dtype())) return ctx.unsupported_dtype(x.dtype(), "input x");
  if (!is_8bit(w.dtype())) return ctx.unsupported_dtype(w.dtype(), "input w");
  KILN_RETURN_IF_ERROR(conv_setup(ctx, x.dims(), w, g));
  double xz;
  KILN_RETURN_IF_ERROR(scalar_of(ctx, xzp, 0, xz, "x_zero_point"));
  Vec wz;
  KILN_RETURN_IF_ERROR(per_channel(ctx, wzp, g.M, 0, wz, "w_zero_point"));
  Vec xv = to_doubles(x), wv = to_doubles(w);
  for (double& v : xv) v -= xz;
  const int64_t per_m = product(w.dims(), 1);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] -= wz[i / static_cast<size_t>(per_m)];
  conv_core(ctx, g, xv, wv, bias, y);
  return Status::ok();
}

}  // namespace

Status convinteger_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* w, ctx.required_input(1));
  ConvGeom g;
  Vec y;
  KILN_RETURN_IF_ERROR(int_conv(ctx, *x, ctx.input(2), *w, ctx.input(3), g, y, nullptr));
  return write_output(ctx, 0, DType::kInt32, out_dims(g, g.M), y);
}

namespace {

// QLinearConv's arithmetic on x (NCHW...): y's values, dims and dtype.
Status qlinearconv_core(KernelContext& ctx, const Tensor& x, Vec& y, Dims& y_dims, DType& y_dtype) {
  const Tensor& w = *ctx.input(3);
  const Tensor& yzp = *ctx.input(7);
  double lo, hi;
  if (!quant_range(yzp.dtype(), lo, hi)) return ctx.unsupported_dtype(yzp.dtype(), "input 7 (y_zero_point)");
  Vec bias;
  const Tensor* b = ctx.input(8);
  if (b) bias = to_doubles(*b);
  ConvGeom g;
  if (b && static_cast<int64_t>(bias.size()) != (w.rank() > 0 ? w.dims()[0] : 0)) {
    return ctx.error("bias B has " + std::to_string(bias.size()) + " elements; expected one per output channel");
  }
  KILN_RETURN_IF_ERROR(int_conv(ctx, x, ctx.input(2), w, ctx.input(5), g, y, b ? &bias : nullptr));
  double xs, ys, yz;
  KILN_RETURN_IF_ERROR(scalar_of(ctx, ctx.input(1), 1, xs, "x_scale"));
  KILN_RETURN_IF_ERROR(scalar_of(ctx, ctx.input(6), 1, ys, "y_scale"));
  KILN_RETURN_IF_ERROR(scalar_of(ctx, &yzp, 0, yz, "y_zero_point"));
  Vec ws;
  KILN_RETURN_IF_ERROR(per_channel(ctx, ctx.input(4), g.M, 1, ws, "w_scale"));
  const int64_t out_sz = product(g.out);
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t m = (i / static_cast<size_t>(out_sz)) % static_cast<size_t>(g.M);
    const double s = xs * ws[m] / ys;
    y[i] = saturate(round_half_even(y[i] * s) + yz, lo, hi);
  }
  y_dims = out_dims(g, g.M);
  y_dtype = yzp.dtype();
  return Status::ok();
}

}  // namespace

Status qlinearconv_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 8; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  Vec y;
  Dims dims;
  DType dt;
  KILN_RETURN_IF_ERROR(qlinearconv_core(ctx, *ctx.input(0), y, dims, dt));
  return write_output(ctx, 0, dt, dims, y);
}

Status qlinearadd_kernel(KernelContext& ctx);  // ref/quantize.cc

// ai.kiln NhwcQLinearConv: QLinearConv with X [N, H, W, C] and Y [N, OH, OW, M] (channels-last; layout_nhwc_int8).
// With inputs 9-13 (Z, Z_scale, Z_zero_point, C_scale, C_zero_point) and attribute `activation` ("" or "Relu"), the
// ai.kiln QLinearAdd of that result (y_scale, y_zero_point) and Z follows, as the unfused nodes compute it: the
// result is C (layout_nhwc_int8 fuses a residual sum so; the fast kernel rounds once, kernels/fast/quantized.cc).
Status nhwcqlinearconv_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 8; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  if (!is_8bit(x.dtype())) return ctx.unsupported_dtype(x.dtype(), "input x");
  KILN_ASSIGN_OR_RETURN(Tensor xc, permute_channels(ctx, x, false, "input 0 (X)"));
  Vec y;
  Dims yd;
  DType dt;
  KILN_RETURN_IF_ERROR(qlinearconv_core(ctx, xc, y, yd, dt));
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, dt, yd, y));
  KILN_ASSIGN_OR_RETURN(Tensor out, permute_channels(ctx, ctx.outputs()[0], true, "the result"));
  if (ctx.num_inputs() <= 9 || !ctx.input(9)) {
    ctx.set_output(0, std::move(out));
    return Status::ok();
  }
  for (size_t i = 9; i < 14; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Value conv(std::move(out));
  KernelContext add(
      ctx.node(), 1,
      {&conv, ctx.value(6), ctx.value(7), ctx.value(9), ctx.value(10), ctx.value(11), ctx.value(12), ctx.value(13)}, 1);
  KILN_RETURN_IF_ERROR(qlinearadd_kernel(add));
  ctx.set_output(0, add.take_output(0).tensor());
  return Status::ok();
}

// ai.kiln NhwcConv(X, W, B?, Z?): FusedConv with X, Z and Y channels-last ([N, H, W, C]) in X's dtype, float32 or
// bfloat16 (layout_nhwc_bf16), W and B float32. The reference path converts X and Z to float32 NCHW, runs the
// FusedConv reference kernel and converts its result (to bfloat16: rounding to nearest even).
Status nhwcconv_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(ctx.required_input(1).status());
  const Tensor* z = ctx.input(3);
  if (z && z->dtype() != x->dtype()) {
    return ctx.error("input 3 (Z) is " + std::string(dtype_name(z->dtype())) + "; expected X's dtype, " +
                     dtype_name(x->dtype()));
  }
  KILN_ASSIGN_OR_RETURN(Tensor xc, convert_channels(ctx, *x, false, DType::kFloat32, "input 0 (X)"));
  Value xv(std::move(xc)), zv;
  if (z) {
    KILN_ASSIGN_OR_RETURN(Tensor zc, convert_channels(ctx, *z, false, DType::kFloat32, "input 3 (Z)"));
    zv = Value(std::move(zc));
  }
  std::vector<const Value*> inputs{&xv};
  for (size_t i = 1; i < 3; ++i) inputs.push_back(ctx.value(i));
  if (z) inputs.push_back(&zv);
  KernelContext sub(ctx.node(), 1, std::move(inputs), 1);
  KILN_RETURN_IF_ERROR(fusedconv_kernel(sub));
  const Tensor y = sub.take_output(0).tensor();
  KILN_ASSIGN_OR_RETURN(Tensor out, convert_channels(ctx, y, true, x->dtype(), "the result"));
  ctx.set_output(0, std::move(out));
  return Status::ok();
}

Status convtranspose_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* w, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  ConvGeom g;
  KILN_RETURN_IF_ERROR(convtranspose_setup(ctx, *x, *w, g));
  const size_t nsp = g.in.size();
  Vec xv = to_doubles(*x), wv = to_doubles(*w), bias;
  if (const Tensor* b = ctx.input(2)) bias = to_doubles(*b);
  const int64_t in_sz = product(g.in), out_sz = product(g.out), k_sz = product(g.kernel);
  const int64_t Cg = g.C / g.group, Mg = g.M / g.group;
  auto out_str = strides_of(g.out);
  Vec y(static_cast<size_t>(g.N * g.M * out_sz), 0.0);
  Dims ii(nsp), ki(nsp);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c) {
      const int64_t gr = c / Cg;
      std::fill(ii.begin(), ii.end(), 0);
      for (int64_t i = 0; i < in_sz; ++i, next_index(ii, g.in)) {
        const double xval = xv[static_cast<size_t>((n * g.C + c) * in_sz + i)];
        std::fill(ki.begin(), ki.end(), 0);
        for (int64_t k = 0; k < k_sz; ++k, next_index(ki, g.kernel)) {
          int64_t off = 0;
          bool inside = true;
          for (size_t d = 0; d < nsp; ++d) {
            int64_t p = ii[d] * g.strides[d] + ki[d] * g.dilations[d] - g.pad_begin[d];
            if (p < 0 || p >= g.out[d]) {
              inside = false;
              break;
            }
            off += p * out_str[d];
          }
          if (!inside) continue;
          for (int64_t m = 0; m < Mg; ++m) {
            const int64_t oc = gr * Mg + m;
            y[static_cast<size_t>((n * g.M + oc) * out_sz + off)] +=
                xval * wv[static_cast<size_t>((c * Mg + m) * k_sz + k)];
          }
        }
      }
    }
  if (!bias.empty()) {
    for (size_t i = 0; i < y.size(); ++i) y[i] += bias[(i / static_cast<size_t>(out_sz)) % static_cast<size_t>(g.M)];
  }
  return write_output(ctx, 0, x->dtype(), out_dims(g, g.M), y);
}

}  // namespace kiln::cpu
