// Fast matrix products for float32 (MatMul, Gemm, ai.kiln FusedMatMul), two kernels each, in order of
// preference: `.sgemm`, kiln's AVX2 SGEMM over a constant B packed once into the session's shared cache, and
// `.dnnl`, oneDNN's matmul (B packed into the node's cache when constant). Each supports() accepts exactly the
// cases the kernel computes like the reference kernel; anything else runs the reference kernel.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/dnnl/dnnl_kernels.h"
#include "kernels/fast/parallel.h"
#include "kernels/fast/weights.h"
#include "kernels/kernel.h"
#include "kernels/x86/gemv_bf16.h"
#include "kernels/x86/sgemm.h"
#include "kernels/x86/vmath.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

// The packed SGEMM's conditions on B: a constant 2-D float32 of the model, a session that shares prepared
// weights, and AVX2.
bool sgemm_takes_b(const KernelContext& ctx) {
  const Tensor* b = ctx.input(1);
  return ctx.input_is_constant(1) && ctx.shared_cache() && ctx.isa() >= Isa::kAvx2 && is_f32(b) && b->rank() == 2;
}

// y[M, N] = act(a[M, K] @ B + bias) with B input 1 of the node ([K, N], or [N, K] when trans_b), packed once into
// the session's shared cache, then the AVX2 GEMM (sgemm_takes_b holds).
Status packed_gemm(KernelContext& ctx, const float* a, int64_t M, int64_t K, const Tensor& b, bool trans_b,
                   const float* bias, float* y, const Activation& act) {
  const int64_t N = trans_b ? b.dims()[0] : b.dims()[1];
  KILN_ASSIGN_OR_RETURN(auto packed,
                        shared_weights<sgemm::PackedB>(ctx, CacheEntry::kSgemmB, b, {K, N, trans_b}, "packing weight B",
                                                       [&] { return sgemm::pack_b(b.data<float>(), K, N, trans_b); }));
  // ReLU and GELU run on each finished block while it is in cache; the other activations in one oneDNN pass.
  const bool in_tasks = act.kind == Activation::Kind::kRelu || act.kind == Activation::Kind::kGelu;
  const sgemm::Epilogue epilogue = [&act, isa = ctx.isa()](float* c, int64_t rows, int64_t cols, int64_t ldc) {
    for (int64_t i = 0; i < rows; ++i) {
      if (act.kind == Activation::Kind::kGelu) {
        vmath::gelu(isa, c + i * ldc, cols);
      } else {
        apply_activation(act, c + i * ldc, cols);
      }
    }
  };
  sgemm::gemm(ctx.isa(), a, M, K, *packed, bias, y, pool_of(ctx), in_tasks ? &epilogue : nullptr);
  if (!in_tasks) {
    Status st = dnnl_kernels::eltwise_f32(y, M * N, act, ctx.num_threads());
    if (!st.is_ok()) return ctx.error(st.message());
  }
  ctx.set_kernel_detail(std::string("sgemm.") + isa_name(ctx.isa()));
  return Status::ok();
}

Status dnnl_matmul(KernelContext& ctx, const float* a, const float* b, const float* bias, float* y,
                   const dnnl_kernels::MatMulParams& p, const Activation& act, bool constant_b) {
  std::string impl;
  Status st = dnnl_kernels::matmul_f32(a, b, bias, y, p, act, ctx.cache(), constant_b, ctx.num_threads(), &impl,
                                       ctx.shared_cache());
  if (!st.is_ok()) return ctx.error(st.message());
  ctx.set_kernel_detail(impl);
  return Status::ok();
}

// ---- MatMul: float32 A and B of rank >= 2 with matching inner dimensions, and B 2-D (A's leading dims fold
// into M) or both with the same batch dims.

bool matmul_fits(const KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  if (!is_f32(a) || !is_f32(b) || a->rank() < 2 || b->rank() < 2) return false;
  const Dims& ad = a->dims();
  const Dims& bd = b->dims();
  if (bd[bd.size() - 2] != ad.back()) return false;
  return b->rank() == 2 || Dims(ad.begin(), ad.end() - 2) == Dims(bd.begin(), bd.end() - 2);
}

// The output of a MatMul that matmul_fits, allocated; `batch` and `rows`: the product's batch count and rows
// (B 2-D: one batch of every row of A).
StatusOr<Tensor*> matmul_output(KernelContext& ctx, int64_t& batch, int64_t& rows) {
  const Dims& ad = ctx.input(0)->dims();
  const Dims abatch(ad.begin(), ad.end() - 2);
  const int64_t M = ad[ad.size() - 2];
  if (ctx.input(1)->rank() == 2) {
    batch = 1;
    rows = product(abatch) * M;
  } else {
    batch = product(abatch);
    rows = M;
  }
  Dims od = abatch;
  od.push_back(M);
  od.push_back(ctx.input(1)->dims().back());
  return ctx.allocate_output_uninitialized(0, DType::kFloat32, od);
}

// ---- Gemm: float32 2-D A and B, C absent or a row of N floats with alpha = beta = 1.

bool gemm_fits(const KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  const Tensor* c = ctx.input(2);
  if (!is_f32(a) || !is_f32(b) || a->rank() != 2 || b->rank() != 2) return false;
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const int64_t K = ta ? a->dims()[0] : a->dims()[1];
  const int64_t K2 = tb ? b->dims()[1] : b->dims()[0], N = tb ? b->dims()[0] : b->dims()[1];
  if (K != K2) return false;
  if (!c) return true;
  const bool c_is_row =
      is_f32(c) && c->num_elements() == N && (c->rank() == 1 || (c->rank() == 2 && c->dims()[0] == 1));
  return c_is_row && ctx.attr_float("alpha", 1.0f) == 1.0f && ctx.attr_float("beta", 1.0f) == 1.0f;
}

// ---- FusedMatMul: float32 A of rank >= 2, 2-D B [K, N], bias absent or float32 with N elements, and a known
// activation.

bool fusedmatmul_fits(const KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  const Tensor* bias = ctx.input(2);
  if (!is_f32(a) || !is_f32(b) || a->rank() < 2 || b->rank() != 2 || b->dims()[0] != a->dims().back()) return false;
  if (bias && (!is_f32(bias) || bias->num_elements() != b->dims()[1])) return false;
  return fused_activation(ctx).is_ok();
}

struct FusedMatMulArgs {
  const float* a;
  const Tensor* b;
  const float* bias;
  int64_t M, K, N;
  Activation act;
  float* y;
};

StatusOr<FusedMatMulArgs> fusedmatmul_args(KernelContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  const Tensor* bias = ctx.input(2);
  FusedMatMulArgs r{a->data<float>(), b, bias ? bias->data<float>() : nullptr, 0, 0, 0, {}, nullptr};
  KILN_ASSIGN_OR_RETURN(r.act, fused_activation(ctx));
  const Dims& ad = a->dims();
  r.K = ad.back();
  r.N = b->dims()[1];
  r.M = product(ad, 0, ad.size() - 1);
  Dims od(ad.begin(), ad.end() - 1);
  od.push_back(r.N);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, od));
  r.y = out->data<float>();
  return r;
}

// kiln's bfloat16 product's conditions on B: those of the SGEMM's, in a bf16 session on a CPU with AVX512-BF16.
bool gemv_takes_b(const KernelContext& ctx) {
  const Tensor* b = ctx.input(1);
  return bf16_allowed(ctx) && gemv_bf16::supported() && ctx.input_is_constant(1) && ctx.shared_cache() && is_f32(b) &&
         b->rank() == 2;
}

// y[M, N] = act(a[M, K] @ B + bias) in bfloat16 with float32 sums, B input 1 ([K, N], or [N, K] when trans_b).
Status packed_gemv(KernelContext& ctx, const float* a, int64_t M, int64_t K, const Tensor& b, bool trans_b,
                   const float* bias, float* y, const Activation& act) {
  const int64_t N = trans_b ? b.dims()[0] : b.dims()[1];
  KILN_ASSIGN_OR_RETURN(auto packed, shared_weights<gemv_bf16::Packed>(
                                         ctx, CacheEntry::kGemvBf16Weights, b, {K, N, trans_b}, "packing weight B",
                                         [&] { return gemv_bf16::pack(b.data<float>(), K, N, trans_b); }));
  gemv_bf16::multiply(a, M, K, *packed, bias, y, pool_of(ctx));
  for (int64_t i = 0; i < M; ++i) apply_activation(act, y + i * N, N);
  ctx.set_kernel_detail("gemv_bf16.avx512");
  return Status::ok();
}

// The packed products by a constant B (input 1): packed_gemm (float32 SGEMM) and packed_gemv (bfloat16, few rows).
using PackedProduct = Status (*)(KernelContext&, const float* a, int64_t M, int64_t K, const Tensor& b, bool trans_b,
                                 const float* bias, float* y, const Activation& act);

// MatMul with a 2-D B: A's leading dimensions fold into the rows.
Status matmul_by(KernelContext& ctx, PackedProduct product) {
  int64_t batch = 0, rows = 0;
  KILN_ASSIGN_OR_RETURN(Tensor * out, matmul_output(ctx, batch, rows));
  const Tensor& b = *ctx.input(1);
  return product(ctx, ctx.input(0)->data<float>(), rows, b.dims()[0], b, false, nullptr, out->data<float>(),
                 Activation{});
}

// Gemm with transA = 0 and alpha = 1 (gemm_plain_a), C a row or absent.
bool gemm_plain_a(const KernelContext& ctx) {
  return gemm_fits(ctx) && ctx.attr_int("transA", 0) == 0 && ctx.attr_float("alpha", 1.0f) == 1.0f;
}

Status gemm_by(KernelContext& ctx, PackedProduct product) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  const Tensor* c = ctx.input(2);
  const bool tb = ctx.attr_int("transB", 0) != 0;
  const int64_t M = a.dims()[0], K = a.dims()[1], N = tb ? b.dims()[0] : b.dims()[1];
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, {M, N}));
  return product(ctx, a.data<float>(), M, K, b, tb, c ? c->data<float>() : nullptr, out->data<float>(), Activation{});
}

Status fusedmatmul_by(KernelContext& ctx, PackedProduct product) {
  KILN_ASSIGN_OR_RETURN(FusedMatMulArgs r, fusedmatmul_args(ctx));
  return product(ctx, r.a, r.M, r.K, *r.b, false, r.bias, r.y, r.act);
}

// The rows of A a MatMul or FusedMatMul multiplies (its leading dimensions folded).
int64_t rows_of_a(const KernelContext& ctx) {
  const Dims& ad = ctx.input(0)->dims();
  return product(ad, 0, ad.size() - 1);
}

}  // namespace

bool matmul_sgemm_supports(const KernelContext& ctx) { return matmul_fits(ctx) && sgemm_takes_b(ctx); }

Status matmul_sgemm_kernel(KernelContext& ctx) { return matmul_by(ctx, packed_gemm); }

bool matmul_dnnl_supports(const KernelContext& ctx) { return matmul_fits(ctx) && ctx.isa() >= Isa::kAvx2; }

static Status matmul_dnnl(KernelContext& ctx, bool bf16) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  dnnl_kernels::MatMulParams p;
  p.bf16 = bf16;
  KILN_ASSIGN_OR_RETURN(Tensor * out, matmul_output(ctx, p.batch, p.M));
  p.K = a.dims().back();
  p.N = b.dims().back();
  return dnnl_matmul(ctx, a.data<float>(), b.data<float>(), nullptr, out->data<float>(), p, {},
                     ctx.input_is_constant(1) && b.rank() == 2);
}

bool gemm_sgemm_supports(const KernelContext& ctx) { return gemm_plain_a(ctx) && sgemm_takes_b(ctx); }

Status gemm_sgemm_kernel(KernelContext& ctx) { return gemm_by(ctx, packed_gemm); }

bool gemm_dnnl_supports(const KernelContext& ctx) { return gemm_fits(ctx) && ctx.isa() >= Isa::kAvx2; }

static Status gemm_dnnl(KernelContext& ctx, bool bf16) {
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  const Tensor* c = ctx.input(2);
  dnnl_kernels::MatMulParams p;
  p.bf16 = bf16;
  p.trans_a = ctx.attr_int("transA", 0) != 0;
  p.trans_b = ctx.attr_int("transB", 0) != 0;
  p.M = p.trans_a ? a.dims()[1] : a.dims()[0];
  p.K = p.trans_a ? a.dims()[0] : a.dims()[1];
  p.N = p.trans_b ? b.dims()[0] : b.dims()[1];
  p.alpha = ctx.attr_float("alpha", 1.0f);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, {p.M, p.N}));
  return dnnl_matmul(ctx, a.data<float>(), b.data<float>(), c ? c->data<float>() : nullptr, out->data<float>(), p, {},
                     ctx.input_is_constant(1));
}

bool fusedmatmul_sgemm_supports(const KernelContext& ctx) { return fusedmatmul_fits(ctx) && sgemm_takes_b(ctx); }

Status fusedmatmul_sgemm_kernel(KernelContext& ctx) { return fusedmatmul_by(ctx, packed_gemm); }

bool fusedmatmul_dnnl_supports(const KernelContext& ctx) { return fusedmatmul_fits(ctx) && ctx.isa() >= Isa::kAvx2; }

static Status fusedmatmul_dnnl(KernelContext& ctx, bool bf16) {
  KILN_ASSIGN_OR_RETURN(FusedMatMulArgs r, fusedmatmul_args(ctx));
  dnnl_kernels::MatMulParams p;
  p.M = r.M;
  p.N = r.N;
  p.K = r.K;
  p.bf16 = bf16;
  return dnnl_matmul(ctx, r.a, r.b->data<float>(), r.bias, r.y, p, r.act, ctx.input_is_constant(1));
}

Status matmul_dnnl_kernel(KernelContext& ctx) { return matmul_dnnl(ctx, false); }
Status gemm_dnnl_kernel(KernelContext& ctx) { return gemm_dnnl(ctx, false); }
Status fusedmatmul_dnnl_kernel(KernelContext& ctx) { return fusedmatmul_dnnl(ctx, false); }

// ---- The bfloat16 forms (Precision::kBf16): the same cases on oneDNN's bfloat16 matmul, and products of at
// most gemv_bf16::kMaxRows rows by a constant B on kiln's AVX512-BF16 kernel (B packed once into the shared cache).

bool matmul_gemv_bf16_supports(const KernelContext& ctx) {
  return matmul_fits(ctx) && gemv_takes_b(ctx) && rows_of_a(ctx) <= gemv_bf16::kMaxRows;
}
Status matmul_gemv_bf16_kernel(KernelContext& ctx) { return matmul_by(ctx, packed_gemv); }
bool gemm_gemv_bf16_supports(const KernelContext& ctx) {
  return gemm_plain_a(ctx) && gemv_takes_b(ctx) && ctx.input(0)->dims()[0] <= gemv_bf16::kMaxRows;
}
Status gemm_gemv_bf16_kernel(KernelContext& ctx) { return gemm_by(ctx, packed_gemv); }
bool fusedmatmul_gemv_bf16_supports(const KernelContext& ctx) {
  return fusedmatmul_fits(ctx) && gemv_takes_b(ctx) && rows_of_a(ctx) <= gemv_bf16::kMaxRows;
}
Status fusedmatmul_gemv_bf16_kernel(KernelContext& ctx) { return fusedmatmul_by(ctx, packed_gemv); }

bool matmul_dnnl_bf16_supports(const KernelContext& ctx) { return matmul_fits(ctx) && bf16_allowed(ctx); }
Status matmul_dnnl_bf16_kernel(KernelContext& ctx) { return matmul_dnnl(ctx, true); }
bool gemm_dnnl_bf16_supports(const KernelContext& ctx) { return gemm_fits(ctx) && bf16_allowed(ctx); }
Status gemm_dnnl_bf16_kernel(KernelContext& ctx) { return gemm_dnnl(ctx, true); }
bool fusedmatmul_dnnl_bf16_supports(const KernelContext& ctx) { return fusedmatmul_fits(ctx) && bf16_allowed(ctx); }
Status fusedmatmul_dnnl_bf16_kernel(KernelContext& ctx) { return fusedmatmul_dnnl(ctx, true); }

}  // namespace kiln::cpu
