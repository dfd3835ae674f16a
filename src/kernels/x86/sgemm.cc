#include "kernels/x86/sgemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace kiln::sgemm {
namespace {

constexpr int64_t kMR = 6, kNR = 16, kKC = 256;
constexpr int64_t kRowsPerTask = 48, kPanelsPerTask = 4;

// c[0..mr)[0..nr) (+)= A[mr rows][kc] @ bp[kc][16], element (r, k) of A at a[r * rs + k * ks]: row-major A
// (rs = lda, ks = 1), or the interleaved im2col tiles of a convolution (rs = 1, ks = 6). Full 6-row blocks keep
// all 12 accumulators in registers; shorter blocks read rows past mr from a clamped row (their sums are dropped).
__attribute__((target("avx2,fma"))) void kernel_6x16(int64_t mr, const float* a, int64_t rs, int64_t ks,
                                                     const float* bp, int64_t kc, float* c, int64_t ldc, int64_t nr,
                                                     bool accumulate) {
  const float* a0 = a;
  const float* a1 = a + std::min<int64_t>(1, mr - 1) * rs;
  const float* a2 = a + std::min<int64_t>(2, mr - 1) * rs;
  const float* a3 = a + std::min<int64_t>(3, mr - 1) * rs;
  const float* a4 = a + std::min<int64_t>(4, mr - 1) * rs;
  const float* a5 = a + std::min<int64_t>(5, mr - 1) * rs;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(bp + k * kNR + 256), _MM_HINT_T0);
    const __m256 b0 = _mm256_load_ps(bp + k * kNR), b1 = _mm256_load_ps(bp + k * kNR + 8);
    const int64_t o = k * ks;
    __m256 av = _mm256_broadcast_ss(a0 + o);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a1 + o);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a2 + o);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a3 + o);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a4 + o);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a5 + o);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t r = 0; r < mr; ++r) {
    float* cr = c + r * ldc;
    if (nr == kNR) {
      __m256 v0 = acc[r][0], v1 = acc[r][1];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
      }
      _mm256_storeu_ps(cr, v0);
      _mm256_storeu_ps(cr + 8, v1);
    } else {
      alignas(32) float tmp[kNR];
      _mm256_store_ps(tmp, acc[r][0]);
      _mm256_store_ps(tmp + 8, acc[r][1]);
      for (int64_t j = 0; j < nr; ++j) cr[j] = accumulate ? cr[j] + tmp[j] : tmp[j];
    }
  }
}

}  // namespace

bool available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

std::shared_ptr<PackedB> pack_b(const float* b, int64_t K, int64_t N, bool trans_b) {
  auto p = std::make_shared<PackedB>();
  p->K = K;
  p->N = N;
  const int64_t panels = (N + kNR - 1) / kNR;
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(1, panels * K * kNR)) * sizeof(float);
  void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!mem) return nullptr;
  p->data = std::unique_ptr<float, void (*)(void*)>(static_cast<float*>(mem), std::free);
  float* d = p->data.get();
  for (int64_t pn = 0; pn < panels; ++pn) {
    for (int64_t k = 0; k < K; ++k) {
      float* out = d + (pn * K + k) * kNR;
      for (int64_t j = 0; j < kNR; ++j) {
        const int64_t n = pn * kNR + j;
        out[j] = n < N ? (trans_b ? b[n * K + k] : b[k * N + n]) : 0.0f;
      }
    }
  }
  return p;
}

void gemm(const float* a, int64_t M, int64_t lda, const PackedB& b, const float* bias, float* c,
          const ParallelFor& parallel_for) {
  const int64_t K = b.K, N = b.N;
  if (M <= 0 || N <= 0) return;
  const int64_t panels = (N + kNR - 1) / kNR;
  const int64_t row_tasks = (M + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t panel_tasks = (panels + kPanelsPerTask - 1) / kPanelsPerTask;
  parallel_for(row_tasks * panel_tasks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m0 = (t / panel_tasks) * kRowsPerTask, m1 = std::min(M, m0 + kRowsPerTask);
      const int64_t p0 = (t % panel_tasks) * kPanelsPerTask, p1 = std::min(panels, p0 + kPanelsPerTask);
      if (K == 0) {
        for (int64_t i = m0; i < m1; ++i)
          for (int64_t n = p0 * kNR; n < std::min(N, p1 * kNR); ++n) c[i * N + n] = 0.0f;
      }
      for (int64_t kb = 0; kb < K; kb += kKC) {
        const int64_t kc = std::min(kKC, K - kb);
        for (int64_t pn = p0; pn < p1; ++pn) {
          const float* bp = b.data.get() + (pn * K + kb) * kNR;
          const int64_t nr = std::min(kNR, N - pn * kNR);
          for (int64_t i = m0; i < m1; i += kMR) {
            kernel_6x16(std::min(kMR, m1 - i), a + i * lda + kb, lda, 1, bp, kc, c + i * N + pn * kNR, N, nr, kb > 0);
          }
        }
      }
      if (bias) {
        for (int64_t i = m0; i < m1; ++i)
          for (int64_t n = p0 * kNR; n < std::min(N, p1 * kNR); ++n) c[i * N + n] += bias[n];
      }
    }
  });
}

void conv2d_nchw_to_blocked(const float* x, const Conv2dGeometry& g, const PackedB& w, const float* bias, int64_t block,
                            float* y, const std::function<void(float* tile, int64_t n)>& epilogue,
                            const ParallelFor& parallel_for) {
  const int64_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, CB = (g.M + block - 1) / block;
  const int64_t tiles = (P + kMR - 1) / kMR, panels = (g.M + kNR - 1) / kNR;
  // Tiles go in groups, so that one weight panel (K x 16) is loaded into L1 once per group, not once per tile.
  constexpr int64_t kGroup = 8;
  parallel_for(g.N * tiles, [&](int64_t t0, int64_t t1) {
    std::vector<float> ap(static_cast<size_t>(kGroup * K * kMR));
    alignas(32) float tile[kMR * kNR];
    for (int64_t tg = t0; tg < t1; tg += kGroup) {
      const int64_t count = std::min(kGroup, t1 - tg);
      for (int64_t q = 0; q < count; ++q) {
        const int64_t t = tg + q;
        const int64_t n = t / tiles, p0 = (t % tiles) * kMR, rows = std::min(kMR, P - p0);
        const float* xn = x + n * g.C * g.H * g.W;
        // im2col of the tile, six pixels interleaved: ap[k * 6 + r] for pixel p0 + r, k = (c, i, j). Six pixels
        // of one output row at stride 1 read six consecutive inputs.
        const int64_t oh0 = p0 / g.OW, ow0 = p0 % g.OW;
        const bool one_row = rows == kMR && ow0 + kMR <= g.OW;
        int64_t ohs[kMR], ows[kMR];
        for (int64_t r = 0; r < kMR; ++r) {
          ohs[r] = (p0 + r) / g.OW;
          ows[r] = (p0 + r) % g.OW;
        }
        float* apq = ap.data() + q * K * kMR;
        for (int64_t c = 0; c < g.C; ++c) {
          const float* xc = xn + c * g.H * g.W;
          for (int64_t i = 0; i < g.KH; ++i) {
            for (int64_t j = 0; j < g.KW; ++j) {
              float* dst = apq + ((c * g.KH + i) * g.KW + j) * kMR;
              const int64_t ih = oh0 * g.stride_h - g.pad_t + i * g.dil_h;
              const int64_t iw = ow0 * g.stride_w - g.pad_l + j * g.dil_w;
              if (one_row && ih >= 0 && ih < g.H && iw >= 0 && iw + (kMR - 1) * g.stride_w < g.W) {
                const float* src = xc + ih * g.W + iw;
                if (g.stride_w == 1) {
                  std::memcpy(dst, src, kMR * sizeof(float));
                } else {
                  for (int64_t r = 0; r < kMR; ++r) dst[r] = src[r * g.stride_w];
                }
                continue;
              }
              for (int64_t r = 0; r < kMR; ++r) {
                const int64_t h = ohs[r] * g.stride_h - g.pad_t + i * g.dil_h;
                const int64_t w2 = ows[r] * g.stride_w - g.pad_l + j * g.dil_w;
                dst[r] = r < rows && h >= 0 && h < g.H && w2 >= 0 && w2 < g.W ? xc[h * g.W + w2] : 0.0f;
              }
            }
          }
        }
      }
      for (int64_t pn = 0; pn < panels; ++pn) {
        const int64_t m0 = pn * kNR;
        for (int64_t q = 0; q < count; ++q) {
          const int64_t t = tg + q;
          const int64_t n = t / tiles, p0 = (t % tiles) * kMR, rows = std::min(kMR, P - p0);
          kernel_6x16(kMR, ap.data() + q * K * kMR, 1, kMR, w.data.get() + pn * K * kNR, K, tile, kNR, kNR, false);
          if (bias) {
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t j = 0; j < kNR && m0 + j < g.M; ++j) tile[r * kNR + j] += bias[m0 + j];
          }
          epilogue(tile, rows * kNR);
          // Scatter in runs of lanes that are contiguous in y (8 or 16 channels), padding lanes zero.
          const int64_t run = std::min(block, kNR);
          for (int64_t jj = 0; jj < kNR && m0 + jj < CB * block; jj += run) {
            const int64_t m = m0 + jj;
            float* dst = y + ((n * CB + m / block) * P + p0) * block + m % block;
            const int64_t valid = std::max<int64_t>(0, std::min(run, g.M - m));
            for (int64_t r = 0; r < rows; ++r) {
              const float* src = tile + r * kNR + jj;
              float* d = dst + r * block;
              std::memcpy(d, src, static_cast<size_t>(valid) * sizeof(float));
              for (int64_t l = valid; l < run; ++l) d[l] = 0.0f;
            }
          }
        }
      }
    }
  });
}

}  // namespace kiln::sgemm
