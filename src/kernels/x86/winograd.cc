#include "kernels/x86/winograd.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <new>

namespace kiln::winograd {
namespace {

constexpr int64_t kBlock = 8, kPositions = 16, kPanel = 16;
// Tiles are processed in chunks whose transformed inputs and products (16 x tiles x (C + M) floats) stay
// within this many floats (3 MiB), so that they are still in cache when read back.
constexpr int64_t kChunkFloats = 768 * 1024;
// When the transformed weights are at most kLocalWeights floats (1 MiB: C M <= 16384, ResNet-50's 3x3 layers
// of 64 and 128 channels), a thread takes runs of tiles through all three steps alone: a multiple of 6 tiles
// (the micro-kernel's rows), at least kLocalMinTiles so that the weights' trip from L3 is shared, and within
// kLocalFloats of transformed inputs and products (96 KiB, in the core's L2) where that allows more. Measured
// against the shared chunks below on ResNet-50's layers (both in one process, alternating, caches flushed
// between calls, batch 1 and 8): 64 channels 0.85-0.93 of their time, 128 channels 0.90-1.03 (a chunk's 3 MiB
// of scratch, written by one core and read by the other, stays in neither's L2); 256 channels 1.02-1.31, each
// run then reading 4 MiB of weights from L3 or memory.
constexpr int64_t kLocalWeights = int64_t{1} << 18, kLocalFloats = 24 * 1024, kLocalMinTiles = 12, kLocalMultiple = 6;
// Output columns per product task: two weight panels.
constexpr int64_t kColsPerTask = 2 * kPanel;

// v = B^T d B for one 4x4 patch of 8-channel vectors, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
__attribute__((target("avx2"), always_inline)) inline void input_transform(const __m256 (&d)[4][4], __m256 (&v)[16]) {
  __m256 t[4][4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    t[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
    t[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
    t[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
    t[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    v[i * 4 + 0] = _mm256_sub_ps(t[i][0], t[i][2]);
    v[i * 4 + 1] = _mm256_add_ps(t[i][1], t[i][2]);
    v[i * 4 + 2] = _mm256_sub_ps(t[i][2], t[i][1]);
    v[i * 4 + 3] = _mm256_sub_ps(t[i][1], t[i][3]);
  }
}

// y = A^T m A for the 16 products of one tile, A^T = [1 1 1 0; 0 1 -1 -1]: a 2x2 tile of 8-channel vectors.
__attribute__((target("avx2"), always_inline)) inline void output_transform(const __m256 (&m)[16], __m256 (&y)[2][2]) {
  __m256 r[2][4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[0][j] = _mm256_add_ps(_mm256_add_ps(m[j], m[4 + j]), m[8 + j]);
    r[1][j] = _mm256_sub_ps(_mm256_sub_ps(m[4 + j], m[8 + j]), m[12 + j]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    y[i][0] = _mm256_add_ps(_mm256_add_ps(r[i][0], r[i][1]), r[i][2]);
    y[i][1] = _mm256_sub_ps(_mm256_sub_ps(r[i][1], r[i][2]), r[i][3]);
  }
}

struct Tile {
  int64_t n, oh, ow;  // image and the tile's top-left output pixel
};

Tile tile_at(int64_t t, int64_t tiles_h, int64_t tiles_w) {
  const int64_t per_image = tiles_h * tiles_w;
  return {t / per_image, (t % per_image) / tiles_w * 2, t % tiles_w * 2};
}

// The transformed patches of tiles [t0, t1) of the chunk starting at tile `first`: v[xi][t - first][C].
__attribute__((target("avx2"))) void transform_inputs(const float* x, const Geometry& g, int64_t tiles_h,
                                                      int64_t tiles_w, int64_t first, int64_t count, int64_t t0,
                                                      int64_t t1, float* v) {
  const int64_t CB = g.C / kBlock;
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tile = tile_at(first + t, tiles_h, tiles_w);
    const int64_t h0 = tile.oh - g.pad_t, w0 = tile.ow - g.pad_l;
    const bool inside = h0 >= 0 && h0 + 4 <= g.H && w0 >= 0 && w0 + 4 <= g.W;
    for (int64_t cb = 0; cb < CB; ++cb) {
      const float* plane = x + ((tile.n * CB + cb) * g.H) * g.W * kBlock;
      __m256 d[4][4];
      for (int i = 0; i < 4; ++i) {
        const int64_t h = h0 + i;
        for (int j = 0; j < 4; ++j) {
          const int64_t w = w0 + j;
          d[i][j] = inside || (h >= 0 && h < g.H && w >= 0 && w < g.W) ? _mm256_loadu_ps(plane + (h * g.W + w) * kBlock)
                                                                       : _mm256_setzero_ps();
        }
      }
      __m256 out[16];
      input_transform(d, out);
      float* dst = v + t * g.C + cb * kBlock;
#pragma GCC unroll 16
      for (int xi = 0; xi < kPositions; ++xi) _mm256_storeu_ps(dst + xi * count * g.C, out[xi]);
    }
  }
}

// Tiles [t0, t1) of the chunk from their products m[xi][t - first][M] into y, with bias, z and the clamp.
__attribute__((target("avx2"))) void transform_outputs(const float* m, const Geometry& g, int64_t tiles_h,
                                                       int64_t tiles_w, int64_t first, int64_t count, int64_t t0,
                                                       int64_t t1, const float* bias, const float* z, float lo,
                                                       float hi, float* y) {
  const int64_t MB = g.M / kBlock;
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  for (int64_t t = t0; t < t1; ++t) {
    const Tile tile = tile_at(first + t, tiles_h, tiles_w);
    const int64_t rows = std::min<int64_t>(2, g.OH - tile.oh), cols = std::min<int64_t>(2, g.OW - tile.ow);
    for (int64_t mb = 0; mb < MB; ++mb) {
      const float* src = m + t * g.M + mb * kBlock;
      __m256 p[16];
#pragma GCC unroll 16
      for (int xi = 0; xi < kPositions; ++xi) p[xi] = _mm256_loadu_ps(src + xi * count * g.M);
      __m256 out[2][2];
      output_transform(p, out);
      const __m256 b = bias ? _mm256_loadu_ps(bias + mb * kBlock) : _mm256_setzero_ps();
      const int64_t plane = (tile.n * MB + mb) * g.OH * g.OW;
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t at = (plane + (tile.oh + i) * g.OW + tile.ow + j) * kBlock;
          __m256 r = _mm256_add_ps(out[i][j], b);
          if (z) r = _mm256_add_ps(r, _mm256_loadu_ps(z + at));
          _mm256_storeu_ps(y + at, _mm256_min_ps(vhi, _mm256_max_ps(vlo, r)));
        }
      }
    }
  }
}

// A thread's scratch for transformed inputs and products (a chunk's, or a run's), kept between calls.
std::vector<float>& chunk_scratch() {
  thread_local std::vector<float> s;
  return s;
}

}  // namespace

std::shared_ptr<Weights> transform_weights(const float* w, int64_t M, int64_t C,
                                           const sgemm::ParallelFor& parallel_for) {
  auto out = std::make_shared<Weights>();
  out->C = C;
  out->M = M;
  // U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], for every (m, c), stored as 16 [C, M] matrices.
  std::vector<float> u(static_cast<size_t>(kPositions * C * M));
  const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  parallel_for(M, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      for (int64_t c = 0; c < C; ++c) {
        const float* g = w + (m * C + c) * 9;
        double gg[4][3];  // G g
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 3; ++j) gg[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
        for (int i = 0; i < 4; ++i) {
          for (int j = 0; j < 4; ++j) {
            const double v = gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2];
            u[static_cast<size_t>(((i * 4 + j) * C + c) * M + m)] = static_cast<float>(v);
          }
        }
      }
    }
  });
  out->u.resize(kPositions);
  parallel_for(kPositions, [&](int64_t x0, int64_t x1) {
    // Nothing may leave a task (an OpenMP region would terminate): out of memory leaves the packing null.
    for (int64_t xi = x0; xi < x1; ++xi) {
      try {
        out->u[static_cast<size_t>(xi)] = sgemm::pack_b(u.data() + xi * C * M, C, M, false);
      } catch (const std::bad_alloc&) {
        out->u[static_cast<size_t>(xi)] = nullptr;
      }
    }
  });
  for (const auto& p : out->u) {
    if (!p) return nullptr;
  }
  return out;
}

void conv3x3_blocked8(const float* x, const Geometry& g, const Weights& w, const float* bias, const float* z, float lo,
                      float hi, float* y, const sgemm::ParallelFor& parallel_for) {
  const int64_t tiles_h = (g.OH + 1) / 2, tiles_w = (g.OW + 1) / 2, total = g.N * tiles_h * tiles_w;
  if (total == 0 || g.M == 0) return;
  if (kPositions * g.C * g.M <= kLocalWeights) {
    // Runs of tiles, each through all three steps on one thread, in that thread's scratch.
    const int64_t per_task =
        std::max<int64_t>(kLocalMinTiles, kLocalFloats / (kPositions * (g.C + g.M)) / kLocalMultiple * kLocalMultiple);
    parallel_for((total + per_task - 1) / per_task, [&](int64_t k0, int64_t k1) {
      std::vector<float>& scratch = chunk_scratch();
      const size_t need = static_cast<size_t>(kPositions * per_task * (g.C + g.M));
      if (scratch.size() < need) scratch.resize(need);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t first = k * per_task, count = std::min(per_task, total - first);
        float* v = scratch.data();
        float* m = v + kPositions * count * g.C;
        transform_inputs(x, g, tiles_h, tiles_w, first, count, 0, count, v);
        for (int64_t xi = 0; xi < kPositions; ++xi) {
          sgemm::gemm_serial(v + xi * count * g.C, count, g.C, w.u[static_cast<size_t>(xi)]->data.get(), g.C, g.M,
                             m + xi * count * g.M, g.M);
        }
        transform_outputs(m, g, tiles_h, tiles_w, first, count, 0, count, bias, z, lo, hi, y);
      }
    });
    return;
  }
  // Chunks of tiles that both threads work on, step by step.
  const int64_t max_chunk = std::max<int64_t>(6, kChunkFloats / (kPositions * (g.C + g.M)));
  const int64_t chunks = (total + max_chunk - 1) / max_chunk, chunk = (total + chunks - 1) / chunks;
  std::vector<float>& scratch = chunk_scratch();
  const size_t need = static_cast<size_t>(kPositions * chunk * (g.C + g.M));
  if (scratch.size() < need) scratch.resize(need);
  float* v = scratch.data();
  float* m = v + kPositions * chunk * g.C;
  const int64_t col_tasks = (g.M + kColsPerTask - 1) / kColsPerTask;
  for (int64_t first = 0; first < total; first += chunk) {
    const int64_t count = std::min(chunk, total - first);
    parallel_for(count,
                 [&](int64_t t0, int64_t t1) { transform_inputs(x, g, tiles_h, tiles_w, first, count, t0, t1, v); });
    // The 16 products, each split by columns: [count, C] @ [C, 32 columns].
    parallel_for(kPositions * col_tasks, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t xi = k / col_tasks, n0 = (k % col_tasks) * kColsPerTask;
        const sgemm::PackedB& u = *w.u[static_cast<size_t>(xi)];
        sgemm::gemm_serial(v + xi * count * g.C, count, g.C, u.data.get() + n0 * g.C, g.C,
                           std::min(kColsPerTask, g.M - n0), m + xi * count * g.M + n0, g.M);
      }
    });
    parallel_for(count, [&](int64_t t0, int64_t t1) {
      transform_outputs(m, g, tiles_h, tiles_w, first, count, t0, t1, bias, z, lo, hi, y);
    });
  }
}

}  // namespace kiln::winograd
