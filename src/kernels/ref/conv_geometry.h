// The geometry of convolutions and pooling windows (ONNX's kernel_shape, strides, dilations, pads and auto_pad),
// shared by the reference kernels and the fast ones so that both read the attributes and report errors alike.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/activation.h"
#include "kernels/kernel.h"

namespace kiln::cpu {

struct ConvGeom {
  int64_t N = 0, C = 0, M = 0, group = 1;
  std::vector<int64_t> in, kernel, out, strides, dilations, pad_begin, pad_end;
};

// Reads kernel_shape/strides/dilations/pads for `nsp` spatial dims (kernel_shape defaults to `kernel_from_w`).
Status read_window_attrs(const KernelContext& ctx, size_t nsp, const std::vector<int64_t>& kernel_from_w, ConvGeom& g);
// The output spatial shape of a convolution or pooling window over g.in, with auto_pad; ceil_mode for pools.
Status compute_output_shape(const KernelContext& ctx, ConvGeom& g, bool ceil_mode);
// The window of MaxPool/AveragePool/LpPool over X of dims `xd` (rank >= 3): kernel_shape (required), strides,
// dilations, pads, auto_pad and ceil_mode.
Status pool_setup(const KernelContext& ctx, const std::vector<int64_t>& xd, ConvGeom& g);
// The geometry of Conv(X of dims `xd`, W): channels, group, window and output shape.
Status conv_setup(const KernelContext& ctx, const std::vector<int64_t>& xd, const Tensor& w, ConvGeom& g);
// The geometry of ConvTranspose(X, W): output_padding, output_shape and auto_pad included.
Status convtranspose_setup(const KernelContext& ctx, const Tensor& x, const Tensor& w, ConvGeom& g);
// The `block` attribute of an NCHWc operator (8 or 16).
StatusOr<int64_t> nchwc_block_attr(const KernelContext& ctx);
// Checks a blocked input [N, CB, H, W, block] and returns its logical [N, C, H, W] (C from `channels`).
StatusOr<std::vector<int64_t>> nchwc_blocked_input(const KernelContext& ctx, const Tensor& x, int64_t block);

// The geometry of an ai.kiln NchwcConv (channel-blocked convolution, attribute `block`).
struct NchwcGeom {
  Activation act;
  int64_t B = 0, C = 0, M = 0;       // block, input and output channels
  bool blocked_in = false;           // X is blocked (else plain [N, C, H, W], a first layer)
  std::vector<int64_t> xd, od, bod;  // X as [N, C, H, W], Y plain and blocked
  ConvGeom g;
};
// Checks an NchwcConv's inputs (X, W, B?, Z?) and attributes; errors name the input at fault.
Status nchwc_conv_setup(const KernelContext& ctx, const Tensor& x, const Tensor& w, const Tensor* b, const Tensor* z,
                        NchwcGeom& n);
// [N, channels, out...].
std::vector<int64_t> out_dims(const ConvGeom& g, int64_t channels);

// The channels-last tensors of ai.kiln ToNhwc, FromNhwc, NhwcConv, NhwcQLinearConv, NhwcMaxPool and
// NhwcGlobalAveragePool (layout_nhwc_int8, layout_nhwc_bf16): x [N, C, H, W] as [N, H, W, C] (to_nhwc) or x
// [N, H, W, C] as [N, C, H, W], in x's dtype (any fixed-size one); errors name `which` input.
StatusOr<Tensor> permute_channels(const KernelContext& ctx, const Tensor& x, bool to_nhwc, const std::string& which);
// The same converted to `to`: x and `to` are float32 or bfloat16 (float32 to bfloat16 rounds to nearest even).
StatusOr<Tensor> convert_channels(const KernelContext& ctx, const Tensor& x, bool to_nhwc, DType to,
                                  const std::string& which);

// Adds z (broadcast to y's shape) to float32 y in place; the error names input 3 (Z) and its shape.
Status add_broadcast_f32(const KernelContext& ctx, Tensor& y, const Tensor& z);
// Sets the padding lanes (channels >= M) of a blocked [N, CB, H, W, B] tensor back to zero.
void zero_padding_lanes(Tensor& y, int64_t M, int64_t B);

}  // namespace kiln::cpu
