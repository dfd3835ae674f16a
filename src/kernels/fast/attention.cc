// ai.kiln Attention's fast kernel (attention.sgemm): one batch index (an attention head) per task on kiln's SGEMM
// and vectorized softmax rows (AVX2 or AVX-512, as the session's ISA allows). The reference kernel is attention.cc.
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/attention.h"
#include "kernels/x86/sgemm.h"
#include "kernels/x86/vmath.h"

namespace kiln::cpu {

bool attention_sgemm_supports(const KernelContext& ctx) {
  if (ctx.isa() < Isa::kAvx2) return false;
  AttentionGeom a;
  return attention_setup(ctx, a).is_ok();
}

Status attention_sgemm_kernel(KernelContext& ctx) {
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
        for (int64_t s = 0; s < S; ++s) vmath::softmax_row(ctx.isa(), scores + s * T, T, scale);
      }
      float* yb = py + batch_offset(ov, g);
      sgemm::gemm_serial(ctx.isa(), scores, S, T, vp, T, Dv, o_in_place ? yb : obuf, o_in_place ? os : Dv);
      if (!o_in_place) {
        for (int64_t s = 0; s < S; ++s)
          for (int64_t e = 0; e < Dv; ++e) yb[s * os + e * odv] = obuf[s * Dv + e];
      }
    }
  });
  ctx.set_kernel_detail(std::string("sgemm_softmax.") + isa_name(ctx.isa()));
  return Status::ok();
}

}  // namespace kiln::cpu
