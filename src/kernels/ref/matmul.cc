// Matrix products: MatMul, Gemm, ai.kiln FusedMatMul, MatMulInteger, QLinearMatMul.
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

namespace {

// ---------------------------------------------------------------- MatMul

// out = a @ b with numpy matmul semantics; E is double (float inputs) or uint64_t (integer inputs, computed
// modulo 2^64 like C++ integer arithmetic).
template <typename E>
Status matmul_core(const KernelContext& ctx, Dims ad, const std::vector<E>& a, Dims bd, const std::vector<E>& b,
                   Dims& od, std::vector<E>& o) {
  if (ad.empty() || bd.empty()) return ctx.error("MatMul inputs must have rank >= 1 (got scalars)");
  const bool a1 = ad.size() == 1, b1 = bd.size() == 1;
  if (a1) ad.insert(ad.begin(), 1);
  if (b1) bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad.back(), K2 = bd[bd.size() - 2], N = bd.back();
  if (K != K2) {
    return ctx.error("inner dimensions do not match: A has shape " + dstr(ad) + " and B has shape " + dstr(bd) + " (" +
                     std::to_string(K) + " vs " + std::to_string(K2) + ")");
  }
  Dims abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  auto batch = broadcast_shapes(abatch, bbatch);
  if (!batch.is_ok()) return ctx.error("batch dimensions: " + batch.status().message());
  const Dims& bt = *batch;
  auto as = broadcast_strides(abatch, bt), bs = broadcast_strides(bbatch, bt);
  const int64_t nb = product(bt);
  o.assign(static_cast<size_t>(nb * M * N), E{});
  Dims idx(bt.size(), 0);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t ao = 0, bo = 0;
    for (size_t d = 0; d < bt.size(); ++d) {
      ao += idx[d] * as[d];
      bo += idx[d] * bs[d];
    }
    const E* pa = a.data() + ao * M * K;
    const E* pb = b.data() + bo * K * N;
    E* po = o.data() + bi * M * N;
    ctx.parallel_for(M, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, N * K)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < N; ++j) {
          E s{};
          for (int64_t k = 0; k < K; ++k) s += pa[i * K + k] * pb[k * N + j];
          po[i * N + j] = s;
        }
    });
    next_index(idx, bt);
  }
  od = bt;
  if (!a1) od.push_back(M);
  if (!b1) od.push_back(N);
  return Status::ok();
}

}  // namespace

Status matmul_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* a, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* b, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *a, "input 0 (A)"));
  if (a->dtype() != b->dtype()) {
    return ctx.error(std::string("A and B have different dtypes: ") + dtype_name(a->dtype()) + " and " +
                     dtype_name(b->dtype()));
  }
  Dims od;
  if (!is_float_dtype(a->dtype())) {
    // Exact integer arithmetic (wrapping), not through double.
    auto to_u64 = [](const Tensor& t) {
      std::vector<uint64_t> v(static_cast<size_t>(t.num_elements()));
      dispatch_numeric(t.dtype(), [&](auto tag) {
        using T = decltype(tag);
        for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint64_t>(t.data<T>()[i]);
      });
      return v;
    };
    std::vector<uint64_t> o;
    KILN_RETURN_IF_ERROR(matmul_core(ctx, a->dims(), to_u64(*a), b->dims(), to_u64(*b), od, o));
    KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output(0, a->dtype(), od));
    dispatch_numeric(a->dtype(), [&](auto tag) {
      using T = decltype(tag);
      for (size_t i = 0; i < o.size(); ++i) out->data<T>()[i] = static_cast<T>(o[i]);
    });
    return Status::ok();
  }
  Vec o;
  KILN_RETURN_IF_ERROR(matmul_core(ctx, a->dims(), to_doubles(*a), b->dims(), to_doubles(*b), od, o));
  return write_output(ctx, 0, a->dtype(), od, o);
}

// ai.kiln FusedMatMul(A, B, bias?): act(A @ B + bias) for float32 A of rank >= 2, 2-D B [K, N] and bias [N]
// (MatMul + Add + activation, fused by the optimizer).
Status fusedmatmul_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* a, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* b, ctx.required_input(1));
  const Tensor* bias = ctx.input(2);
  KILN_ASSIGN_OR_RETURN(Activation act, fused_activation(ctx));
  if (a->dtype() != DType::kFloat32) return ctx.unsupported_dtype(a->dtype(), "input 0 (A)");
  if (b->dtype() != DType::kFloat32) return ctx.unsupported_dtype(b->dtype(), "input 1 (B)");
  if (a->rank() < 2) return ctx.error("input 0 (A) must have rank >= 2, got shape " + dstr(a->dims()));
  if (b->rank() != 2) return ctx.error("input 1 (B) must be 2-D, got shape " + dstr(b->dims()));
  const Dims& ad = a->dims();
  const int64_t K = ad.back(), N = b->dims()[1];
  if (b->dims()[0] != K) {
    return ctx.error("inner dimensions do not match: A " + dstr(ad) + ", B " + dstr(b->dims()));
  }
  if (bias && (bias->dtype() != DType::kFloat32 || bias->num_elements() != N)) {
    return ctx.error("input 2 (bias) must be float32 with " + std::to_string(N) + " elements, got " +
                     dtype_name(bias->dtype()) + " " + dstr(bias->dims()));
  }
  Dims od(ad.begin(), ad.end() - 1);
  od.push_back(N);
  const int64_t M = product(ad, 0, ad.size() - 1);
  KILN_ASSIGN_OR_RETURN(Tensor * out, ctx.allocate_output_uninitialized(0, DType::kFloat32, od));
  float* y = out->data<float>();
  const float* pa = a->data<float>();
  const float* pb = b->data<float>();
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double s = bias ? bias->data<float>()[j] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(pa[i * K + k]) * pb[k * N + j];
      y[i * N + j] = static_cast<float>(s);
    }
  }
  apply_activation(act, y, M * N);
  return Status::ok();
}

namespace {

// Zero point subtraction for the integer ops: zp is a scalar, or a 1-D tensor along `axis` of the (unbatched)
// matrix (rows of A: axis -2; columns of B: axis -1).
Status subtract_zero_point(const KernelContext& ctx, const Tensor* zp, const Dims& dims, Vec& v, bool per_row,
                           const std::string& which) {
  if (!zp) return Status::ok();
  Vec z = to_doubles(*zp);
  if (z.size() == 1) {
    for (double& x : v) x -= z[0];
    return Status::ok();
  }
  if (dims.empty()) return ctx.error(which + " must be a scalar");
  const int64_t cols = dims.back();
  const int64_t rows = dims.size() >= 2 ? dims[dims.size() - 2] : 1;
  const int64_t n = per_row ? rows : cols;
  if (static_cast<int64_t>(z.size()) != n && static_cast<int64_t>(z.size()) != n * (product(dims) / (rows * cols))) {
    return ctx.error(which + " has " + std::to_string(z.size()) + " elements; expected 1 or " + std::to_string(n));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t ii = static_cast<int64_t>(i);
    const int64_t batch = ii / (rows * cols);
    const int64_t k = per_row ? (ii / cols) % rows : ii % cols;
    const size_t zi = static_cast<int64_t>(z.size()) == n ? static_cast<size_t>(k) : static_cast<size_t>(batch * n + k);
    v[i] -= z[zi];
  }
  return Status::ok();
}

}  // namespace

Status matmulinteger_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* a, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* b, ctx.required_input(1));
  if (!is_8bit(a->dtype())) return ctx.unsupported_dtype(a->dtype(), "input 0 (A)");
  if (!is_8bit(b->dtype())) return ctx.unsupported_dtype(b->dtype(), "input 1 (B)");
  Vec av = to_doubles(*a), bv = to_doubles(*b);
  KILN_RETURN_IF_ERROR(subtract_zero_point(ctx, ctx.input(2), a->dims(), av, true, "input 2 (a_zero_point)"));
  KILN_RETURN_IF_ERROR(subtract_zero_point(ctx, ctx.input(3), b->dims(), bv, false, "input 3 (b_zero_point)"));
  Dims od;
  Vec o;
  KILN_RETURN_IF_ERROR(matmul_core(ctx, a->dims(), av, b->dims(), bv, od, o));
  return write_output(ctx, 0, DType::kInt32, od, o);
}

namespace {}  // namespace

Status qlinearmatmul_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 8; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(3);
  const Tensor& yzp = *ctx.input(7);
  if (!is_8bit(a.dtype())) return ctx.unsupported_dtype(a.dtype(), "input 0 (a)");
  if (!is_8bit(b.dtype())) return ctx.unsupported_dtype(b.dtype(), "input 3 (b)");
  double lo, hi;
  if (!quant_range(yzp.dtype(), lo, hi)) return ctx.unsupported_dtype(yzp.dtype(), "input 7 (y_zero_point)");
  Vec av = to_doubles(a), bv = to_doubles(b);
  KILN_RETURN_IF_ERROR(subtract_zero_point(ctx, ctx.input(2), a.dims(), av, true, "input 2 (a_zero_point)"));
  KILN_RETURN_IF_ERROR(subtract_zero_point(ctx, ctx.input(5), b.dims(), bv, false, "input 5 (b_zero_point)"));
  // Scales: fold a_scale into A rows and b_scale into B columns (scalars in the common case).
  Vec as = to_doubles(*ctx.input(1)), bs = to_doubles(*ctx.input(4)), ys = to_doubles(*ctx.input(6));
  Vec yz = to_doubles(yzp);
  if (ys.size() != 1 || yz.size() != 1) return ctx.error("y_scale and y_zero_point must be scalars");
  Dims od;
  Vec o;
  KILN_RETURN_IF_ERROR(matmul_core(ctx, a.dims(), av, b.dims(), bv, od, o));
  if (as.size() != 1 || bs.size() != 1) {
    // per-row a_scale (M values) and/or per-column b_scale (N values)
    const int64_t N = b.rank() >= 2 ? b.dims().back() : 1;
    const int64_t M = a.rank() >= 2 ? a.dims()[a.rank() - 2] : 1;
    if (bs.size() != 1 && static_cast<int64_t>(bs.size()) != N) {
      return ctx.error("b_scale must be a scalar or have N = " + std::to_string(N) + " elements");
    }
    if (as.size() != 1 && static_cast<int64_t>(as.size()) != M) {
      return ctx.error("a_scale must be a scalar or have M = " + std::to_string(M) + " elements");
    }
    for (size_t i = 0; i < o.size(); ++i) {
      const size_t col = i % static_cast<size_t>(N), row = (i / static_cast<size_t>(N)) % static_cast<size_t>(M);
      double s = as[as.size() == 1 ? 0 : row] * bs[bs.size() == 1 ? 0 : col] / ys[0];
      o[i] = saturate(round_half_even(o[i] * s) + yz[0], lo, hi);
    }
  } else {
    const float s = static_cast<float>(as[0]) * static_cast<float>(bs[0]) / static_cast<float>(ys[0]);
    for (double& v : o) v = saturate(round_half_even(v * s) + yz[0], lo, hi);
  }
  return write_output(ctx, 0, yzp.dtype(), od, o);
}

Status gemm_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* a, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* b, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *a, "input 0 (A)"));
  if (a->rank() != 2) return ctx.error("input 0 (A) must be 2-D, got shape " + dstr(a->dims()));
  if (b->rank() != 2) return ctx.error("input 1 (B) must be 2-D, got shape " + dstr(b->dims()));
  const bool ta = ctx.attr_int("transA", 0) != 0, tb = ctx.attr_int("transB", 0) != 0;
  const double alpha = ctx.attr_float("alpha", 1.0f), beta = ctx.attr_float("beta", 1.0f);
  const int64_t M = ta ? a->dims()[1] : a->dims()[0], K = ta ? a->dims()[0] : a->dims()[1];
  const int64_t K2 = tb ? b->dims()[1] : b->dims()[0], N = tb ? b->dims()[0] : b->dims()[1];
  if (K != K2) {
    return ctx.error("inner dimensions do not match: A " + dstr(a->dims()) + (ta ? " (transposed)" : "") + ", B " +
                     dstr(b->dims()) + (tb ? " (transposed)" : ""));
  }
  Vec av = to_doubles(*a), bv = to_doubles(*b);
  Vec o(static_cast<size_t>(M * N), 0.0);
  ctx.parallel_for(M, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, N * K)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) {
          double x = ta ? av[k * M + i] : av[i * K + k];
          double y = tb ? bv[j * K + k] : bv[k * N + j];
          s += x * y;
        }
        o[i * N + j] = alpha * s;
      }
  });
  if (const Tensor* c = ctx.input(2)) {
    Dims od{M, N};
    auto bc = broadcast_shapes(c->dims(), od);
    if (!bc.is_ok() || *bc != od) {
      return ctx.error("input 2 (C) of shape " + dstr(c->dims()) + " cannot be broadcast to " + dstr(od));
    }
    auto cs = broadcast_strides(c->dims(), od);
    Vec cv = to_doubles(*c);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) o[i * N + j] += beta * cv[i * cs[0] + j * cs[1]];
  }
  return write_output(ctx, 0, a->dtype(), {M, N}, o);
}

}  // namespace kiln::cpu
