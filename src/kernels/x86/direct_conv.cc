#include "kernels/x86/direct_conv.h"

#include <algorithm>
#include <vector>

#include "kernels/x86/vec.h"

namespace kiln::direct_conv {

#define KILN_WIDTHS_SOURCE "kernels/x86/direct_conv_impl.inc"
#include "kernels/x86/both_widths.inc"

int64_t packed_k(const Geometry& g, int64_t block) {
  const int64_t groups = g.blocked_in ? (g.C + block - 1) / block * block : g.C;
  return groups * g.KH * g.KW;
}

std::shared_ptr<pointwise::Weights> pack_weights(const float* w, const Geometry& g, int64_t block) {
  const int64_t K = packed_k(g, block), lanes = g.blocked_in ? block : 1;
  const int64_t CG = g.blocked_in ? (g.C + block - 1) / block : g.C, taps = g.KH * g.KW;
  // [M, K] with K in the order the kernel reads the taps: (channel group, kh, kw, lane); zero for padding lanes.
  std::vector<float> matrix(static_cast<size_t>(g.M * K), 0.0f);
  for (int64_t m = 0; m < g.M; ++m) {
    for (int64_t cg = 0; cg < CG; ++cg) {
      for (int64_t t = 0; t < taps; ++t) {
        for (int64_t l = 0; l < lanes; ++l) {
          const int64_t c = cg * lanes + l;
          if (c >= g.C) break;
          matrix[static_cast<size_t>(m * K + (cg * taps + t) * lanes + l)] = w[(m * g.C + c) * taps + t];
        }
      }
    }
  }
  return pointwise::pack_weights(matrix.data(), g.M, K, block);
}

bool supports(cpu::Isa isa, int64_t block) { return simd::has_block(isa, block); }

namespace {

// The spans of one image, row by row: the pixels whose windows lie inside the input's columns in tiles of near-equal
// size, at most `most` (110 pixels in tiles of 6: 18 of 6 and 1 of 2 would leave a slow tile; 19 of 5 or 6 do not),
// the others one by one.
std::vector<Span> spans_of(const Geometry& g, int64_t most) {
  auto clamp = [](int64_t v, int64_t hi) { return std::min(std::max<int64_t>(v, 0), hi); };
  std::vector<Span> spans;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const int64_t kh0 = clamp(g.PH - oh * g.SH, g.KH), kh1 = std::max(kh0, clamp(g.H + g.PH - oh * g.SH, g.KH));
    auto single = [&](int64_t ow) {
      const int64_t kw0 = clamp(g.PW - ow * g.SW, g.KW), kw1 = std::max(kw0, clamp(g.W + g.PW - ow * g.SW, g.KW));
      spans.push_back({oh, ow, 1, kh0, kh1, kw0, kw1});
    };
    // Interior columns: ow * SW >= PW and ow * SW - PW + KW <= W.
    const int64_t lo = std::min(g.OW, (g.PW + g.SW - 1) / g.SW);
    const int64_t hi = g.W + g.PW - g.KW < 0 ? 0 : std::min(g.OW, (g.W + g.PW - g.KW) / g.SW + 1);
    if (lo >= hi) {
      for (int64_t ow = 0; ow < g.OW; ++ow) single(ow);
      continue;
    }
    for (int64_t ow = 0; ow < lo; ++ow) single(ow);
    const int64_t tiles = (hi - lo + most - 1) / most;
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t p0 = lo + t * (hi - lo) / tiles, p1 = lo + (t + 1) * (hi - lo) / tiles;
      spans.push_back({oh, p0, p1 - p0, kh0, kh1, 0, g.KW});
    }
    for (int64_t ow = hi; ow < g.OW; ++ow) single(ow);
  }
  return spans;
}

}  // namespace

Tiling tiling(const Geometry& g, int64_t block) {
  Tiling t;
  t.g = g;
  t.block = block;
  const int64_t most_blocks = block == 16 ? 4 : 2;  // the kernels' kMaxBlocks
  t.group = pointwise::blocks_per_group((g.M + block - 1) / block, most_blocks);
  t.spans = spans_of(g, t.group <= most_blocks / 2 ? 12 : 6);
  return t;
}

void conv_blocked(cpu::Isa isa, const float* x, const Tiling& t, const pointwise::Weights& w, const float* bias,
                  const float* z, float lo, float hi, float* y, int threads, const sgemm::ParallelFor& parallel_for) {
  if (t.g.N <= 0 || t.g.OH <= 0 || t.g.OW <= 0 || w.Mp <= 0) return;
  if (w.block == 16 && isa >= cpu::Isa::kAvx512) {
    avx512::conv(x, t, w, bias, z, lo, hi, y, threads, parallel_for);
  } else {
    avx2::conv(x, t, w, bias, z, lo, hi, y, threads, parallel_for);
  }
}

}  // namespace kiln::direct_conv
