// Fast ai.kiln NchwcConv kernels (channel-blocked convolutions), in order of preference:
//   nchwc_conv.im2col    a first layer (plain input, few channels) oneDNN has no direct kernel for: im2col tiles
//                        on the packed SGEMM, written straight into the blocked layout;
//   nchwc_conv.winograd_f4, nchwc_conv.winograd_f2
//                        3x3 convolutions over enough output tiles: Winograd F(4x4, 3x3) (stride 1), F(2x2, 3x3)
//                        or the stride-2 form;
//   nchwc_conv.gemm      few output pixels and many weights: one GEMM over the packed im2col;
//   nchwc_conv.pointwise 1x1 convolutions at stride 1 straight on the blocked layout (x86/pointwise.h): the first
//                        guess with a residual Z, else chosen by timing;
//   nchwc_conv.direct    any 2-D convolution without dilation straight on the blocked layout, from a blocked or a
//                        plain input (x86/direct_conv.h): chosen by timing (strided 3x3 layers, first layers);
//   nchwc_conv.dnnl      oneDNN's blocked convolution.
// supports() says whether a kernel computes the case; prefer() holds the thresholds measured for today's choice.
// Each kernel keeps its plan (geometry, prepared weights) in the node's cache per input shape.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/dnnl/dnnl_kernels.h"
#include "kernels/fast/parallel.h"
#include "kernels/fast/weights.h"
#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"
#include "kernels/x86/direct_conv.h"
#include "kernels/x86/pointwise.h"
#include "kernels/x86/sgemm.h"
#include "kernels/x86/winograd.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;
using K = Activation::Kind;

// Fewer tiles than this leave the products too few rows to beat oneDNN's direct kernel (measured on ResNet-50's
// layers).
constexpr int64_t kWinogradMinTiles = 32;

// Stride-2 3x3 convolutions run as Winograd (winograd.h's stride-2 form, 25 multiplications for a 2x2 tile
// instead of 36) when their input (all images) has at least this many bytes. oneDNN's direct kernel is fast while
// the input fits the cores' L2 and slows once it does not: on ResNet-50's stride-2 layers it ran at 155-163
// GFLOP/s at batch 1 (0.8-1.6 MiB inputs; there the stride-2 form took 1.0-1.09 of its time) and at about 120 at
// batch 8, where the stride-2 form took 0.82 of its time with 13 and 6 MiB inputs, 0.98 with 3 MiB.
constexpr int64_t kWinogradStride2MinInput = int64_t{2} << 20;

// A blocked convolution runs as one GEMM over its im2col (sgemm::conv2d_blocked) when it has at most this many
// output pixels (N * OH * OW) and at least this many weights. Measured on the 7x7 stages of an AVX2 EPYC: on
// ResNet-50's layer 4 at batch 1 (4-9 MiB of weights, streamed from memory on every run) the GEMM is 5-15% faster
// than oneDNN's direct kernel; on MobileNetV2's (0.6-1.6 MiB) it is 5-20% slower. With blocks of 16 (AVX-512) the
// first guess stays with oneDNN: on an AVX-512 Xeon the GEMM took 1.07-1.18 of its time on ResNet-50's layer 4.
constexpr int64_t kConvGemmMaxPixels = 64, kConvGemmMinWeights = int64_t{512} << 10;

// The node's geometry; false when the node is not a valid NchwcConv (the reference kernel reports why).
bool setup(const KernelContext& ctx, NchwcGeom& n) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(1);
  return x && w && nchwc_conv_setup(ctx, *x, *w, ctx.input(2), ctx.input(3), n).is_ok();
}

// Z of the output's shape is accumulated into y (oneDNN's sum post-op, Winograd's output transform): y may take
// Z's place.
bool z_inline(const KernelContext& ctx, const NchwcGeom& n) {
  const Tensor* z = ctx.input(3);
  return z && z->dims() == n.bod;
}

// The AVX2 kernels' common conditions: constant weights prepared once in the session's shared cache.
bool avx2_weights(const KernelContext& ctx) {
  return ctx.input_is_constant(1) && ctx.shared_cache() && ctx.isa() >= Isa::kAvx2;
}

// Winograd's and the GEMM's conditions: blocks of 8 or 16 over a blocked input, one group, whole blocks of
// output channels, a ReLU, Clip or no activation (a clamp), and Z, if any, of the output's shape.
bool blocked_clamp(const KernelContext& ctx, const NchwcGeom& n) {
  const Tensor* z = ctx.input(3);
  return n.blocked_in && (n.B == 8 || n.B == 16) && n.g.group == 1 && n.M % n.B == 0 && is_clamp(n.act) &&
         (!z || z_inline(ctx, n)) && avx2_weights(ctx);
}

// The Winograd tile for this case: at stride 1, 4x4 where there are at least kWinogradMinTiles of them, else 2x2
// where there are; at stride 2, 2x2. 0 when no tile reaches kWinogradMinTiles (or a stride-2 input is under
// kWinogradStride2MinInput), where oneDNN's direct kernel is faster. Measured on ResNet-50's layers, F(4x4)
// against F(2x2): 0.71-0.80 of the time at batch 8 with 64, 128 and 512 channels, 0.91-0.96 with 256; at batch 1
// 0.77-0.91 with 64 and 128 channels (196 and 49 tiles of 4x4), but 1.10-1.27 with 256 channels at 14x14 (16
// tiles of 4x4, a quarter of them padding, and 9 MiB of transformed weights read on every call).
int preferred_winograd_tile(const Tensor& x, const ConvGeom& g) {
  if (g.strides[0] == 2 && x.num_elements() * int64_t{sizeof(float)} < kWinogradStride2MinInput) return 0;
  for (int tile : g.strides[0] == 2 ? std::vector<int>{2} : std::vector<int>{4, 2}) {
    if (winograd::tiles(tile, x.dims()[0], g.out[0], g.out[1]) >= kWinogradMinTiles) return tile;
  }
  return 0;
}

// A 1x1 convolution at stride 1 without padding.
bool pointwise_1x1(const ConvGeom& g) {
  auto zero = [](const Dims& d) { return std::all_of(d.begin(), d.end(), [](int64_t p) { return p == 0; }); };
  return g.kernel == Dims{1, 1} && g.strides == Dims{1, 1} && zero(g.pad_begin) && zero(g.pad_end);
}

// The own register-tiled kernels' (pointwise, direct) conditions: bias, Z of the output's shape and a ReLU, Clip or no
// activation applied in registers, constant weights prepared once; the output's padding lanes come out as clamp(0),
// zero unless the clamp excludes it.
bool register_epilogue(const KernelContext& ctx, const NchwcGeom& n) {
  float lo, hi;
  if (!activation_clamp(n.act, lo, hi)) return false;
  const Tensor* z = ctx.input(3);
  if ((z && !z_inline(ctx, n)) || !avx2_weights(ctx)) return false;
  return n.M % n.B == 0 || (lo <= 0.0f && hi >= 0.0f);
}

dnnl_kernels::ConvParams nchwc_dnnl_params(const NchwcGeom& n) {
  const ConvGeom& g = n.g;
  return dnnl_kernels::ConvParams{g.group,
                                  g.strides,
                                  g.dilations,
                                  g.pad_begin,
                                  g.pad_end,
                                  n.od,
                                  n.xd,
                                  n.blocked_in ? static_cast<int>(n.B) : 0,
                                  static_cast<int>(n.B)};
}

sgemm::Conv2dGeometry sgemm_geometry(const NchwcGeom& n) {
  const ConvGeom& g = n.g;
  return {n.xd[0],      n.xd[1],        n.xd[2],        n.xd[3],        n.M,
          g.kernel[0],  g.kernel[1],    g.out[0],       g.out[1],       g.strides[0],
          g.strides[1], g.pad_begin[0], g.pad_begin[1], g.dilations[0], g.dilations[1]};
}

// What a kernel works out once per input shape: the geometry and the weights prepared for it (shared with every
// node reading the same initializer).
struct Plan {
  NchwcGeom n;
  int tile = 0;                             // Winograd
  std::shared_ptr<sgemm::PackedB> packed;   // im2col and GEMM
  std::shared_ptr<winograd::Weights> wino;  // Winograd
  std::shared_ptr<pointwise::Weights> pw;   // pointwise and direct
  direct_conv::Tiling direct;               // direct
};

// The node's plan for `entry`, made by `make(plan)` the first time per shape signature of the inputs.
template <class Make>
StatusOr<std::shared_ptr<Plan>> get_plan(KernelContext& ctx, CacheEntry entry, Make make) {
  auto build = [&]() -> StatusOr<std::shared_ptr<Plan>> {
    auto plan = std::make_shared<Plan>();
    KILN_RETURN_IF_ERROR(nchwc_conv_setup(ctx, *ctx.input(0), *ctx.input(1), ctx.input(2), ctx.input(3), plan->n));
    KILN_RETURN_IF_ERROR(make(*plan));
    return plan;
  };
  if (!ctx.cache()) return build();
  CacheKey key{entry, {}};
  for (size_t i = 0; i < 4; ++i) {
    const Tensor* t = ctx.input(i);
    key.fields.push_back(t ? static_cast<int64_t>(t->rank()) : -1);
    if (!t) continue;
    key.fields.push_back(static_cast<int64_t>(t->dtype()));
    key.fields.insert(key.fields.end(), t->dims().begin(), t->dims().end());
  }
  return ctx.cache()->get<Plan>(key, build);
}

StatusOr<Tensor*> allocate_y(KernelContext& ctx, const NchwcGeom& n) {
  return z_inline(ctx, n) ? ctx.allocate_output_reusing(0, 3, DType::kFloat32, n.bod)
                          : ctx.allocate_output_uninitialized(0, DType::kFloat32, n.bod);
}

// What the kernels that finish in registers (Winograd, GEMM, pointwise, direct) take besides X and the weights: the
// output (allocate_y), the bias and Z (nullptr when absent) and the activation as a clamp.
struct Epilogue {
  float* y = nullptr;
  const float* bias = nullptr;
  const float* z = nullptr;
  float lo = 0, hi = 0;
};

StatusOr<Epilogue> epilogue_of(KernelContext& ctx, const NchwcGeom& n) {
  Epilogue e;
  KILN_ASSIGN_OR_RETURN(Tensor * y, allocate_y(ctx, n));
  e.y = y->data<float>();
  const Tensor* b = ctx.input(2);
  const Tensor* z = ctx.input(3);
  e.bias = b ? b->data<float>() : nullptr;
  e.z = z ? z->data<float>() : nullptr;
  activation_clamp(n.act, e.lo, e.hi);  // register_epilogue held: one of the clamps
  return e;
}

}  // namespace

// ---- nchwc_conv.im2col

bool nchwc_conv_im2col_supports(const KernelContext& ctx) {
  NchwcGeom n;
  if (!setup(ctx, n) || n.blocked_in || n.g.group != 1 || ctx.input(3) || !avx2_weights(ctx)) return false;
  return n.C * n.g.kernel[0] * n.g.kernel[1] <= 1024;
}

// Where oneDNN has a direct kernel, it is faster; without one it would take its gemm path and a reorder.
bool nchwc_conv_im2col_prefer(const KernelContext& ctx) {
  NchwcGeom n;
  if (!setup(ctx, n)) return false;
  return !dnnl_kernels::conv_has_direct_kernel(*ctx.input(0), *ctx.input(1), ctx.input(2) != nullptr,
                                               nchwc_dnnl_params(n));
}

Status nchwc_conv_im2col_kernel(KernelContext& ctx) {
  const Tensor& w = *ctx.input(1);
  KILN_ASSIGN_OR_RETURN(auto plan, get_plan(ctx, CacheEntry::kNchwcIm2colPlan, [&](Plan& p) -> Status {
                          const int64_t K = p.n.C * p.n.g.kernel[0] * p.n.g.kernel[1];
                          KILN_ASSIGN_OR_RETURN(
                              p.packed, shared_weights<sgemm::PackedB>(
                                            ctx, CacheEntry::kConvIm2colWeights, w, {K, p.n.M}, "packing weight W",
                                            [&] { return sgemm::pack_b(w.data<float>(), K, p.n.M, true); }));
                          return Status::ok();
                        }));
  const NchwcGeom& n = plan->n;
  const Activation& act = n.act;
  const Tensor* b = ctx.input(2);
  KILN_ASSIGN_OR_RETURN(Tensor * y, allocate_y(ctx, n));
  // ReLU is applied in the micro-kernel's registers; other activations on each finished tile.
  const bool relu = act.kind == K::kRelu;
  const std::function<void(float*, int64_t)> epilogue = [&act](float* tile, int64_t count) {
    apply_activation(act, tile, count);
  };
  sgemm::conv2d_nchw_to_blocked(ctx.isa(), ctx.input(0)->data<float>(), sgemm_geometry(n), *plan->packed,
                                b ? b->data<float>() : nullptr, n.B, y->data<float>(), relu,
                                act.none() || relu ? nullptr : &epilogue, pool_of(ctx, 64));
  ctx.set_kernel_detail(n.B == 16 && ctx.isa() >= Isa::kAvx512 ? "im2col_sgemm16.avx512" : "im2col_sgemm.avx2");
  return Status::ok();
}

// ---- nchwc_conv.winograd_f4 and nchwc_conv.winograd_f2

namespace {

bool winograd_supports(const KernelContext& ctx, NchwcGeom& n) {
  if (!setup(ctx, n) || !blocked_clamp(ctx, n) || n.C % n.B != 0 || !winograd::supports(ctx.isa(), n.B)) return false;
  const ConvGeom& g = n.g;
  return g.kernel == Dims{3, 3} && g.dilations == Dims{1, 1} && (g.strides == Dims{1, 1} || g.strides == Dims{2, 2});
}

// F(kTile x kTile, 3x3) at stride 1, or (kTile 2) the stride-2 form.
template <int kTile>
Status winograd_kernel(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(1);
  const CacheEntry entry = kTile == 4 ? CacheEntry::kNchwcWinogradF4Plan : CacheEntry::kNchwcWinogradPlan;
  KILN_ASSIGN_OR_RETURN(auto plan, get_plan(ctx, entry, [&](Plan& p) -> Status {
                          p.tile = kTile;
                          const ConvGeom& g = p.n.g;
                          KILN_ASSIGN_OR_RETURN(
                              p.wino, shared_weights<winograd::Weights>(
                                          ctx, CacheEntry::kWinogradWeights, w, {p.n.C, p.n.M, p.tile, g.strides[0]},
                                          "transforming weight W", [&] {
                                            return winograd::transform_weights(w.data<float>(), p.n.M, p.n.C, p.tile,
                                                                               static_cast<int>(g.strides[0]),
                                                                               pool_of(ctx));
                                          }));
                          return Status::ok();
                        }));
  const NchwcGeom& n = plan->n;
  const ConvGeom& g = n.g;
  KILN_ASSIGN_OR_RETURN(const Epilogue e, epilogue_of(ctx, n));
  const winograd::Geometry geo{n.xd[0], n.C, n.xd[2], n.xd[3], n.M, g.out[0], g.out[1], g.pad_begin[0], g.pad_begin[1]};
  winograd::conv3x3_blocked(ctx.isa(), n.B, x.data<float>(), geo, *plan->wino, e.bias, e.z, e.lo, e.hi, e.y,
                            pool_of(ctx));
  ctx.set_kernel_detail(std::string(g.strides[0] == 2 ? "winograd_f2x2_s2."
                                    : kTile == 4      ? "winograd_f4x4."
                                                      : "winograd_f2x2.") +
                        isa_name(ctx.isa()));
  return Status::ok();
}

}  // namespace

bool nchwc_conv_winograd_f4_supports(const KernelContext& ctx) {
  NchwcGeom n;
  return winograd_supports(ctx, n) && n.g.strides[0] == 1;
}

bool nchwc_conv_winograd_f4_prefer(const KernelContext& ctx) {
  NchwcGeom n;
  return setup(ctx, n) && preferred_winograd_tile(*ctx.input(0), n.g) == 4;
}

Status nchwc_conv_winograd_f4_kernel(KernelContext& ctx) { return winograd_kernel<4>(ctx); }

bool nchwc_conv_winograd_f2_supports(const KernelContext& ctx) {
  NchwcGeom n;
  return winograd_supports(ctx, n);
}

bool nchwc_conv_winograd_f2_prefer(const KernelContext& ctx) {
  NchwcGeom n;
  return setup(ctx, n) && preferred_winograd_tile(*ctx.input(0), n.g) == 2;
}

Status nchwc_conv_winograd_f2_kernel(KernelContext& ctx) { return winograd_kernel<2>(ctx); }

// ---- nchwc_conv.gemm

// The packed im2col (all output pixels by C KH KW) is a workspace of its own: up to this many bytes. Larger ones
// are convolutions with many pixels, where the GEMM never wins and the workspace (58 MiB for ResNet-50's first
// stage at batch 8) would only raise the peak memory while candidates are timed.
constexpr int64_t kConvGemmMaxWorkspace = int64_t{16} << 20;

bool nchwc_conv_gemm_supports(const KernelContext& ctx) {
  NchwcGeom n;
  if (!setup(ctx, n) || !blocked_clamp(ctx, n)) return false;
  const int64_t pixels = n.xd[0] * n.g.out[0] * n.g.out[1];
  const int64_t k = (n.C + n.B - 1) / n.B * n.B * n.g.kernel[0] * n.g.kernel[1];
  return pixels * k * int64_t{sizeof(float)} <= kConvGemmMaxWorkspace;
}

bool nchwc_conv_gemm_prefer(const KernelContext& ctx) {
  NchwcGeom n;
  if (!setup(ctx, n) || n.B != 8) return false;
  return n.xd[0] * n.g.out[0] * n.g.out[1] <= kConvGemmMaxPixels && ctx.input(1)->num_elements() >= kConvGemmMinWeights;
}

Status nchwc_conv_gemm_kernel(KernelContext& ctx) {
  const Tensor& w = *ctx.input(1);
  KILN_ASSIGN_OR_RETURN(auto plan, get_plan(ctx, CacheEntry::kNchwcGemmPlan, [&](Plan& p) -> Status {
                          const ConvGeom& g = p.n.g;
                          KILN_ASSIGN_OR_RETURN(
                              p.packed, shared_weights<sgemm::PackedB>(
                                            ctx, CacheEntry::kConvGemmWeights, w,
                                            {p.n.C, p.n.M, g.kernel[0], g.kernel[1], p.n.B}, "packing weight W", [&] {
                                              return sgemm::pack_conv_weights_blocked(w.data<float>(), p.n.M, p.n.C,
                                                                                      g.kernel[0], g.kernel[1], p.n.B);
                                            }));
                          return Status::ok();
                        }));
  const NchwcGeom& n = plan->n;
  KILN_ASSIGN_OR_RETURN(const Epilogue e, epilogue_of(ctx, n));
  sgemm::conv2d_blocked(ctx.isa(), n.B, ctx.input(0)->data<float>(), sgemm_geometry(n), *plan->packed, e.bias, e.z,
                        e.lo, e.hi, e.y, pool_of(ctx));
  ctx.set_kernel_detail("conv_gemm_blocked" + std::to_string(n.B) + "." + isa_name(ctx.isa()));
  return Status::ok();
}

// ---- nchwc_conv.pointwise

bool nchwc_conv_pointwise_supports(const KernelContext& ctx) {
  NchwcGeom n;
  if (!setup(ctx, n) || !n.blocked_in || !pointwise::supports(ctx.isa(), n.B) || n.g.group != 1) return false;
  return pointwise_1x1(n.g) && register_epilogue(ctx, n);
}

// With a residual Z (the end of a bottleneck block), where adding Z in registers beats oneDNN's sum post-op: measured
// on ResNet-50's conv3 layers, 0.75-0.97 of oneDNN's time on an AVX-512 Xeon at batch 8 and with blocks of 8
// (KILN_MAX_ISA=avx2) at batch 1, and on most of MobileNetV2's residual projections. Without Z each wins about half
// the layers: timing decides.
bool nchwc_conv_pointwise_prefer(const KernelContext& ctx) { return ctx.input(3) != nullptr; }

Status nchwc_conv_pointwise_kernel(KernelContext& ctx) {
  const Tensor& w = *ctx.input(1);
  KILN_ASSIGN_OR_RETURN(auto plan, get_plan(ctx, CacheEntry::kNchwcPointwisePlan, [&](Plan& p) -> Status {
                          KILN_ASSIGN_OR_RETURN(
                              p.pw,
                              shared_weights<pointwise::Weights>(
                                  ctx, CacheEntry::kPointwiseWeights, w, {p.n.M, p.n.C, p.n.B}, "packing weight W",
                                  [&] { return pointwise::pack_weights(w.data<float>(), p.n.M, p.n.C, p.n.B); }));
                          return Status::ok();
                        }));
  const NchwcGeom& n = plan->n;
  KILN_ASSIGN_OR_RETURN(const Epilogue e, epilogue_of(ctx, n));
  pointwise::conv1x1_blocked(ctx.isa(), ctx.input(0)->data<float>(), n.xd[0], n.xd[2] * n.xd[3], *plan->pw, e.bias, e.z,
                             e.lo, e.hi, e.y, ctx.num_threads(), pool_of(ctx));
  ctx.set_kernel_detail("pointwise" + std::to_string(n.B) + "." + isa_name(ctx.isa()));
  return Status::ok();
}

// ---- nchwc_conv.direct

namespace {

direct_conv::Geometry direct_geometry(const NchwcGeom& n) {
  const ConvGeom& g = n.g;
  direct_conv::Geometry d;
  d.N = n.xd[0];
  d.C = n.C;
  d.H = n.xd[2];
  d.W = n.xd[3];
  d.M = n.M;
  d.KH = g.kernel[0];
  d.KW = g.kernel[1];
  d.OH = g.out[0];
  d.OW = g.out[1];
  d.SH = g.strides[0];
  d.SW = g.strides[1];
  d.PH = g.pad_begin[0];
  d.PW = g.pad_begin[1];
  d.blocked_in = n.blocked_in;
  return d;
}

}  // namespace

bool nchwc_conv_direct_supports(const KernelContext& ctx) {
  NchwcGeom n;
  if (!setup(ctx, n) || !direct_conv::supports(ctx.isa(), n.B) || n.g.group != 1 || n.xd.size() != 4) return false;
  // 1x1 convolutions at stride 1 are nchwc_conv.pointwise's: the same tiles over whole planes instead of rows.
  if (n.g.dilations != Dims{1, 1} || (n.blocked_in && pointwise_1x1(n.g))) return false;
  return register_epilogue(ctx, n);
}

// Timing decides.
bool nchwc_conv_direct_prefer(const KernelContext&) { return false; }

Status nchwc_conv_direct_kernel(KernelContext& ctx) {
  const Tensor& w = *ctx.input(1);
  KILN_ASSIGN_OR_RETURN(
      auto plan, get_plan(ctx, CacheEntry::kNchwcDirectPlan, [&](Plan& p) -> Status {
        const direct_conv::Geometry d = direct_geometry(p.n);
        p.direct = direct_conv::tiling(d, p.n.B);
        KILN_ASSIGN_OR_RETURN(
            p.pw, shared_weights<pointwise::Weights>(
                      ctx, CacheEntry::kDirectConvWeights, w,
                      {p.n.M, direct_conv::packed_k(d, p.n.B), p.n.B, p.n.blocked_in ? 1 : 0}, "packing weight W",
                      [&] { return direct_conv::pack_weights(w.data<float>(), d, p.n.B); }));
        return Status::ok();
      }));
  const NchwcGeom& n = plan->n;
  KILN_ASSIGN_OR_RETURN(const Epilogue e, epilogue_of(ctx, n));
  direct_conv::conv_blocked(ctx.isa(), ctx.input(0)->data<float>(), plan->direct, *plan->pw, e.bias, e.z, e.lo, e.hi,
                            e.y, ctx.num_threads(), pool_of(ctx));
  ctx.set_kernel_detail("direct" + std::to_string(n.B) + "." + isa_name(ctx.isa()));
  return Status::ok();
}

// ---- nchwc_conv.dnnl

bool nchwc_conv_dnnl_supports(const KernelContext& ctx) {
  NchwcGeom n;
  return ctx.isa() >= Isa::kAvx2 && setup(ctx, n);
}

Status nchwc_conv_dnnl_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(auto plan, get_plan(ctx, CacheEntry::kNchwcDnnlPlan, [](Plan&) { return Status::ok(); }));
  const NchwcGeom& n = plan->n;
  const Tensor* z = ctx.input(3);
  const bool inline_z = z_inline(ctx, n);
  KILN_ASSIGN_OR_RETURN(Tensor * y, allocate_y(ctx, n));
  // A broadcast Z (blocked, so lanes line up) is added after.
  std::string impl;
  const dnnl_kernels::ConvParams params = nchwc_dnnl_params(n);
  Status st = dnnl_kernels::conv_f32(*ctx.input(0), *ctx.input(1), ctx.input(2), inline_z ? z : nullptr, params,
                                     z && !inline_z ? Activation{} : n.act, ctx.cache(), ctx.input_is_constant(1), *y,
                                     ctx.num_threads(), &impl, ctx.shared_cache());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  if (ctx.preparing()) return Status::ok();
  if (z && !inline_z) {
    KILN_RETURN_IF_ERROR(add_broadcast_f32(ctx, *y, *z));
    apply_activation(n.act, y->data<float>(), y->num_elements());
    zero_padding_lanes(*y, n.M, n.B);
  }
  return Status::ok();
}

}  // namespace kiln::cpu
