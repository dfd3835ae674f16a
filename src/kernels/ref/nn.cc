// Neural-network operators: convolution, pooling, normalization, matrix products, resize.
// Reference kernels: every input is read as double, computed with plain loops and written back in the
// output dtype (float16/bfloat16 round through float32).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/activation.h"
#include "kernels/dnnl/dnnl_kernels.h"
#include "kernels/kernel.h"
#include "kernels/ref/conv_geometry.h"
#include "kernels/ref/resize.h"
#include "kernels/x86/sgemm.h"
#include "kernels/x86/vmath.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;
using Vec = std::vector<double>;

bool is_float_dtype(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16;
}

std::string dstr(const Dims& d) { return dims_to_string(d); }

// Writes `v` as output i of dtype `dt` and dims `dims`.
Status write_output(KernelContext& ctx, size_t i, DType dt, const Dims& dims, const Vec& v) {
  if (i >= ctx.num_outputs()) return Status::ok();
  const DType alloc = is_half(dt) ? DType::kFloat32 : dt;
  KILN_ASSIGN_OR_RETURN(Tensor * t, ctx.allocate_output(i, alloc, dims));
  const size_t n = static_cast<size_t>(t->num_elements());
  bool ok = dispatch_numeric(alloc, [&](auto tag) {
    using T = decltype(tag);
    T* p = t->template data<T>();
    for (size_t k = 0; k < n && k < v.size(); ++k) {
      if constexpr (std::is_same_v<T, bool>) {
        p[k] = v[k] != 0;
      } else if constexpr (std::is_integral_v<T>) {
        // Saturate (and map NaN to 0) so the conversion is always defined.
        const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
        const double hi = static_cast<double>(std::numeric_limits<T>::max());
        const double x = std::isnan(v[k]) ? 0.0 : v[k];
        p[k] = x <= lo ? std::numeric_limits<T>::lowest() : x >= hi ? std::numeric_limits<T>::max() : static_cast<T>(x);
      } else {
        p[k] = static_cast<T>(v[k]);
      }
    }
  });
  if (!ok) return ctx.unsupported_dtype(dt, "output " + std::to_string(i));
  if (is_half(dt)) {
    KILN_ASSIGN_OR_RETURN(Tensor h, from_float(*t, dt));
    ctx.set_output(i, std::move(h));
  }
  return Status::ok();
}

Status require_float(const KernelContext& ctx, const Tensor& t, const std::string& which) {
  if (!is_float_dtype(t.dtype())) return ctx.unsupported_dtype(t.dtype(), which);
  return Status::ok();
}

Status require_numeric(const KernelContext& ctx, const Tensor& t, const std::string& which) {
  if (is_float_dtype(t.dtype())) return Status::ok();
  bool ok = dispatch_numeric(t.dtype(), [](auto) {});
  if (!ok || t.dtype() == DType::kBool) return ctx.unsupported_dtype(t.dtype(), which);
  return Status::ok();
}

double round_half_even(double x) { return std::nearbyint(x); }

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

bool is_8bit(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }

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

namespace {

// Saturating conversion of a rounded value into an integer quantized dtype.
bool quant_range(DType t, double& lo, double& hi) {
  switch (t) {
    case DType::kUInt8:
      lo = 0;
      hi = 255;
      return true;
    case DType::kInt8:
      lo = -128;
      hi = 127;
      return true;
    case DType::kUInt16:
      lo = 0;
      hi = 65535;
      return true;
    case DType::kInt16:
      lo = -32768;
      hi = 32767;
      return true;
    case DType::kInt32:
      lo = -2147483648.0;
      hi = 2147483647.0;
      return true;
    case DType::kUInt4:
      lo = 0;
      hi = 15;
      return true;
    case DType::kInt4:
      lo = -8;
      hi = 7;
      return true;
    default: return false;
  }
}

double saturate(double v, double lo, double hi) { return std::min(hi, std::max(lo, v)); }

}  // namespace

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

Status scalar_of(const KernelContext& ctx, const Tensor* t, double def, double& out, const std::string& which) {
  out = def;
  if (!t) return Status::ok();
  if (t->num_elements() != 1) return ctx.error(which + " must be a scalar, got shape " + dstr(t->dims()));
  out = to_doubles(*t)[0];
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

Status qlinearconv_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 8; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  const Tensor& w = *ctx.input(3);
  const Tensor& yzp = *ctx.input(7);
  double lo, hi;
  if (!quant_range(yzp.dtype(), lo, hi)) return ctx.unsupported_dtype(yzp.dtype(), "input 7 (y_zero_point)");
  Vec bias;
  const Tensor* b = ctx.input(8);
  if (b) bias = to_doubles(*b);
  ConvGeom g;
  Vec y;
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
  return write_output(ctx, 0, yzp.dtype(), out_dims(g, g.M), y);
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

// ---------------------------------------------------------------- pooling

namespace {

enum class PoolKind { kMax, kAvg, kLp };

Status pool_kernel(KernelContext& ctx, PoolKind kind) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_numeric(ctx, *x, "input 0 (X)"));
  if (kind != PoolKind::kMax) KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  ConvGeom g;
  KILN_RETURN_IF_ERROR(pool_setup(ctx, x->dims(), g));
  const size_t nsp = g.in.size();
  const bool include_pad = ctx.attr_int("count_include_pad", 0) != 0;
  const ir::Attribute* pa = ctx.attr("p");
  const double p =
      pa && pa->type == ir::AttrType::kFloat ? static_cast<double>(pa->f) : static_cast<double>(ctx.attr_int("p", 2));
  const int64_t storage_order = ctx.attr_int("storage_order", 0);
  const int64_t in_sz = product(g.in), out_sz = product(g.out), k_sz = product(g.kernel);
  auto in_str = strides_of(g.in);
  // column-major strides for storage_order = 1
  Dims col_str(nsp, 1);
  for (size_t d = 1; d < nsp; ++d) col_str[d] = col_str[d - 1] * g.in[d - 1];
  Vec xv = to_doubles(*x);
  Vec y(static_cast<size_t>(g.N * g.C * out_sz), 0.0), ind(y.size(), 0.0);
  Dims oi(nsp), ki(nsp);
  for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
    const double* px = xv.data() + nc * in_sz;
    std::fill(oi.begin(), oi.end(), 0);
    for (int64_t o = 0; o < out_sz; ++o, next_index(oi, g.out)) {
      double acc = kind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      int64_t best = -1, count = 0;
      std::fill(ki.begin(), ki.end(), 0);
      for (int64_t k = 0; k < k_sz; ++k, next_index(ki, g.kernel)) {
        int64_t off = 0, coff = 0;
        bool inside = true, in_padded = true;
        for (size_t d = 0; d < nsp; ++d) {
          int64_t pos = oi[d] * g.strides[d] - g.pad_begin[d] + ki[d] * g.dilations[d];
          if (pos < 0 || pos >= g.in[d]) inside = false;
          if (pos < -g.pad_begin[d] || pos >= g.in[d] + g.pad_end[d]) in_padded = false;
          off += pos * in_str[d];
          coff += pos * col_str[d];
        }
        if (inside) {
          const double v = px[off];
          if (kind == PoolKind::kMax) {
            if (best < 0 || v > acc) {
              acc = v;
              best = storage_order == 1 ? coff : off;
            }
          } else if (kind == PoolKind::kAvg) {
            acc += v;
          } else {
            acc += std::pow(std::fabs(v), p);
          }
          ++count;
        } else if (include_pad && in_padded) {
          ++count;
        }
      }
      const size_t yi = static_cast<size_t>(nc * out_sz + o);
      if (kind == PoolKind::kMax) {
        y[yi] = acc;
        ind[yi] = static_cast<double>(nc * in_sz + std::max<int64_t>(best, 0));
      } else if (kind == PoolKind::kAvg) {
        y[yi] = count > 0 ? acc / static_cast<double>(count) : 0.0;
      } else {
        y[yi] = std::pow(acc, 1.0 / p);
      }
    }
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, x->dtype(), out_dims(g, g.C), y));
  if (kind == PoolKind::kMax && wants_output(ctx, 1)) {
    KILN_RETURN_IF_ERROR(write_output(ctx, 1, DType::kInt64, out_dims(g, g.C), ind));
  }
  return Status::ok();
}

Status global_pool(KernelContext& ctx, PoolKind kind) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  if (x->rank() < 2) return ctx.error("input X must have rank >= 2 (N, C, spatial...), got " + dstr(x->dims()));
  const int64_t nc = x->dims()[0] * x->dims()[1], sp = product(x->dims(), 2);
  const ir::Attribute* pa = ctx.attr("p");
  const double p =
      pa && pa->type == ir::AttrType::kFloat ? static_cast<double>(pa->f) : static_cast<double>(ctx.attr_int("p", 2));
  Vec xv = to_doubles(*x), y(static_cast<size_t>(nc));
  for (int64_t i = 0; i < nc; ++i) {
    double acc = kind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
    for (int64_t j = 0; j < sp; ++j) {
      double v = xv[static_cast<size_t>(i * sp + j)];
      if (kind == PoolKind::kMax)
        acc = std::max(acc, v);
      else if (kind == PoolKind::kAvg)
        acc += v;
      else
        acc += std::pow(std::fabs(v), p);
    }
    if (kind == PoolKind::kAvg) acc /= static_cast<double>(sp);
    if (kind == PoolKind::kLp) acc = std::pow(acc, 1.0 / p);
    y[static_cast<size_t>(i)] = acc;
  }
  Dims od = x->dims();
  for (size_t d = 2; d < od.size(); ++d) od[d] = 1;
  return write_output(ctx, 0, x->dtype(), od, y);
}

}  // namespace

Status maxpool_kernel(KernelContext& ctx) { return pool_kernel(ctx, PoolKind::kMax); }
Status averagepool_kernel(KernelContext& ctx) { return pool_kernel(ctx, PoolKind::kAvg); }
Status lppool_kernel(KernelContext& ctx) { return pool_kernel(ctx, PoolKind::kLp); }
Status globalaveragepool_kernel(KernelContext& ctx) { return global_pool(ctx, PoolKind::kAvg); }
Status globalmaxpool_kernel(KernelContext& ctx) { return global_pool(ctx, PoolKind::kMax); }
Status globallppool_kernel(KernelContext& ctx) { return global_pool(ctx, PoolKind::kLp); }

// ---------------------------------------------------------------- normalization

Status batchnormalization_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 5; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  KILN_RETURN_IF_ERROR(require_float(ctx, x, "input 0 (X)"));
  if (x.rank() < 2) return ctx.error("input X must have rank >= 2, got " + dstr(x.dims()));
  const int64_t N = x.dims()[0], C = x.dims()[1], sp = product(x.dims(), 2);
  Vec xv = to_doubles(x);
  Vec sc = to_doubles(*ctx.input(1)), bi = to_doubles(*ctx.input(2)), mean = to_doubles(*ctx.input(3)),
      var = to_doubles(*ctx.input(4));
  const char* names[] = {"", "scale", "B", "input_mean", "input_var"};
  Vec* vs[] = {nullptr, &sc, &bi, &mean, &var};
  for (int i = 1; i < 5; ++i) {
    if (static_cast<int64_t>(vs[i]->size()) != C) {
      return ctx.error(std::string("input ") + std::to_string(i) + " (" + names[i] + ") has " +
                       std::to_string(vs[i]->size()) + " elements; expected C = " + std::to_string(C));
    }
  }
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const double momentum = ctx.attr_float("momentum", 0.9f);
  bool training = ctx.opset() >= 14 ? ctx.attr_int("training_mode", 0) != 0 : false;
  if (ctx.opset() < 14 && ctx.opset() >= 9 && wants_output(ctx, 1)) training = true;
  Vec use_mean = mean, use_var = var;
  if (training) {
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, s2 = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < sp; ++j) s += xv[static_cast<size_t>((n * C + c) * sp + j)];
      const double cnt = static_cast<double>(N * sp);
      const double m = s / cnt;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < sp; ++j) {
          double d = xv[static_cast<size_t>((n * C + c) * sp + j)] - m;
          s2 += d * d;
        }
      use_mean[static_cast<size_t>(c)] = m;
      use_var[static_cast<size_t>(c)] = s2 / cnt;
    }
  }
  Vec y(xv.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const size_t c = (i / static_cast<size_t>(sp)) % static_cast<size_t>(C);
    y[i] = sc[c] * (xv[i] - use_mean[c]) / std::sqrt(use_var[c] + eps) + bi[c];
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, x.dtype(), x.dims(), y));
  if (training) {
    Vec rm(static_cast<size_t>(C)), rv(static_cast<size_t>(C));
    for (size_t c = 0; c < rm.size(); ++c) {
      rm[c] = mean[c] * momentum + use_mean[c] * (1 - momentum);
      rv[c] = var[c] * momentum + use_var[c] * (1 - momentum);
    }
    if (wants_output(ctx, 1)) KILN_RETURN_IF_ERROR(write_output(ctx, 1, ctx.input(3)->dtype(), {C}, rm));
    if (wants_output(ctx, 2)) KILN_RETURN_IF_ERROR(write_output(ctx, 2, ctx.input(4)->dtype(), {C}, rv));
    if (wants_output(ctx, 3)) KILN_RETURN_IF_ERROR(write_output(ctx, 3, ctx.input(3)->dtype(), {C}, use_mean));
    if (wants_output(ctx, 4)) {
      Vec inv(static_cast<size_t>(C));
      for (size_t c = 0; c < inv.size(); ++c) inv[c] = 1.0 / std::sqrt(use_var[c] + eps);
      KILN_RETURN_IF_ERROR(write_output(ctx, 4, ctx.input(4)->dtype(), {C}, inv));
    }
  }
  return Status::ok();
}

Status instancenormalization_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 3; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  KILN_RETURN_IF_ERROR(require_float(ctx, x, "input 0 (input)"));
  if (x.rank() < 3) return ctx.error("input must have rank >= 3, got " + dstr(x.dims()));
  const int64_t N = x.dims()[0], C = x.dims()[1], sp = product(x.dims(), 2);
  Vec xv = to_doubles(x), sc = to_doubles(*ctx.input(1)), bi = to_doubles(*ctx.input(2));
  if (static_cast<int64_t>(sc.size()) != C || static_cast<int64_t>(bi.size()) != C) {
    return ctx.error("scale and B must have C = " + std::to_string(C) + " elements");
  }
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  Vec y(xv.size());
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const size_t c = static_cast<size_t>(nc % C);
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < sp; ++j) s += xv[static_cast<size_t>(nc * sp + j)];
    const double m = s / static_cast<double>(sp);
    for (int64_t j = 0; j < sp; ++j) {
      double d = xv[static_cast<size_t>(nc * sp + j)] - m;
      s2 += d * d;
    }
    const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(sp) + eps);
    for (int64_t j = 0; j < sp; ++j) {
      const size_t i = static_cast<size_t>(nc * sp + j);
      y[i] = sc[c] * (xv[i] - m) * inv + bi[c];
    }
  }
  return write_output(ctx, 0, x.dtype(), x.dims(), y);
}

Status add_kernel(KernelContext& ctx);  // elementwise.cc

Status layernormalization_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* scale, ctx.required_input(1));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  // ai.kiln's optional Skip (input 3): the residual sum X + Skip (by the Add kernel) is normalized.
  const Tensor* skip = ctx.input(3);
  Tensor summed;
  if (skip) {
    Value xv(*x), sv(*skip);
    KernelContext sub(ctx.node(), 14, {&xv, &sv}, 1);
    KILN_RETURN_IF_ERROR(add_kernel(sub));
    summed = sub.take_output(0).tensor();
    x = &summed;
    skip = nullptr;
  }
  const int64_t rank = static_cast<int64_t>(x->rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", -1), rank));
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const Dims norm_dims(x->dims().begin() + axis, x->dims().end());
  const int64_t outer = product(x->dims(), 0, static_cast<size_t>(axis)), inner = product(norm_dims);
  auto bcast = [&](const Tensor* t, const std::string& which, Vec& out) -> Status {
    auto b = broadcast_shapes(t->dims(), norm_dims);
    if (!b.is_ok() || *b != norm_dims || t->rank() > norm_dims.size()) {
      return ctx.error(which + " of shape " + dstr(t->dims()) + " cannot be broadcast to the normalized shape " +
                       dstr(norm_dims));
    }
    auto st = broadcast_strides(t->dims(), norm_dims);
    Vec v = to_doubles(*t);
    out.assign(static_cast<size_t>(inner), 0.0);
    Dims idx(norm_dims.size(), 0);
    for (int64_t i = 0; i < inner; ++i, next_index(idx, norm_dims)) {
      int64_t off = 0;
      for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * st[d];
      out[static_cast<size_t>(i)] = v[static_cast<size_t>(off)];
    }
    return Status::ok();
  };
  Vec sc, bi(static_cast<size_t>(inner), 0.0);
  KILN_RETURN_IF_ERROR(bcast(scale, "input 1 (Scale)", sc));
  if (const Tensor* b = ctx.input(2)) KILN_RETURN_IF_ERROR(bcast(b, "input 2 (B)", bi));
  Vec xv = to_doubles(*x), y(xv.size()), means(static_cast<size_t>(outer)), invs(static_cast<size_t>(outer));
  for (int64_t o = 0; o < outer; ++o) {
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < inner; ++j) s += xv[static_cast<size_t>(o * inner + j)];
    const double m = inner > 0 ? s / static_cast<double>(inner) : 0.0;
    for (int64_t j = 0; j < inner; ++j) {
      double d = xv[static_cast<size_t>(o * inner + j)] - m;
      s2 += d * d;
    }
    const double inv = 1.0 / std::sqrt((inner > 0 ? s2 / static_cast<double>(inner) : 0.0) + eps);
    means[static_cast<size_t>(o)] = m;
    invs[static_cast<size_t>(o)] = inv;
    for (int64_t j = 0; j < inner; ++j) {
      const size_t i = static_cast<size_t>(o * inner + j);
      y[i] = (xv[i] - m) * inv * sc[static_cast<size_t>(j)] + bi[static_cast<size_t>(j)];
    }
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, x->dtype(), x->dims(), y));
  Dims sd = x->dims();
  for (size_t d = static_cast<size_t>(axis); d < sd.size(); ++d) sd[d] = 1;
  const int64_t stash = ctx.attr_int("stash_type", 1);
  const DType st = stash == 1 ? DType::kFloat32 : x->dtype();
  if (wants_output(ctx, 1)) KILN_RETURN_IF_ERROR(write_output(ctx, 1, st, sd, means));
  if (wants_output(ctx, 2)) KILN_RETURN_IF_ERROR(write_output(ctx, 2, st, sd, invs));
  return Status::ok();
}

Status groupnormalization_kernel(KernelContext& ctx) {
  for (size_t i = 0; i < 3; ++i) KILN_RETURN_IF_ERROR(ctx.required_input(i).status());
  const Tensor& x = *ctx.input(0);
  KILN_RETURN_IF_ERROR(require_float(ctx, x, "input 0 (X)"));
  if (x.rank() < 2) return ctx.error("input X must have rank >= 2, got " + dstr(x.dims()));
  const int64_t G = ctx.attr_int("num_groups", 0);
  const int64_t N = x.dims()[0], C = x.dims()[1], sp = product(x.dims(), 2);
  if (G <= 0 || C % G != 0) {
    return ctx.error("num_groups " + std::to_string(G) + " must be positive and divide channels " + std::to_string(C));
  }
  Vec xv = to_doubles(x), sc = to_doubles(*ctx.input(1)), bi = to_doubles(*ctx.input(2));
  const bool per_channel_affine = static_cast<int64_t>(sc.size()) == C && ctx.opset() >= 21;
  const int64_t want = per_channel_affine ? C : (static_cast<int64_t>(sc.size()) == C ? C : G);
  if (static_cast<int64_t>(sc.size()) != want || static_cast<int64_t>(bi.size()) != want) {
    return ctx.error("scale and bias must have num_groups (" + std::to_string(G) + ") or C (" + std::to_string(C) +
                     ") elements");
  }
  const double eps = ctx.attr_float("epsilon", 1e-5f);
  const int64_t Cg = C / G, gsz = Cg * sp;
  Vec y(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t base = (n * C + g * Cg) * sp;
      double s = 0, s2 = 0;
      for (int64_t j = 0; j < gsz; ++j) s += xv[static_cast<size_t>(base + j)];
      const double m = s / static_cast<double>(gsz);
      for (int64_t j = 0; j < gsz; ++j) {
        double d = xv[static_cast<size_t>(base + j)] - m;
        s2 += d * d;
      }
      const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(gsz) + eps);
      for (int64_t j = 0; j < gsz; ++j) {
        const size_t i = static_cast<size_t>(base + j);
        const size_t a = want == C ? static_cast<size_t>(g * Cg + j / sp) : static_cast<size_t>(g);
        y[i] = (xv[i] - m) * inv * sc[a] + bi[a];
      }
    }
  return write_output(ctx, 0, x.dtype(), x.dims(), y);
}

Status lrn_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  if (x->rank() < 2) return ctx.error("input X must have rank >= 2, got " + dstr(x->dims()));
  const double alpha = ctx.attr_float("alpha", 1e-4f), beta = ctx.attr_float("beta", 0.75f),
               bias = ctx.attr_float("bias", 1.0f);
  const int64_t size = ctx.attr_int("size", 0);
  if (size <= 0) return ctx.error("attribute size must be positive");
  const int64_t N = x->dims()[0], C = x->dims()[1], sp = product(x->dims(), 2);
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  Vec xv = to_doubles(*x), y(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < sp; ++j) {
        double s = 0;
        for (int64_t k = std::max<int64_t>(0, c - lo); k <= std::min(C - 1, c + hi); ++k) {
          double v = xv[static_cast<size_t>((n * C + k) * sp + j)];
          s += v * v;
        }
        const size_t i = static_cast<size_t>((n * C + c) * sp + j);
        y[i] = xv[i] / std::pow(bias + alpha / static_cast<double>(size) * s, beta);
      }
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

namespace {

// Calls f(indices of one group) for each combination of the non-reduced axes.
template <typename F>
void for_each_group(const Dims& dims, const std::vector<bool>& reduced, F&& f) {
  Dims outer_dims, inner_dims;
  std::vector<size_t> outer_ax, inner_ax;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (reduced[d]) {
      inner_dims.push_back(dims[d]);
      inner_ax.push_back(d);
    } else {
      outer_dims.push_back(dims[d]);
      outer_ax.push_back(d);
    }
  }
  auto str = strides_of(dims);
  const int64_t no = product(outer_dims), ni = product(inner_dims);
  Dims oi(outer_dims.size(), 0);
  std::vector<size_t> group(static_cast<size_t>(ni));
  for (int64_t o = 0; o < no; ++o, next_index(oi, outer_dims)) {
    int64_t base = 0;
    for (size_t k = 0; k < outer_ax.size(); ++k) base += oi[k] * str[outer_ax[k]];
    Dims ii(inner_dims.size(), 0);
    for (int64_t i = 0; i < ni; ++i, next_index(ii, inner_dims)) {
      int64_t off = base;
      for (size_t k = 0; k < inner_ax.size(); ++k) off += ii[k] * str[inner_ax[k]];
      group[static_cast<size_t>(i)] = static_cast<size_t>(off);
    }
    f(group);
  }
}

}  // namespace

Status meanvariancenormalization_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (X)"));
  const int64_t rank = static_cast<int64_t>(x->rank());
  Dims axes = ctx.attr_ints("axes", {0, 2, 3});
  std::vector<bool> red(static_cast<size_t>(rank), false);
  for (int64_t a : axes) {
    KILN_ASSIGN_OR_RETURN(int64_t n, normalize_axis(ctx, a, rank));
    red[static_cast<size_t>(n)] = true;
  }
  Vec xv = to_doubles(*x), y(xv.size());
  for_each_group(x->dims(), red, [&](const std::vector<size_t>& g) {
    double s = 0, s2 = 0;
    for (size_t i : g) {
      s += xv[i];
      s2 += xv[i] * xv[i];
    }
    const double n = static_cast<double>(g.size());
    const double m = s / n;
    const double sd = std::sqrt(std::max(0.0, s2 / n - m * m));
    for (size_t i : g) y[i] = (xv[i] - m) / (sd + 1e-9);
  });
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

Status lpnormalization_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (input)"));
  const int64_t rank = static_cast<int64_t>(x->rank());
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", -1), rank));
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) return ctx.error("attribute p must be 1 or 2, got " + std::to_string(p));
  std::vector<bool> red(static_cast<size_t>(rank), false);
  red[static_cast<size_t>(axis)] = true;
  Vec xv = to_doubles(*x), y(xv.size());
  for_each_group(x->dims(), red, [&](const std::vector<size_t>& g) {
    double s = 0;
    for (size_t i : g) s += p == 1 ? std::fabs(xv[i]) : xv[i] * xv[i];
    const double norm = p == 1 ? s : std::sqrt(s);
    for (size_t i : g) y[i] = norm == 0 ? 0.0 : xv[i] / norm;
  });
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

// ---------------------------------------------------------------- softmax family

namespace {

enum class SoftKind { kSoftmax, kLogSoftmax, kHardmax };

Status softmax_family(KernelContext& ctx, SoftKind kind) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (input)"));
  const int64_t rank = static_cast<int64_t>(x->rank());
  const bool legacy = ctx.opset() < 13;
  if (rank == 0) return ctx.error("input must have rank >= 1");
  KILN_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx, ctx.attr_int("axis", legacy ? 1 : -1), rank));
  std::vector<bool> red(static_cast<size_t>(rank), false);
  if (legacy) {
    for (int64_t d = axis; d < rank; ++d) red[static_cast<size_t>(d)] = true;
  } else {
    red[static_cast<size_t>(axis)] = true;
  }
  Vec xv = to_doubles(*x), y(xv.size(), 0.0);
  for_each_group(x->dims(), red, [&](const std::vector<size_t>& g) {
    if (g.empty()) return;
    double mx = -std::numeric_limits<double>::infinity();
    size_t arg = g[0];
    for (size_t i : g) {
      if (xv[i] > mx) {
        mx = xv[i];
        arg = i;
      }
    }
    if (kind == SoftKind::kHardmax) {
      y[arg] = 1.0;
      return;
    }
    double s = 0;
    for (size_t i : g) s += std::exp(xv[i] - mx);
    for (size_t i : g) y[i] = kind == SoftKind::kSoftmax ? std::exp(xv[i] - mx) / s : xv[i] - mx - std::log(s);
  });
  return write_output(ctx, 0, x->dtype(), x->dims(), y);
}

}  // namespace

Status softmax_kernel(KernelContext& ctx) { return softmax_family(ctx, SoftKind::kSoftmax); }
Status logsoftmax_kernel(KernelContext& ctx) { return softmax_family(ctx, SoftKind::kLogSoftmax); }
Status hardmax_kernel(KernelContext& ctx) { return softmax_family(ctx, SoftKind::kHardmax); }

Status dropout_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_RETURN_IF_ERROR(require_float(ctx, *x, "input 0 (data)"));
  double ratio = ctx.attr_float("ratio", 0.5f);
  bool training = false;
  if (ctx.opset() >= 12) {
    if (const Tensor* r = ctx.input(1)) {
      if (r->num_elements() != 1) return ctx.error("input 1 (ratio) must be a scalar");
      ratio = to_doubles(*r)[0];
    }
    if (const Tensor* t = ctx.input(2)) {
      if (t->num_elements() != 1) return ctx.error("input 2 (training_mode) must be a scalar");
      training = to_doubles(*t)[0] != 0;
    }
  }
  if (ratio < 0 || ratio >= 1) {
    if (training) return ctx.error("ratio must be in [0, 1), got " + std::to_string(ratio));
  }
  const int64_t n = x->num_elements();
  Vec mask(static_cast<size_t>(n), 1.0);
  if (!training || ratio == 0) {
    KILN_ASSIGN_OR_RETURN(Tensor copy, x->clone());
    ctx.set_output(0, std::move(copy));
  } else {
    std::mt19937_64 rng(static_cast<uint64_t>(ctx.attr_int("seed", 0)));
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Vec xv = to_doubles(*x), y(xv.size());
    const double scale = 1.0 / (1.0 - ratio);
    for (size_t i = 0; i < xv.size(); ++i) {
      mask[i] = u(rng) >= ratio ? 1.0 : 0.0;
      y[i] = xv[i] * mask[i] * scale;
    }
    KILN_RETURN_IF_ERROR(write_output(ctx, 0, x->dtype(), x->dims(), y));
  }
  if (wants_output(ctx, 1)) {
    const DType md = ctx.opset() >= 10 ? DType::kBool : x->dtype();
    KILN_RETURN_IF_ERROR(write_output(ctx, 1, md, x->dims(), mask));
  }
  return Status::ok();
}

// ---------------------------------------------------------------- quantization

namespace {

bool is_4bit(DType t) { return t == DType::kInt4 || t == DType::kUInt4; }

// Element values of a quantized tensor (4-bit types are packed two per byte, low nibble first).
Vec quant_values(const Tensor& t) {
  if (!is_4bit(t.dtype())) return to_doubles(t);
  Vec v(static_cast<size_t>(t.num_elements()));
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  for (size_t i = 0; i < v.size(); ++i) {
    int nib = (p[i / 2] >> (4 * (i % 2))) & 0xF;
    if (t.dtype() == DType::kInt4 && nib >= 8) nib -= 16;
    v[i] = nib;
  }
  return v;
}

Status write_quantized(KernelContext& ctx, size_t i, DType dt, const Dims& dims, const Vec& v) {
  if (!is_4bit(dt)) return write_output(ctx, i, dt, dims, v);
  KILN_ASSIGN_OR_RETURN(Tensor * t, ctx.allocate_output(i, dt, dims));
  auto* p = static_cast<uint8_t*>(t->raw_data());
  for (size_t k = 0; k < v.size(); ++k) {
    const auto nib = static_cast<uint8_t>(static_cast<int>(v[k]) & 0xF);
    p[k / 2] = static_cast<uint8_t>(p[k / 2] | (nib << (4 * (k % 2))));
  }
  return Status::ok();
}

// Scale/zero-point value for element i of x: scalar, per-axis (1-D along axis) or blocked (same rank as x).
struct QuantParams {
  Vec scale, zp;
  Dims sdims;
  int64_t axis = 1, block = 0;
};

Status quant_params(const KernelContext& ctx, const Tensor& x, const Tensor& scale, const Tensor* zp, QuantParams& q) {
  q.scale = to_doubles(scale);
  q.zp = zp ? quant_values(*zp) : Vec(q.scale.size(), 0.0);
  q.sdims = scale.dims();
  if (zp && zp->num_elements() != scale.num_elements()) {
    return ctx.error("zero point has shape " + dstr(zp->dims()) + " but scale has shape " + dstr(scale.dims()));
  }
  if (q.scale.size() == 1 && scale.rank() <= 1) return Status::ok();
  KILN_ASSIGN_OR_RETURN(q.axis, normalize_axis(ctx, ctx.attr_int("axis", 1), static_cast<int64_t>(x.rank())));
  q.block = ctx.attr_int("block_size", 0);
  if (q.block <= 0) {
    if (scale.rank() != 1 || scale.dims()[0] != x.dims()[static_cast<size_t>(q.axis)]) {
      return ctx.error("scale has shape " + dstr(scale.dims()) + "; expected a scalar or 1-D of size " +
                       std::to_string(x.dims()[static_cast<size_t>(q.axis)]) + " (axis " + std::to_string(q.axis) +
                       " of " + dstr(x.dims()) + ")");
    }
  } else if (scale.rank() != x.rank()) {
    return ctx.error("blocked quantization needs scale of rank " + std::to_string(x.rank()));
  }
  return Status::ok();
}

// Index into scale for element i of x.
size_t quant_index(const QuantParams& q, const Dims& xd, int64_t i) {
  if (q.scale.size() == 1 && q.sdims.size() <= 1) return 0;
  auto xs = strides_of(xd);
  if (q.block <= 0) return static_cast<size_t>((i / xs[static_cast<size_t>(q.axis)]) % xd[static_cast<size_t>(q.axis)]);
  auto ss = strides_of(q.sdims);
  int64_t off = 0;
  for (size_t d = 0; d < xd.size(); ++d) {
    int64_t c = (i / xs[d]) % xd[d];
    if (static_cast<int64_t>(d) == q.axis) c /= q.block;
    off += c * ss[d];
  }
  return static_cast<size_t>(off);
}

}  // namespace

Status quantizelinear_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(1));
  const Tensor* zp = ctx.input(2);
  if (!is_float_dtype(x->dtype()) && x->dtype() != DType::kInt32)
    return ctx.unsupported_dtype(x->dtype(), "input 0 (x)");
  const int64_t odt = ctx.attr_int("output_dtype", 0);
  const DType out = zp ? zp->dtype() : (odt > 0 && odt <= kMaxDType ? static_cast<DType>(odt) : DType::kUInt8);
  if (zp && odt > 0 && static_cast<DType>(odt) != zp->dtype()) {
    return ctx.error("output_dtype does not match the dtype of y_zero_point (" + std::string(dtype_name(zp->dtype())) +
                     ")");
  }
  double lo, hi;
  if (!quant_range(out, lo, hi) || out == DType::kInt32) return ctx.unsupported_dtype(out, "output y");
  QuantParams q;
  KILN_RETURN_IF_ERROR(quant_params(ctx, *x, *s, zp, q));
  Vec xv = to_doubles(*x), y(xv.size());
  const bool f32 = x->dtype() == DType::kFloat32;
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t k = quant_index(q, x->dims(), static_cast<int64_t>(i));
    const double v =
        f32 ? static_cast<double>(static_cast<float>(xv[i]) / static_cast<float>(q.scale[k])) : xv[i] / q.scale[k];
    y[i] = saturate(round_half_even(v) + q.zp[k], lo, hi);
  }
  return write_quantized(ctx, 0, out, x->dims(), y);
}

Status dequantizelinear_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* s, ctx.required_input(1));
  const Tensor* zp = ctx.input(2);
  double lo, hi;
  if (!quant_range(x->dtype(), lo, hi)) return ctx.unsupported_dtype(x->dtype(), "input 0 (x)");
  if (!is_float_dtype(s->dtype())) return ctx.unsupported_dtype(s->dtype(), "input 1 (x_scale)");
  QuantParams q;
  KILN_RETURN_IF_ERROR(quant_params(ctx, *x, *s, zp, q));
  Vec xv = quant_values(*x), y(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t k = quant_index(q, x->dims(), static_cast<int64_t>(i));
    y[i] = (xv[i] - q.zp[k]) * q.scale[k];
  }
  return write_output(ctx, 0, s->dtype(), x->dims(), y);
}

Status dynamicquantizelinear_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (x->dtype() != DType::kFloat32) return ctx.unsupported_dtype(x->dtype(), "input 0 (x)");
  const float* p = x->data<float>();
  float mn = 0, mx = 0;
  for (int64_t i = 0; i < x->num_elements(); ++i) {
    mn = std::min(mn, p[i]);
    mx = std::max(mx, p[i]);
  }
  float scale = (mx - mn) / 255.0f;
  if (scale == 0) scale = 1.0f;
  const double zp = saturate(round_half_even(static_cast<double>(0.0f - mn / scale)), 0, 255);
  Vec y(static_cast<size_t>(x->num_elements()));
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = saturate(round_half_even(static_cast<double>(p[i] / scale)) + zp, 0, 255);
  }
  KILN_RETURN_IF_ERROR(write_output(ctx, 0, DType::kUInt8, x->dims(), y));
  KILN_RETURN_IF_ERROR(write_output(ctx, 1, DType::kFloat32, {}, {static_cast<double>(scale)}));
  return write_output(ctx, 2, DType::kUInt8, {}, {zp});
}

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
