#include "kernels/x86/winograd.h"

#include "kernels/x86/scratch.h"
#include "kiln/core/allocator.h"

#include "kernels/x86/vec.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace kiln::winograd {
namespace {

constexpr int64_t kPanel = 16;
// Tiles are processed in chunks whose transformed inputs and products (positions x tiles x (C + M) floats)
// stay within this many floats (3 MiB), so that they are still in cache when read back.
constexpr int64_t kChunkFloats = 768 * 1024;
// When the transformed weights are at most kLocalWeights floats (1 MiB: P^2 C M <= 2^18, ResNet-50's 3x3
// layers of 64 and 128 channels in F(2x2, 3x3), of 64 in F(4x4, 3x3)), a thread takes runs of tiles through all three
// steps alone: a multiple of 6 tiles (the micro-kernel's rows), at least kLocalMinTiles so that the weights' trip from
// L3 is shared, and within kLocalFloats of transformed inputs and products (96 KiB, in the core's L2) where that allows
// more. Measured against the shared chunks below on ResNet-50's layers (both in one process, alternating, caches
// flushed between calls, batch 1 and 8): 64 channels 0.85-0.93 of their time, 128 channels 0.90-1.03 (a chunk's 3 MiB
// of scratch, written by one core and read by the other, stays in neither's L2); 256 channels 1.02-1.31, each run then
// reading 4 MiB of weights from L3 or memory.
constexpr int64_t kLocalWeights = int64_t{1} << 18, kLocalFloats = 24 * 1024, kLocalMinTiles = 12, kLocalMultiple = 6;
// Output columns per product task: two weight panels.
constexpr int64_t kColsPerTask = 2 * kPanel;

// The Winograd algorithms for a 3-tap window, stride S, T outputs from P inputs: the weights' matrix G [P x 3]
// here, the input's (B^T d) and output's (A^T m) transforms on vectors of channels in winograd_impl.inc. The
// two-dimensional transforms apply them to the columns, then the rows.

// F(2, 3): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1].
struct F2 {
  static constexpr int T = 2, P = 4, S = 1;
  static constexpr double G[P][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

// F(4, 3) on the points 0, -1, 1, 1/2, -2 and infinity, which in float32 have about half the error of Lavin and
// Gray's 0, 1, -1, 2, -2 (Barabasz et al., "Error analysis and improving the accuracy of Winograd
// convolution", 2020; measured here: 5.3e-5 against 1.1e-4 on 128-channel sums of magnitude 36, F(2, 3): 7.8e-6).
// B^T = [1 -3/2 -2 3/2 1 0; 0 1 -5/2 1/2 1 0; 0 -1 1/2 5/2 1 0; 0 -2 -1 2 1 0; 0 1/2 -1 -1/2 1 0;
// 0 1 -3/2 -2 3/2 1], A^T = [1 1 1 1 1 0; 0 -1 1 1/2 -2 0; 0 1 1 1/4 4 0; 0 -1 1 1/8 -8 1].
struct F4 {
  static constexpr int T = 4, P = 6, S = 1;
  static constexpr double G[P][3] = {{1, 0, 0},
                                     {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                     {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                     {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                     {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                     {0, 0, 1}};
};

// Stride 2, two outputs from five inputs: the window [w0, w1, w2] over the even inputs is the two-tap [w0, w2]
// done as F(2, 2) (B^T = [1 -1 0; 0 1 0; 0 -1 1], G = [1 0; 1 1; 0 1], A^T = [1 1 0; 0 1 1]) on d0, d2, d4, and
// over the odd ones the single tap w1 on d1 and d3: 5 multiplications for 2 outputs instead of 6, and in two
// dimensions 25 for a 2x2 tile instead of 36. G's last two rows are equal, so 16 of the 25 transformed weight
// matrices are distinct (transform_weights shares the others).
struct F2S2 {
  static constexpr int T = 2, P = 5, S = 2;
  static constexpr double G[P][3] = {{1, 0, 0}, {1, 0, 1}, {0, 0, 1}, {0, 1, 0}, {0, 1, 0}};
};

struct Tile {
  int64_t n, oh, ow;  // image and the tile's top-left output pixel
};

template <class F>
Tile tile_at(int64_t t, int64_t tiles_h, int64_t tiles_w) {
  const int64_t per_image = tiles_h * tiles_w;
  return {t / per_image, (t % per_image) / tiles_w * F::T, t % tiles_w * F::T};
}

x86::Scratch& chunk_scratch() { return x86::thread_scratch<x86::ScratchUser::kWinograd>(); }

template <class F>
std::shared_ptr<Weights> transform_weights_t(const float* w, int64_t M, int64_t C,
                                             const sgemm::ParallelFor& parallel_for) {
  constexpr int P = F::P;
  const auto& G = F::G;
  auto out = std::make_shared<Weights>();
  out->C = C;
  out->M = M;
  out->tile = F::T;
  out->stride = F::S;
  // U = G g G^T for every (m, c), in double, written straight into the P * P packed [C, M] matrices: each task
  // takes panels of 16 output channels, so that its writes to each matrix are runs of 16 floats. Positions whose
  // rows of G are equal to an earlier position's share its matrix.
  auto first_equal_row = [&G](int i) {
    int k = 0;
    while (G[k][0] != G[i][0] || G[k][1] != G[i][1] || G[k][2] != G[i][2]) ++k;
    return k;
  };
  std::vector<size_t> rep(P * P);
  out->u.resize(P * P);
  for (int i = 0; i < P; ++i) {
    for (int j = 0; j < P; ++j) {
      const size_t xi = static_cast<size_t>(i * P + j);
      rep[xi] = static_cast<size_t>(first_equal_row(i) * P + first_equal_row(j));
      out->u[xi] = rep[xi] == xi ? sgemm::allocate_packed_b(C, M) : out->u[rep[xi]];
      if (!out->u[xi]) return nullptr;
    }
  }
  std::vector<float*> dst(P * P);
  for (size_t xi = 0; xi < dst.size(); ++xi) dst[xi] = rep[xi] == xi ? out->u[xi]->data.get() : nullptr;
  parallel_for((M + kPanel - 1) / kPanel, [&](int64_t p0, int64_t p1) {
    float row[P * P][kPanel];  // one panel row of every position, stored as whole cache lines
    for (int64_t pn = p0; pn < p1; ++pn) {
      const int64_t lanes = std::min(kPanel, M - pn * kPanel);  // the last panel's other lanes are padding
      for (int64_t c = 0; c < C; ++c) {
        // The 16 output channels side by side (lane innermost, so that the loops vectorize).
        double g[9][kPanel] = {}, gg[P][3][kPanel];  // g, then G g
        for (int64_t lane = 0; lane < lanes; ++lane) {
          const float* src = w + ((pn * kPanel + lane) * C + c) * 9;
          for (int k = 0; k < 9; ++k) g[k][lane] = src[k];
        }
        for (int i = 0; i < P; ++i)
          for (int j = 0; j < 3; ++j)
            for (int64_t l = 0; l < kPanel; ++l)
              gg[i][j][l] = G[i][0] * g[j][l] + G[i][1] * g[3 + j][l] + G[i][2] * g[6 + j][l];
        for (int i = 0; i < P; ++i)
          for (int j = 0; j < P; ++j)
            for (int64_t l = 0; l < kPanel; ++l)
              row[i * P + j][l] =
                  static_cast<float>(gg[i][0][l] * G[j][0] + gg[i][1][l] * G[j][1] + gg[i][2][l] * G[j][2]);
        for (int xi = 0; xi < P * P; ++xi) {
          if (float* d = dst[static_cast<size_t>(xi)]) std::memcpy(d + (pn * C + c) * kPanel, row[xi], sizeof(row[xi]));
        }
      }
    }
  });
  return out;
}

template <class F, class Ops>
void conv3x3_t(cpu::Isa isa, const float* x, const Geometry& g, const Weights& w, const float* bias, const float* z,
               float lo, float hi, float* y, const sgemm::ParallelFor& parallel_for) {
  constexpr int64_t kPositions = F::P * F::P;
  constexpr int64_t T = F::T;
  const int64_t tiles_h = (g.OH + T - 1) / T, tiles_w = (g.OW + T - 1) / T, total = g.N * tiles_h * tiles_w;
  if (total == 0 || g.M == 0) return;
  if (kPositions * g.C * g.M <= kLocalWeights) {
    // Runs of tiles, each through all three steps on one thread, in that thread's scratch.
    const int64_t per_task =
        std::max<int64_t>(kLocalMinTiles, kLocalFloats / (kPositions * (g.C + g.M)) / kLocalMultiple * kLocalMultiple);
    parallel_for((total + per_task - 1) / per_task, [&](int64_t k0, int64_t k1) {
      float* const scratch = chunk_scratch().reserve(static_cast<size_t>(kPositions * per_task * (g.C + g.M)));
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t first = k * per_task, count = std::min(per_task, total - first);
        float* v = scratch;
        float* m = v + kPositions * count * g.C;
        Ops::template inputs<F>(x, g, tiles_h, tiles_w, first, count, 0, count, v);
        for (int64_t xi = 0; xi < kPositions; ++xi) {
          sgemm::gemm_serial(isa, v + xi * count * g.C, count, g.C, w.u[static_cast<size_t>(xi)]->data.get(), g.C, g.M,
                             m + xi * count * g.M, g.M);
        }
        Ops::template outputs<F>(m, g, tiles_h, tiles_w, first, count, 0, count, bias, z, lo, hi, y);
      }
    });
    return;
  }
  // Chunks of tiles that both threads work on, step by step.
  const int64_t max_chunk = std::max<int64_t>(6, kChunkFloats / (kPositions * (g.C + g.M)));
  const int64_t chunks = (total + max_chunk - 1) / max_chunk, chunk = (total + chunks - 1) / chunks;
  float* v = chunk_scratch().reserve(static_cast<size_t>(kPositions * chunk * (g.C + g.M)));
  float* m = v + kPositions * chunk * g.C;
  const int64_t col_tasks = (g.M + kColsPerTask - 1) / kColsPerTask;
  for (int64_t first = 0; first < total; first += chunk) {
    const int64_t count = std::min(chunk, total - first);
    parallel_for(count, [&](int64_t t0, int64_t t1) {
      Ops::template inputs<F>(x, g, tiles_h, tiles_w, first, count, t0, t1, v);
    });
    // The P * P products, each split by columns: [count, C] @ [C, 32 columns].
    parallel_for(kPositions * col_tasks, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t xi = k / col_tasks, n0 = (k % col_tasks) * kColsPerTask;
        const sgemm::PackedB& u = *w.u[static_cast<size_t>(xi)];
        sgemm::gemm_serial(isa, v + xi * count * g.C, count, g.C, u.data.get() + n0 * g.C, g.C,
                           std::min(kColsPerTask, g.M - n0), m + xi * count * g.M + n0, g.M);
      }
    });
    parallel_for(count, [&](int64_t t0, int64_t t1) {
      Ops::template outputs<F>(m, g, tiles_h, tiles_w, first, count, t0, t1, bias, z, lo, hi, y);
    });
  }
}

}  // namespace

// The vector code, once per channel block: 8 (AVX2) and 16 (AVX-512).
#define KILN_WIDTHS_SOURCE "kernels/x86/winograd_impl.inc"
#include "kernels/x86/both_widths.inc"

int64_t tiles(int tile, int64_t n, int64_t oh, int64_t ow) {
  return n * ((oh + tile - 1) / tile) * ((ow + tile - 1) / tile);
}

std::shared_ptr<Weights> transform_weights(const float* w, int64_t M, int64_t C, int tile, int stride,
                                           const sgemm::ParallelFor& parallel_for) {
  if (stride == 2) return transform_weights_t<F2S2>(w, M, C, parallel_for);
  return tile == 4 ? transform_weights_t<F4>(w, M, C, parallel_for) : transform_weights_t<F2>(w, M, C, parallel_for);
}

namespace {

template <class Ops>
void conv3x3_ops(cpu::Isa isa, const float* x, const Geometry& g, const Weights& w, const float* bias, const float* z,
                 float lo, float hi, float* y, const sgemm::ParallelFor& parallel_for) {
  if (w.stride == 2) {
    conv3x3_t<F2S2, Ops>(isa, x, g, w, bias, z, lo, hi, y, parallel_for);
  } else if (w.tile == 4) {
    conv3x3_t<F4, Ops>(isa, x, g, w, bias, z, lo, hi, y, parallel_for);
  } else {
    conv3x3_t<F2, Ops>(isa, x, g, w, bias, z, lo, hi, y, parallel_for);
  }
}

}  // namespace

bool supports(cpu::Isa isa, int64_t block) { return simd::has_block(isa, block); }

void conv3x3_blocked(cpu::Isa isa, int64_t block, const float* x, const Geometry& g, const Weights& w,
                     const float* bias, const float* z, float lo, float hi, float* y,
                     const sgemm::ParallelFor& parallel_for) {
  if (block == 16) {
    conv3x3_ops<avx512::Ops>(isa, x, g, w, bias, z, lo, hi, y, parallel_for);
  } else {
    conv3x3_ops<avx2::Ops>(isa, x, g, w, bias, z, lo, hi, y, parallel_for);
  }
}

}  // namespace kiln::winograd
