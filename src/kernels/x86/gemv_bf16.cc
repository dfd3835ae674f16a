#include "kernels/x86/gemv_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/x86/vec.h"
#include "kiln/core/allocator.h"
#include "kiln/core/dtype.h"

namespace kiln::gemv_bf16 {
namespace {

constexpr int64_t kPanel = 16;

int64_t pairs(int64_t K) { return (K + 1) / 2; }
int64_t panels(int64_t N) { return (N + kPanel - 1) / kPanel; }

// One bfloat16 pair: x0 in the low half, x1 in the high half.
uint32_t pair(float x0, float x1) {
  return static_cast<uint32_t>(float_to_bfloat16(x0)) | (static_cast<uint32_t>(float_to_bfloat16(x1)) << 16);
}

}  // namespace

KILN_BEGIN_AVX512_BF16
namespace {

// Panels [p0, p1) of y's R rows: acc[r][u] sums the pairs k2 = u, u + U, u + 2U, ... of row r (U chains hide
// vdpbf16ps's latency), then the chains are added in order and the bias last.
template <int R>
void panels_of(const uint32_t* a2, int64_t K2, const uint32_t* w, int64_t N, const float* bias, float* y, int64_t ldy,
               int64_t p0, int64_t p1) {
  constexpr int U = R == 1 ? 4 : R == 2 ? 2 : 1;
  for (int64_t p = p0; p < p1; ++p) {
    const uint32_t* wp = w + p * K2 * kPanel;
    __m512 acc[R][U];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) acc[r][u] = _mm512_setzero_ps();
    }
    int64_t k = 0;
    for (; k + U <= K2; k += U) {
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) {
        const __m512bh wv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(wp + (k + u) * kPanel));
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a2[r * K2 + k + u])));
          acc[r][u] = _mm512_dpbf16_ps(acc[r][u], av, wv);
        }
      }
    }
    for (int u = 0; k < K2; ++k, ++u) {
      const __m512bh wv = reinterpret_cast<__m512bh>(_mm512_loadu_si512(wp + k * kPanel));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512bh av = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a2[r * K2 + k])));
        acc[r][u] = _mm512_dpbf16_ps(acc[r][u], av, wv);
      }
    }
    const int64_t n0 = p * kPanel, cols = std::min(kPanel, N - n0);
    const __mmask16 mask = static_cast<__mmask16>((1u << cols) - 1u);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n0) : _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      __m512 s = acc[r][0];
#pragma GCC unroll 4
      for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[r][u]);
      _mm512_mask_storeu_ps(y + r * ldy + n0, mask, _mm512_add_ps(s, b));
    }
  }
}

}  // namespace
KILN_END_TARGET

int64_t packed_words(int64_t K, int64_t N) { return panels(N) * pairs(K) * kPanel; }

std::shared_ptr<Packed> pack(const float* b, int64_t K, int64_t N, bool trans_b) {
  auto out = std::make_shared<Packed>();
  out->K = K;
  out->N = N;
  const size_t bytes = static_cast<size_t>(packed_words(K, N)) * sizeof(uint32_t);
  out->data = {static_cast<uint32_t*>(allocate_streamed(std::max<size_t>(bytes, 64))), std::free};
  if (!out->data) return nullptr;
  uint32_t* d = out->data.get();
  std::memset(d, 0, bytes);
  const int64_t K2 = pairs(K);
  auto at = [&](int64_t k, int64_t n) { return k < K ? (trans_b ? b[n * K + k] : b[k * N + n]) : 0.0f; };
  for (int64_t n = 0; n < N; ++n) {
    uint32_t* col = d + n / kPanel * K2 * kPanel + n % kPanel;
    for (int64_t k2 = 0; k2 < K2; ++k2) col[k2 * kPanel] = pair(at(2 * k2, n), at(2 * k2 + 1, n));
  }
  return out;
}

bool supported() {
  const cpu::CpuFeatures& f = cpu::cpu_features();
  return f.best == cpu::Isa::kAvx512 && f.avx512_bf16;
}

void multiply(const float* a, int64_t M, int64_t lda, const Packed& b, const float* bias, float* y,
              const sgemm::ParallelFor& parallel_for) {
  const int64_t K2 = pairs(b.K), P = panels(b.N);
  if (M <= 0 || P == 0) return;
  std::vector<uint32_t> a2(static_cast<size_t>(M * K2));
  for (int64_t r = 0; r < M; ++r) {
    for (int64_t k2 = 0; k2 < K2; ++k2) {
      const float x1 = 2 * k2 + 1 < b.K ? a[r * lda + 2 * k2 + 1] : 0.0f;
      a2[static_cast<size_t>(r * K2 + k2)] = pair(a[r * lda + 2 * k2], x1);
    }
  }
  // Tasks of whole panels, about 64 KiB of B each, so that two threads split a 1000-column classifier evenly.
  const int64_t per_task = std::max<int64_t>(1, (int64_t{64} << 10) / std::max<int64_t>(1, K2 * kPanel * 4));
  const int64_t tasks = (P + per_task - 1) / per_task;
  parallel_for(tasks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p0 = t * per_task, p1 = std::min(P, p0 + per_task);
      switch (M) {
        case 1: panels_of<1>(a2.data(), K2, b.data.get(), b.N, bias, y, b.N, p0, p1); break;
        case 2: panels_of<2>(a2.data(), K2, b.data.get(), b.N, bias, y, b.N, p0, p1); break;
        case 3: panels_of<3>(a2.data(), K2, b.data.get(), b.N, bias, y, b.N, p0, p1); break;
        default: panels_of<4>(a2.data(), K2, b.data.get(), b.N, bias, y, b.N, p0, p1); break;
      }
    }
  });
}

}  // namespace kiln::gemv_bf16
