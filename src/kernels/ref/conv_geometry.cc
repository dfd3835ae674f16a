#include "kernels/ref/conv_geometry.h"

#include <algorithm>
#include <string>

#include "kernels/activation.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;

std::string dstr(const Dims& d) { return dims_to_string(d); }

}  // namespace

// Reads kernel_shape/strides/dilations/pads/auto_pad for `nsp` spatial dims.
Status read_window_attrs(const KernelContext& ctx, size_t nsp, const Dims& kernel_from_w, ConvGeom& g) {
  g.kernel = ctx.attr_ints("kernel_shape", kernel_from_w);
  if (g.kernel.size() != nsp) {
    return ctx.error("kernel_shape has " + std::to_string(g.kernel.size()) + " values; expected " +
                     std::to_string(nsp));
  }
  g.strides = ctx.attr_ints("strides", Dims(nsp, 1));
  g.dilations = ctx.attr_ints("dilations", Dims(nsp, 1));
  Dims pads = ctx.attr_ints("pads", Dims(2 * nsp, 0));
  if (g.strides.size() != nsp) return ctx.error("strides must have " + std::to_string(nsp) + " values");
  if (g.dilations.size() != nsp) return ctx.error("dilations must have " + std::to_string(nsp) + " values");
  if (pads.size() != 2 * nsp) return ctx.error("pads must have " + std::to_string(2 * nsp) + " values");
  for (size_t i = 0; i < nsp; ++i) {
    if (g.strides[i] <= 0) return ctx.error("strides must be positive");
    if (g.dilations[i] <= 0) return ctx.error("dilations must be positive");
    if (g.kernel[i] <= 0) return ctx.error("kernel_shape must be positive");
  }
  // A kernel_shape attribute beside a weight must be the weight's spatial shape (the kernels index W by it).
  if (!kernel_from_w.empty() && g.kernel != kernel_from_w) {
    return ctx.error("kernel_shape " + dstr(g.kernel) + " differs from the weight W's spatial dims " +
                     dstr(kernel_from_w));
  }
  g.pad_begin.assign(pads.begin(), pads.begin() + static_cast<int64_t>(nsp));
  g.pad_end.assign(pads.begin() + static_cast<int64_t>(nsp), pads.end());
  return Status::ok();
}

// Output spatial shape for conv/pool. ceil_mode only for pools.
Status compute_output_shape(const KernelContext& ctx, ConvGeom& g, bool ceil_mode) {
  const std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  const size_t nsp = g.in.size();
  g.out.assign(nsp, 0);
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t ek = (g.kernel[i] - 1) * g.dilations[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[i] = (g.in[i] + g.strides[i] - 1) / g.strides[i];
      int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.strides[i] + ek - g.in[i]);
      if (auto_pad == "SAME_UPPER") {
        g.pad_begin[i] = total / 2;
      } else {
        g.pad_begin[i] = total - total / 2;
      }
      g.pad_end[i] = total - g.pad_begin[i];
    } else {
      if (auto_pad == "VALID") {
        g.pad_begin[i] = g.pad_end[i] = 0;
      } else if (auto_pad != "NOTSET" && !auto_pad.empty()) {
        return ctx.error("unknown auto_pad '" + auto_pad + "'");
      }
      const int64_t span = g.in[i] + g.pad_begin[i] + g.pad_end[i] - ek;
      if (span < 0) {
        return ctx.error("kernel (effective size " + std::to_string(ek) + ") is larger than padded input dimension " +
                         std::to_string(i + 2) + " (" + std::to_string(g.in[i] + g.pad_begin[i] + g.pad_end[i]) + ")");
      }
      if (ceil_mode) {
        g.out[i] = (span + g.strides[i] - 1) / g.strides[i] + 1;
        // The last window must start inside the input or the begin padding.
        if ((g.out[i] - 1) * g.strides[i] >= g.in[i] + g.pad_begin[i]) --g.out[i];
      } else {
        g.out[i] = span / g.strides[i] + 1;
      }
    }
  }
  return Status::ok();
}

Status pool_setup(const KernelContext& ctx, const Dims& xd, ConvGeom& g) {
  if (xd.size() < 3) return ctx.error("input X must have rank >= 3 (N, C, spatial...), got " + dstr(xd));
  const size_t nsp = xd.size() - 2;
  g.N = xd[0];
  g.C = xd[1];
  g.in.assign(xd.begin() + 2, xd.end());
  if (!ctx.attr("kernel_shape")) return ctx.error("attribute kernel_shape is required");
  KILN_RETURN_IF_ERROR(read_window_attrs(ctx, nsp, {}, g));
  return compute_output_shape(ctx, g, ctx.attr_int("ceil_mode", 0) != 0);
}

Status conv_setup(const KernelContext& ctx, const Dims& xd, const Tensor& w, ConvGeom& g) {
  if (xd.size() < 3) return ctx.error("input X must have rank >= 3 (N, C, spatial...), got " + dstr(xd));
  if (w.rank() != xd.size()) {
    return ctx.error("weight W has shape " + dstr(w.dims()) + "; expected rank " + std::to_string(xd.size()));
  }
  const size_t nsp = xd.size() - 2;
  g.N = xd[0];
  g.C = xd[1];
  g.M = w.dims()[0];
  g.group = ctx.attr_int("group", 1);
  if (g.group <= 0 || g.C % g.group != 0 || g.M % g.group != 0) {
    return ctx.error("group " + std::to_string(g.group) + " must divide input channels " + std::to_string(g.C) +
                     " and output channels " + std::to_string(g.M));
  }
  if (w.dims()[1] != g.C / g.group) {
    return ctx.error("weight W has shape " + dstr(w.dims()) +
                     "; dimension 1 must be C/group = " + std::to_string(g.C / g.group));
  }
  g.in.assign(xd.begin() + 2, xd.end());
  KILN_RETURN_IF_ERROR(read_window_attrs(ctx, nsp, Dims(w.dims().begin() + 2, w.dims().end()), g));
  for (size_t i = 0; i < nsp; ++i) {
    if (g.kernel[i] != w.dims()[i + 2]) return ctx.error("kernel_shape does not match weight W " + dstr(w.dims()));
  }
  return compute_output_shape(ctx, g, false);
}

Dims out_dims(const ConvGeom& g, int64_t channels) {
  Dims d{g.N, channels};
  d.insert(d.end(), g.out.begin(), g.out.end());
  return d;
}

Status convtranspose_setup(const KernelContext& ctx, const Tensor& x, const Tensor& w, ConvGeom& g) {
  if (x.rank() < 3) return ctx.error("input X must have rank >= 3 (N, C, spatial...), got " + dstr(x.dims()));
  if (w.rank() != x.rank()) {
    return ctx.error("weight W has shape " + dstr(w.dims()) + "; expected rank " + std::to_string(x.rank()));
  }
  const size_t nsp = x.rank() - 2;
  g.N = x.dims()[0];
  g.C = x.dims()[1];
  g.group = ctx.attr_int("group", 1);
  if (g.group <= 0 || g.C % g.group != 0) return ctx.error("group must divide the input channels");
  if (w.dims()[0] != g.C) {
    return ctx.error("weight W has shape " + dstr(w.dims()) + "; dimension 0 must equal input channels " +
                     std::to_string(g.C));
  }
  const int64_t Mg = w.dims()[1];
  g.M = Mg * g.group;
  g.in.assign(x.dims().begin() + 2, x.dims().end());
  KILN_RETURN_IF_ERROR(read_window_attrs(ctx, nsp, Dims(w.dims().begin() + 2, w.dims().end()), g));
  Dims out_pad = ctx.attr_ints("output_padding", Dims(nsp, 0));
  if (out_pad.size() != nsp) return ctx.error("output_padding must have " + std::to_string(nsp) + " values");
  Dims out_shape = ctx.attr_ints("output_shape", {});
  if (out_shape.size() == nsp + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (!out_shape.empty() && out_shape.size() != nsp) {
    return ctx.error("output_shape must have " + std::to_string(nsp) + " values");
  }
  const std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  g.out.assign(nsp, 0);
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t ek = (g.kernel[i] - 1) * g.dilations[i] + 1;
    const int64_t full = g.strides[i] * (g.in[i] - 1) + out_pad[i] + ek;
    if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t target = !out_shape.empty() ? out_shape[i] : g.in[i] * g.strides[i];
      const int64_t total = full - target;
      if (auto_pad == "SAME_LOWER") {
        g.pad_begin[i] = total - total / 2;
        g.pad_end[i] = total / 2;
      } else {
        g.pad_begin[i] = total / 2;
        g.pad_end[i] = total - total / 2;
      }
      g.out[i] = target;
    } else {
      if (auto_pad == "VALID") g.pad_begin[i] = g.pad_end[i] = 0;
      g.out[i] = full - g.pad_begin[i] - g.pad_end[i];
    }
    if (g.out[i] <= 0) return ctx.error("computed output dimension " + std::to_string(i + 2) + " is not positive");
  }
  std::vector<int64_t> out_dims{x.dims()[0], g.M};
  out_dims.insert(out_dims.end(), g.out.begin(), g.out.end());
  KILN_RETURN_IF_ERROR(ctx.check_output_size(0, x.dtype(), out_dims));
  if (const Tensor* b = ctx.input(2); b && b->num_elements() != g.M) {
    return ctx.error("bias B has " + std::to_string(b->num_elements()) + " elements; expected " + std::to_string(g.M));
  }
  return Status::ok();
}

StatusOr<int64_t> nchwc_block_attr(const KernelContext& ctx) {
  const int64_t b = ctx.attr_int("block", 0);
  if (b != 8 && b != 16) return ctx.error("attribute block is " + std::to_string(b) + "; expected 8 or 16");
  return b;
}

// Checks a blocked input [N, CB, H, W, block] and returns its logical [N, C, H, W] (C from `channels`).
StatusOr<std::vector<int64_t>> nchwc_blocked_input(const KernelContext& ctx, const Tensor& x, int64_t block) {
  const int64_t C = ctx.attr_int("channels", 0);
  if (x.dtype() != DType::kFloat32) return ctx.unsupported_dtype(x.dtype(), "input 0 (X)");
  if (x.rank() != 5 || x.dims()[4] != block || C <= 0 || x.dims()[1] != (C + block - 1) / block) {
    return ctx.error("input 0 has shape " + dims_to_string(x.dims()) + "; expected a channel-blocked tensor [N, " +
                     std::to_string((C + block - 1) / block) + ", H, W, " + std::to_string(block) + "] for " +
                     std::to_string(C) + " channels");
  }
  return std::vector<int64_t>{x.dims()[0], C, x.dims()[2], x.dims()[3]};
}

Status nchwc_conv_setup(const KernelContext& ctx, const Tensor& x, const Tensor& w, const Tensor* b, const Tensor* z,
                        NchwcGeom& n) {
  KILN_ASSIGN_OR_RETURN(n.act, fused_activation(ctx));
  const int64_t B = n.B = ctx.attr_int("block", 0);
  if (B != 8 && B != 16) return ctx.error("attribute block is " + std::to_string(B) + "; expected 8 or 16");
  if (x.dtype() != DType::kFloat32) return ctx.unsupported_dtype(x.dtype(), "input 0 (X)");
  if (w.dtype() != DType::kFloat32 || w.rank() != 4) {
    return ctx.error("weight W must be a float32 4-D tensor, got " + std::string(dtype_name(w.dtype())) + " " +
                     dstr(w.dims()));
  }
  const int64_t group = ctx.attr_int("group", 1);
  const int64_t C = n.C = w.dims()[1] * group, M = n.M = w.dims()[0];
  Dims xd = x.dims();
  n.blocked_in = x.rank() == 5;
  if (n.blocked_in) {
    if (xd[1] != (C + B - 1) / B || xd[4] != B) {
      return ctx.error("input 0 has shape " + dstr(xd) + "; expected a blocked tensor [N, " +
                       std::to_string((C + B - 1) / B) + ", H, W, " + std::to_string(B) + "] for " + std::to_string(C) +
                       " channels");
    }
    xd = {xd[0], C, xd[2], xd[3]};
  } else if (x.rank() != 4 || xd[1] != C) {
    return ctx.error("input 0 has shape " + dstr(xd) + "; expected [N, " + std::to_string(C) + ", H, W] or blocked");
  }
  n.xd = xd;
  ConvGeom& g = n.g;
  KILN_RETURN_IF_ERROR(conv_setup(ctx, xd, w, g));
  if (b && (b->dtype() != DType::kFloat32 || b->num_elements() != M)) {
    return ctx.error("bias B must be float32 with " + std::to_string(M) + " elements");
  }
  n.od = out_dims(g, M);
  n.bod = nchwc_dims(n.od, B);
  if (z && (z->dtype() != DType::kFloat32 || z->rank() != 5 || z->dims()[1] != n.bod[1] || z->dims()[4] != B)) {
    return ctx.error("input 3 (Z) has shape " + dstr(z->dims()) + "; expected a blocked tensor like the output " +
                     dstr(n.bod));
  }
  return Status::ok();
}

// Adds z (broadcast to y's shape) to float32 y in place; the error names z's shape.
Status add_broadcast_f32(const KernelContext& ctx, Tensor& y, const Tensor& z) {
  if (z.dtype() != DType::kFloat32) return ctx.unsupported_dtype(z.dtype(), "input 3 (Z)");
  auto bc = broadcast_shapes(z.dims(), y.dims());
  if (!bc.is_ok() || *bc != y.dims()) {
    return ctx.error("input 3 (Z) of shape " + dstr(z.dims()) + " cannot be broadcast to the output " + dstr(y.dims()));
  }
  const auto zs = broadcast_strides(z.dims(), y.dims());
  const Dims& d = y.dims();
  Dims idx(d.size(), 0);
  float* py = y.data<float>();
  const float* pz = z.data<float>();
  const int64_t n = y.num_elements();
  for (int64_t k = 0; k < n; ++k, next_index(idx, d)) {
    int64_t off = 0;
    for (size_t j = 0; j < d.size(); ++j) off += idx[j] * zs[j];
    py[k] += pz[off];
  }
  return Status::ok();
}

// Sets the padding lanes (channels >= M) of a blocked [N, CB, H, W, B] tensor back to zero.
void zero_padding_lanes(Tensor& y, int64_t M, int64_t B) {
  const auto& d = y.dims();
  const int64_t hw = d[2] * d[3];
  float* p = y.data<float>();
  for (int64_t nc = 0; nc < d[0] * d[1]; ++nc) {
    const int64_t first = M - (nc % d[1]) * B;  // lanes from `first` on are padding
    if (first >= B) continue;
    for (int64_t i = 0; i < hw; ++i)
      for (int64_t l = std::max<int64_t>(first, 0); l < B; ++l) p[(nc * hw + i) * B + l] = 0.0f;
  }
}

}  // namespace kiln::cpu
