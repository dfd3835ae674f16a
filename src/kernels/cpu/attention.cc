// ai.kiln Attention: softmax(Q @ K * scale) @ V over each batch index, the optimizer's fusion of the attention
// subgraph of transformer exports (docs/optimizer.md). Each input is read through a permutation (the
// Transposes the fusion absorbed), and the output is written through one.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/kernel.h"
#include "kernels/x86/sgemm.h"
#include "kernels/x86/vmath.h"

namespace kiln::cpu {
namespace {

using Dims = std::vector<int64_t>;

// An input or output seen through a permutation: dims[i] = base dims[perm[i]], strides likewise (elements).
struct View {
  Dims dims, strides, perm;
};

StatusOr<View> permuted(KernelContext& ctx, const Dims& base, const std::string& attr, const char* what) {
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
  View v;
  v.perm = perm;
  for (int64_t p : perm) {
    v.dims.push_back(base[static_cast<size_t>(p)]);
    v.strides.push_back(strides[static_cast<size_t>(p)]);
  }
  return v;
}

// Offset of batch index g (row-major over the leading rank - 2 axes) in a view.
int64_t batch_offset(const View& v, int64_t g) {
  int64_t off = 0;
  for (int64_t a = static_cast<int64_t>(v.dims.size()) - 3; a >= 0; --a) {
    const int64_t d = v.dims[static_cast<size_t>(a)];
    off += (g % d) * v.strides[static_cast<size_t>(a)];
    g /= d;
  }
  return off;
}

}  // namespace

// Attention(Q, K, V): with Qm = Transpose(Q, q_perm) [..., S, D], Km = Transpose(K, k_perm) [..., D, T] and
// Vm = Transpose(V, v_perm) [..., T, Dv] (equal leading dims), Y = Transpose(softmax(Qm @ Km * scale) @ Vm,
// out_perm).
Status attention_kernel(KernelContext& ctx) {
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
  KILN_ASSIGN_OR_RETURN(View qv, permuted(ctx, q->dims(), "q_perm", "Q"));
  KILN_ASSIGN_OR_RETURN(View kv, permuted(ctx, k->dims(), "k_perm", "K"));
  KILN_ASSIGN_OR_RETURN(View vv, permuted(ctx, v->dims(), "v_perm", "V"));
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
  KILN_ASSIGN_OR_RETURN(View yv, permuted(ctx, od, "out_perm", "the attention output"));
  const Dims& ydims = yv.dims;
  View ov;  // O's axes over Y's memory: O's axis perm[i] is Y's axis i
  ov.dims = od;
  ov.strides.assign(r, 0);
  const Dims ystrides = strides_of(ydims);
  for (size_t i = 0; i < r; ++i) ov.strides[static_cast<size_t>(yv.perm[i])] = ystrides[i];
  const float scale = ctx.attr_float("scale", 1.0f);
  KILN_ASSIGN_OR_RETURN(Tensor * y, ctx.allocate_output_uninitialized(0, DType::kFloat32, ydims));
  int64_t G = 1;
  for (int64_t b : batch) G *= b;
  const float *pq = q->data<float>(), *pk = k->data<float>(), *pv = v->data<float>();
  float* py = y->data<float>();
  const int64_t qs = qv.strides[r - 2], qd = qv.strides[r - 1], kd = kv.strides[r - 2], kt = kv.strides[r - 1];
  const int64_t vt = vv.strides[r - 2], vd = vv.strides[r - 1], os = ov.strides[r - 2], odv = ov.strides[r - 1];
  if (S == 0 || Dv == 0 || G == 0) return Status::ok();

  if (ctx.reference_kernels() || !(ctx.isa() >= Isa::kAvx2)) {
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

  // One batch index (an attention head) per task: K and V packed for the SGEMM, scores [S, T] = Q @ K read in
  // place when Q's rows are contiguous, their scaled softmax in cache, then O = P @ V written straight into Y
  // when its rows are contiguous there.
  const bool q_in_place = qd == 1, o_in_place = odv == 1;
  ctx.parallel_for(G, 1, [&](int64_t g0, int64_t g1) {
    // The thread's scratch, kept between runs (no allocation in the steady state): Q, scores, O, packed K and V.
    thread_local std::vector<float> scratch;
    const int64_t nkp = sgemm::packed_b_floats(D, T), nvp = sgemm::packed_b_floats(T, Dv);
    const int64_t nq = q_in_place ? 0 : S * D, no = o_in_place ? 0 : S * Dv;
    const size_t need = static_cast<size_t>(nq + S * T + no + nkp + nvp);
    if (scratch.size() < need) scratch.resize(need);
    float* qbuf = scratch.data();
    float* scores = qbuf + nq;
    float* obuf = scores + S * T;
    float* kp = obuf + no;
    float* vp = kp + nkp;
    for (int64_t g = g0; g < g1; ++g) {
      const float* qb = pq + batch_offset(qv, g);
      if (!q_in_place) {
        for (int64_t s = 0; s < S; ++s)
          for (int64_t d = 0; d < D; ++d) qbuf[s * D + d] = qb[s * qs + d * qd];
      }
      sgemm::pack_b_into(pk + batch_offset(kv, g), D, T, kd, kt, kp);
      sgemm::pack_b_into(pv + batch_offset(vv, g), T, Dv, vt, vd, vp);
      sgemm::gemm_serial(ctx.isa(), q_in_place ? qb : qbuf, S, q_in_place ? qs : D, kp, D, T, scores, T);
      if (T > 0) {
        for (int64_t s = 0; s < S; ++s) vmath::softmax_row(scores + s * T, T, scale);
      }
      float* yb = py + batch_offset(ov, g);
      sgemm::gemm_serial(ctx.isa(), scores, S, T, vp, T, Dv, o_in_place ? yb : obuf, o_in_place ? os : Dv);
      if (!o_in_place) {
        for (int64_t s = 0; s < S; ++s)
          for (int64_t e = 0; e < Dv; ++e) yb[s * os + e * odv] = obuf[s * Dv + e];
      }
    }
  });
  return Status::ok();
}

}  // namespace kiln::cpu
