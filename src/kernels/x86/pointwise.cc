#include "kernels/x86/pointwise.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/x86/vec.h"
#include "kiln/core/allocator.h"

namespace kiln::pointwise {

#define KILN_WIDTHS_SOURCE "kernels/x86/pointwise_impl.inc"
#include "kernels/x86/both_widths.inc"

std::shared_ptr<Weights> pack_weights(const float* w, int64_t M, int64_t C, int64_t block) {
  auto out = std::make_shared<Weights>();
  out->M = M;
  out->C = C;
  out->block = block;
  out->Mp = (M + block - 1) / block * block;
  out->Cp = (C + block - 1) / block * block;
  const size_t bytes = static_cast<size_t>(out->Mp * out->Cp) * sizeof(float);
  out->data = {static_cast<float*>(allocate_streamed(bytes)), std::free};
  if (!out->data) return nullptr;
  float* d = out->data.get();
  std::memset(d, 0, bytes);
  for (int64_t m = 0; m < M; ++m) {
    float* block_w = d + m / block * out->Cp * block + m % block;
    for (int64_t c = 0; c < C; ++c) block_w[c * block] = w[m * C + c];
  }
  return out;
}

bool supports(cpu::Isa isa, int64_t block) { return simd::has_block(isa, block); }

int64_t blocks_per_group(int64_t MB, int64_t most) {
  if (MB <= most) return MB;
  for (int64_t b = most; b > 1; --b) {
    if (MB % b == 0) return b;
  }
  return most;
}

const float* padded_bias(const float* bias, const Weights& w, std::vector<float>& storage) {
  if (!bias || w.Mp == w.M) return bias;
  storage.assign(static_cast<size_t>(w.Mp), 0.0f);
  std::copy(bias, bias + w.M, storage.begin());
  return storage.data();
}

void for_tile_runs(int64_t N, int64_t groups, int64_t tiles, int threads, const sgemm::ParallelFor& parallel_for,
                   const std::function<void(int64_t, int64_t, int64_t, int64_t)>& fn) {
  const int64_t items = N * groups * tiles, T = std::max(1, threads);
  if (items <= 0) return;
  const int64_t tasks = std::min(items, items >= 8 * T ? 2 * T : T);
  parallel_for(tasks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t a = t * items / tasks, b = (t + 1) * items / tasks;
      for (int64_t it = a; it < b;) {
        const int64_t n = it / (groups * tiles), g = it / tiles % groups, i = it % tiles;
        const int64_t i1 = std::min(tiles, i + (b - it));
        fn(n, g, i, i1);
        it += i1 - i;
      }
    }
  });
}

void conv1x1_blocked(cpu::Isa isa, const float* x, int64_t N, int64_t HW, const Weights& w, const float* bias,
                     const float* z, float lo, float hi, float* y, int threads,
                     const sgemm::ParallelFor& parallel_for) {
  if (N <= 0 || HW <= 0 || w.Mp <= 0) return;
  if (w.block == 16 && isa >= cpu::Isa::kAvx512) {
    avx512::conv(x, N, HW, w, bias, z, lo, hi, y, threads, parallel_for);
  } else {
    avx2::conv(x, N, HW, w, bias, z, lo, hi, y, threads, parallel_for);
  }
}

}  // namespace kiln::pointwise
