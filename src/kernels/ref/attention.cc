// ai.kiln Attention: softmax(Q @ K * scale) @ V over each batch index, the optimizer's fusion of the attention
// subgraph of transformer exports (docs/optimizer.md). Each input is read through a permutation (the
// Transposes the fusion absorbed), and the output is written through one.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/attention.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;

StatusOr<AttentionView> permuted(const KernelContext& ctx, const Dims& base, const std::string& attr,
                                 const char* what) {
  const int64_t rank = static_cast<int64_t>(base.size());
  std::vector<int64_t> perm = ctx.attr_ints(attr);
  if (perm.empty()) {
    for (int64_t i = 0; i < rank; ++i) perm.push_back(i);
  }
  std::vector<char> seen(static_cast<size_t>(rank), 0);
  bool ok = static_cast<int64_t>(perm.size()) == rank;
  for (int64_t p : perm) {
    ok = ok && p >= 0 && p < rank && !seen[static_cast<size_t>(p)];
    if (ok) seen[static_cast<size_t>(p)] = 1;
  }
  if (!ok) {
    return ctx.error("attribute '" + attr + "' " + dims_to_string(perm) + " is not a permutation of the " +
                     std::to_string(rank) + " axes of " + what + " " + dims_to_string(base));
  }
  const Dims strides = strides_of(base);
  AttentionView v;
  v.perm = perm;
  for (int64_t p : perm) {
    v.dims.push_back(base[static_cast<size_t>(p)]);
    v.strides.push_back(strides[static_cast<size_t>(p)]);
  }
  return v;
}

}  // namespace

int64_t batch_offset(const AttentionView& v, int64_t g) {
  int64_t off = 0;
  for (int64_t a = static_cast<int64_t>(v.dims.size()) - 3; a >= 0; --a) {
    const int64_t d = v.dims[static_cast<size_t>(a)];
    off += (g % d) * v.strides[static_cast<size_t>(a)];
    g /= d;
  }
  return off;
}

// Attention(Q, K, V): with Qm = Transpose(Q, q_perm) [..., S, D], Km = Transpose(K, k_perm) [..., D, T] and
// Vm = Transpose(V, v_perm) [..., T, Dv] (equal leading dims), Y = Transpose(softmax(Qm @ Km * scale) @ Vm,
// out_perm).
Status attention_setup(const KernelContext& ctx, AttentionGeom& a) {
  KILN_ASSIGN_OR_RETURN(const Tensor* q, ctx.required_input(0));
  KILN_ASSIGN_OR_RETURN(const Tensor* k, ctx.required_input(1));
  KILN_ASSIGN_OR_RETURN(const Tensor* v, ctx.required_input(2));
  const char* names[] = {"input 0 (Q)", "input 1 (K)", "input 2 (V)"};
  const Tensor* ins[] = {q, k, v};
  for (int i = 0; i < 3; ++i) {
    if (ins[i]->dtype() != DType::kFloat32) return ctx.unsupported_dtype(ins[i]->dtype(), names[i]);
    if (ins[i]->rank() < 2 || ins[i]->rank() != q->rank()) {
      return ctx.error(std::string(names[i]) + " has shape " + dims_to_string(ins[i]->dims()) +
                       "; expected Q, K and V of one rank, at least 2");
    }
  }
  KILN_ASSIGN_OR_RETURN(AttentionView qv, permuted(ctx, q->dims(), "q_perm", "Q"));
  KILN_ASSIGN_OR_RETURN(AttentionView kv, permuted(ctx, k->dims(), "k_perm", "K"));
  KILN_ASSIGN_OR_RETURN(AttentionView vv, permuted(ctx, v->dims(), "v_perm", "V"));
  const size_t r = qv.dims.size();
  const Dims batch(qv.dims.begin(), qv.dims.end() - 2);
  const int64_t S = qv.dims[r - 2], D = qv.dims[r - 1], T = kv.dims[r - 1], Dv = vv.dims[r - 1];
  if (Dims(kv.dims.begin(), kv.dims.end() - 2) != batch || Dims(vv.dims.begin(), vv.dims.end() - 2) != batch ||
      kv.dims[r - 2] != D || vv.dims[r - 2] != T) {
    return ctx.error("permuted Q " + dims_to_string(qv.dims) + ", K " + dims_to_string(kv.dims) + " and V " +
                     dims_to_string(vv.dims) + " do not chain: expected [..., S, D], [..., D, T] and [..., T, Dv] " +
                     "with the same leading dims");
  }
  Dims od = batch;
  od.push_back(S);
  od.push_back(Dv);
  // Y = Transpose(O, out_perm): Y's dims, and O's axes seen through Y's strides.
  KILN_ASSIGN_OR_RETURN(AttentionView yv, permuted(ctx, od, "out_perm", "the attention output"));
  const Dims& ydims = yv.dims;
  AttentionView ov;  // O's axes over Y's memory: O's axis perm[i] is Y's axis i
  ov.dims = od;
  ov.strides.assign(r, 0);
  const Dims ystrides = strides_of(ydims);
  for (size_t i = 0; i < r; ++i) ov.strides[static_cast<size_t>(yv.perm[i])] = ystrides[i];
  a.scale = ctx.attr_float("scale", 1.0f);
  a.G = 1;
  for (int64_t b : batch) a.G *= b;
  a.q = std::move(qv);
  a.k = std::move(kv);
  a.v = std::move(vv);
  a.o = std::move(ov);
  a.ydims = ydims;
  a.S = S;
  a.D = D;
  a.T = T;
  a.Dv = Dv;
  return Status::ok();
}

// Attention(Q, K, V) on doubles, one query row per task.
Status attention_kernel(KernelContext& ctx) {
  AttentionGeom a;
  KILN_RETURN_IF_ERROR(attention_setup(ctx, a));
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, a.ydims));
  const AttentionView &qv = a.q, &kv = a.k, &vv = a.v, &ov = a.o;
  const size_t r = qv.dims.size();
  const int64_t G = a.G, S = a.S, D = a.D, T = a.T, Dv = a.Dv;
  const float scale = a.scale;
  const float *pq = ctx.input(0)->data<float>(), *pk = ctx.input(1)->data<float>(), *pv = ctx.input(2)->data<float>();
  float* py = y->data<float>();
  const int64_t qs = qv.strides[r - 2], qd = qv.strides[r - 1], kd = kv.strides[r - 2], kt = kv.strides[r - 1];
  const int64_t vt = vv.strides[r - 2], vd = vv.strides[r - 1], os = ov.strides[r - 2], odv = ov.strides[r - 1];
  if (S == 0 || Dv == 0 || G == 0) return Status::ok();
  ctx.parallel_for(G * S, 1, [&](int64_t i0, int64_t i1) {
    std::vector<double> p(static_cast<size_t>(T));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i / S, s = i % S;
      const float* qr = pq + batch_offset(qv, g) + s * qs;
      const float* kb = pk + batch_offset(kv, g);
      const float* vb = pv + batch_offset(vv, g);
      double mx = -INFINITY, sum = 0.0;
      for (int64_t t = 0; t < T; ++t) {
        double acc = 0.0;
        for (int64_t d = 0; d < D; ++d) acc += static_cast<double>(qr[d * qd]) * kb[d * kd + t * kt];
        p[static_cast<size_t>(t)] = acc * scale;
        mx = std::max(mx, p[static_cast<size_t>(t)]);
      }
      for (int64_t t = 0; t < T; ++t) sum += (p[static_cast<size_t>(t)] = std::exp(p[static_cast<size_t>(t)] - mx));
      float* yr = py + batch_offset(ov, g) + s * os;
      for (int64_t e = 0; e < Dv; ++e) {
        double acc = 0.0;
        for (int64_t t = 0; t < T; ++t) acc += p[static_cast<size_t>(t)] * vb[t * vt + e * vd];
        yr[e * odv] = T > 0 ? static_cast<float>(acc / sum) : 0.0f;  // an empty product is 0
      }
    }
  });
  return Status::ok();
}

}  // namespace kiln::cpu
