#include "kernels/x86/sgemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kiln/core/allocator.h"

namespace kiln::sgemm {
namespace {

constexpr int64_t kMR = 6, kNR = 16, kKC = 256;
// A task is up to 24 row blocks (144 rows: an A block of 144 x 256 floats, 144 KiB, stays in L2) by 2 weight
// panels; each K block of a panel (256 x 16 floats, 16 KiB) is loaded into L1 once and used by every row block.
constexpr int64_t kRowBlocksPerTask = 24, kPanelsPerTask = 2;
// AVX-512's micro-kernel takes four panels at once: its tasks are that wide.
constexpr int64_t kPanelsPerTaskAvx512 = 4;
// The micro-kernel reads packed A and B this many floats ahead (16 K steps).
constexpr int64_t kPrefetchA = 96, kPrefetchB = 256;
// A is packed when each of its rows meets more than this many weight panels (packing costs a pass over A).
constexpr int64_t kPackAMinPanels = 4;
// The next K block of weights is prefetched while the current one is used by at least this many row blocks.
constexpr int64_t kPrefetchNextMinBlocks = 4;

// One K step of a block of 16 columns: acc[r] += broadcast(*a[r]) * (b0, b1) for the first kRows rows. Inlined
// into the micro-kernels, where the accumulators stay in registers.
template <int kRows>
__attribute__((target("avx2,fma"), always_inline)) inline void fma_step(__m256 (&acc)[kMR][2],
                                                                        const float* const (&a)[kMR], __m256 b0,
                                                                        __m256 b1) {
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r) {
    const __m256 av = _mm256_broadcast_ss(a[r]);
    acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
    acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
  }
}

// c[0..mr)[0..nr) (+)= A @ B panel over kc steps, the B panel bp[k * 16 + j] from pack_b. kPacked: A is a panel
// of six rows interleaved, a[k * 6 + r] (rows past the end of A zero), from pack_a_block. Otherwise A is
// row-major, rows `lda` apart; a block of fewer than 6 rows reads a clamped row for the rest (its sums are
// dropped). kRows (3 to 6, at least mr) rows are computed; their accumulators stay in registers.
template <bool kPacked, int kRows>
__attribute__((target("avx2,fma"))) void kernel_rows_x16(const float* a, int64_t lda, const float* bp, int64_t kc,
                                                         float* c, int64_t ldc, int64_t mr, int64_t nr,
                                                         bool accumulate) {
  static_assert(kRows >= 3 && kRows <= kMR, "3 to 6 rows");
  const float* rows[kMR];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) rows[r] = a + (kPacked ? r : std::min<int64_t>(r, mr - 1) * lda);
  constexpr int64_t kAStep = kPacked ? kMR : 1;
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    if (kPacked) _mm_prefetch(reinterpret_cast<const char*>(rows[0] + kPrefetchA), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(bp + kPrefetchB), _MM_HINT_T0);
    fma_step<kRows>(acc, rows, _mm256_loadu_ps(bp), _mm256_loadu_ps(bp + 8));
#pragma GCC unroll 6
    for (auto& row : rows) row += kAStep;
    bp += kNR;
  }
  // Unrolled, so that every accumulator index is a constant and the accumulators never leave registers.
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r) {
    if (r >= mr) break;
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

// A block of up to 6 rows, computed with as many rows as it has (at least 3).
template <bool kPacked>
void kernel_6x16(const float* a, int64_t lda, const float* bp, int64_t kc, float* c, int64_t ldc, int64_t mr,
                 int64_t nr, bool accumulate) {
  switch (mr) {
    case 4: return kernel_rows_x16<kPacked, 4>(a, lda, bp, kc, c, ldc, mr, nr, accumulate);
    case 5: return kernel_rows_x16<kPacked, 5>(a, lda, bp, kc, c, ldc, mr, nr, accumulate);
    case 6: return kernel_rows_x16<kPacked, 6>(a, lda, bp, kc, c, ldc, mr, nr, accumulate);
    default: return kernel_rows_x16<kPacked, 3>(a, lda, bp, kc, c, ldc, mr, nr, accumulate);
  }
}

// The AVX-512 micro-kernel: the same 6-row A panels (or rows in place) against kCols (1, 2 or 4) weight panels at
// once, panel j at bp + j * pstride, one 16-float register per row and panel (up to 24 accumulators). A K step of
// four panels is 24 FMAs on 4 weight loads and 6 broadcasts (folded into the FMAs); two panels were 12 FMAs on 8
// loads and 3 prefetches, which kept the load ports as busy as the FMA ports. On the Sapphire Rapids-class Xeon
// (2 vCPUs), 128 x 768 x 3072 and 128 x 3072 x 768 products on one core went from 130-140 GFLOP/s (61-66% of the
// 213 GFLOP/s an FMA loop reaches) with two panels to 137-154 with four, and on two cores from 252-266 to 267-311
// (oneDNN's brgemm in the same runs: 274-309). Four panels are not prefetched: the hardware follows their four
// streams, and the prefetches cost more than they saved (145 -> 160 GFLOP/s without them on one core). nr (<= 16
// kCols) columns of c are written, the rest masked off.
template <bool kPacked, int kRows, int kCols>
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma"))) void kernel_rows_avx512(
    const float* a, int64_t lda, const float* bp, int64_t pstride, int64_t kc, float* c, int64_t ldc, int64_t mr,
    int64_t nr, bool accumulate) {
  static_assert(kRows >= 3 && kRows <= kMR, "3 to 6 rows");
  static_assert(kCols == 1 || kCols == 2 || kCols == 4, "1, 2 or 4 panels");
  const float* rows[kMR];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) rows[r] = a + (kPacked ? r : std::min<int64_t>(r, mr - 1) * lda);
  constexpr int64_t kAStep = kPacked ? kMR : 1;
  const float* panel[kCols];
#pragma GCC unroll 4
  for (int j = 0; j < kCols; ++j) panel[j] = bp + j * pstride;
  __m512 acc[kMR][kCols];
#pragma GCC unroll 6
  for (auto& row : acc) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm512_setzero_ps();
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    if (kPacked) _mm_prefetch(reinterpret_cast<const char*>(rows[0] + kPrefetchA), _MM_HINT_T0);
    __m512 b[kCols];
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) {
      if (kCols < 4) _mm_prefetch(reinterpret_cast<const char*>(panel[j] + kPrefetchB), _MM_HINT_T0);
      b[j] = _mm512_loadu_ps(panel[j]);
      panel[j] += kNR;
    }
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) {
      const __m512 av = _mm512_set1_ps(*rows[r]);
#pragma GCC unroll 4
      for (int j = 0; j < kCols; ++j) acc[r][j] = _mm512_fmadd_ps(av, b[j], acc[r][j]);
    }
#pragma GCC unroll 6
    for (auto& row : rows) row += kAStep;
  }
  __mmask16 mask[kCols];
#pragma GCC unroll 4
  for (int j = 0; j < kCols; ++j) {
    const int64_t n = std::clamp<int64_t>(nr - j * kNR, 0, kNR);
    mask[j] = static_cast<__mmask16>(n >= kNR ? 0xffff : (1u << n) - 1);
  }
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r) {
    if (r >= mr) break;
    float* cr = c + r * ldc;
#pragma GCC unroll 4
    for (int j = 0; j < kCols; ++j) {
      __m512 v = acc[r][j];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask[j], cr + j * kNR));
      _mm512_mask_storeu_ps(cr + j * kNR, mask[j], v);
    }
  }
}

// Up to 6 rows by `panels` (1, 2 or 4) weight panels, panel j at bp + j * pstride, on AVX-512.
template <bool kPacked, int kCols>
void kernel_6xn_avx512(const float* a, int64_t lda, const float* bp, int64_t pstride, int64_t kc, float* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate) {
  switch (mr) {
    case 4: return kernel_rows_avx512<kPacked, 4, kCols>(a, lda, bp, pstride, kc, c, ldc, mr, nr, accumulate);
    case 5: return kernel_rows_avx512<kPacked, 5, kCols>(a, lda, bp, pstride, kc, c, ldc, mr, nr, accumulate);
    case 6: return kernel_rows_avx512<kPacked, 6, kCols>(a, lda, bp, pstride, kc, c, ldc, mr, nr, accumulate);
    default: return kernel_rows_avx512<kPacked, 3, kCols>(a, lda, bp, pstride, kc, c, ldc, mr, nr, accumulate);
  }
}

// One block of up to 6 rows by the panels [pn, pn_end) (at most 2) of B, K steps [kb, kb + kc), with the
// variant for `isa` (AVX2 or better): AVX-512 takes both panels in one call, AVX2 one at a time. bp: B's
// packed data; K its depth; N its width; the block's A at a (kPacked: a panel; else rows lda apart).
template <bool kPacked>
void block_kernel(cpu::Isa isa, const float* a, int64_t lda, const float* bp, int64_t K, int64_t N, int64_t kb,
                  int64_t kc, int64_t pn, int64_t pn_end, float* c, int64_t ldc, int64_t mr, bool accumulate) {
  if (isa >= cpu::Isa::kAvx512) {
    while (pn < pn_end) {
      const int64_t take = pn_end - pn >= 4 ? 4 : pn_end - pn >= 2 ? 2 : 1;
      const int64_t nr = std::min(take * kNR, N - pn * kNR);
      const float* b0 = bp + (pn * K + kb) * kNR;
      float* cp = c + pn * kNR;
      if (take == 4) kernel_6xn_avx512<kPacked, 4>(a, lda, b0, K * kNR, kc, cp, ldc, mr, nr, accumulate);
      if (take == 2) kernel_6xn_avx512<kPacked, 2>(a, lda, b0, K * kNR, kc, cp, ldc, mr, nr, accumulate);
      if (take == 1) kernel_6xn_avx512<kPacked, 1>(a, lda, b0, 0, kc, cp, ldc, mr, nr, accumulate);
      pn += take;
    }
    return;
  }
  for (; pn < pn_end; ++pn) {
    const int64_t nr = std::min(kNR, N - pn * kNR);
    kernel_6x16<kPacked>(a, lda, bp + (pn * K + kb) * kNR, kc, c + pn * kNR, ldc, mr, nr, accumulate);
  }
}

// How M rows are split into the micro-kernel's row blocks: blocks of 6, and at the end blocks of 3 to 5 rows
// instead of one of 1 or 2 (M = 128: 20 of 6, then 4 and 4, not 21 of 6 and 2). A K step of a block of r rows
// takes about max(r, 4) cycles: its 2r accumulator chains each wait for the previous FMA (4 cycles), so 1 or
// 2 rows cost as much time as 4. Each block's A panel keeps the 6-row layout (rows past the block zero).
struct RowBlocks {
  int64_t M, full, count;
  explicit RowBlocks(int64_t m) : M(m) {
    const int64_t n6 = m / kMR, rem = m % kMR;
    full = (rem == 1 || rem == 2) && n6 > 0 ? n6 - 1 : n6;
    const int64_t left = m - full * kMR;  // 0, 3, 4 or 5; 7 (4 + 3) or 8 (4 + 4); 1 or 2 when M is
    count = full + (left == 0 ? 0 : left <= kMR ? 1 : 2);
  }
  // The first row of block ib (M for ib = count).
  int64_t start(int64_t ib) const { return ib >= count ? M : ib <= full ? ib * kMR : full * kMR + 4; }
  int64_t rows(int64_t ib) const { return start(ib + 1) - start(ib); }
};

// tile[6][16] = acc + bias16[16], then max(0, .) when relu.
__attribute__((target("avx2"), always_inline)) inline void finish_tile(const __m256 (&acc)[kMR][2], const float* bias16,
                                                                       bool relu, float* tile) {
  const __m256 b0 = _mm256_loadu_ps(bias16), b1 = _mm256_loadu_ps(bias16 + 8);
  const __m256 lo = _mm256_set1_ps(relu ? 0.0f : -INFINITY);
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    _mm256_store_ps(tile + r * kNR, _mm256_max_ps(lo, _mm256_add_ps(acc[r][0], b0)));
    _mm256_store_ps(tile + r * kNR + 8, _mm256_max_ps(lo, _mm256_add_ps(acc[r][1], b1)));
  }
}

// tile[6][16] = the 6 x K implicit im2col matrix of six output pixels @ B panel + bias, ReLU'd when relu, read
// in place: element (r, k) is corner[taps[k] + r * rs] (a tile of one output row, windows inside the input, rs
// the stride along W). Bias and ReLU are applied in registers.
__attribute__((target("avx2,fma"))) void kernel_conv_6x16(const float* corner, int64_t rs, const int64_t* taps,
                                                          const float* bp, int64_t K, const float* bias16, bool relu,
                                                          float* tile) {
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (auto& row : acc) row[0] = row[1] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    const float* a = corner + taps[k];
    const float* const rows[kMR] = {a, a + rs, a + 2 * rs, a + 3 * rs, a + 4 * rs, a + 5 * rs};
    fma_step<kMR>(acc, rows, _mm256_loadu_ps(bp), _mm256_loadu_ps(bp + 8));
    bp += kNR;
  }
  finish_tile(acc, bias16, relu, tile);
}

// finish_tile on AVX-512: tile[6][32] = acc + bias32 (32 floats, zero past M), ReLU'd when relu.
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma"), always_inline)) inline void finish_tile_avx512(
    const __m512 (&acc)[kMR][2], const float* bias32, bool relu, float* tile) {
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      __m512 v = _mm512_add_ps(acc[r][j], _mm512_loadu_ps(bias32 + j * kNR));
      if (relu) v = _mm512_maskz_max_ps(0xffff, v, zero);
      _mm512_storeu_ps(tile + r * 2 * kNR + j * kNR, v);
    }
  }
}

// kernel_conv_6x16 on AVX-512: six pixels by two weight panels (32 output channels; bp1 null: one panel, 16), 12
// accumulators, the tile [6][32] finished by finish_tile_avx512.
template <bool kTwo>
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma"))) void kernel_conv_6x32_avx512(
    const float* corner, int64_t rs, const int64_t* taps, const float* bp0, const float* bp1, int64_t K,
    const float* bias32, bool relu, float* tile) {
  __m512 acc[kMR][2];
#pragma GCC unroll 6
  for (auto& row : acc) row[0] = row[1] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    const float* a = corner + taps[k];
    const __m512 b0 = _mm512_loadu_ps(bp0 + k * kNR);
    const __m512 b1 = kTwo ? _mm512_loadu_ps(bp1 + k * kNR) : b0;
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * rs]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      if (kTwo) acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  finish_tile_avx512(acc, bias32, relu, tile);
}

// A [6][32] tile the packed AVX-512 micro-kernel stored, finished as above.
__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma"))) void add_bias_6x32_avx512(float* tile,
                                                                                            const float* bias32,
                                                                                            bool relu) {
  __m512 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    acc[r][0] = _mm512_loadu_ps(tile + r * 2 * kNR);
    acc[r][1] = _mm512_loadu_ps(tile + r * 2 * kNR + kNR);
  }
  finish_tile_avx512(acc, bias32, relu, tile);
}

// finish_tile on a tile the packed micro-kernel stored, read back with loads as wide as its stores (narrower
// ones would wait for the stores to retire).
__attribute__((target("avx2"))) void add_bias_6x16(float* tile, const float* bias16, bool relu) {
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) {
    acc[r][0] = _mm256_load_ps(tile + r * kNR);
    acc[r][1] = _mm256_load_ps(tile + r * kNR + 8);
  }
  finish_tile(acc, bias16, relu, tile);
}

// A full tile into a blocked-8 y: lanes 0-7 of each row to one channel block, 8-15 to the next (`next` floats on).
__attribute__((target("avx2"))) void store_tile_blocked8(const float* tile, float* y, int64_t next) {
  for (int64_t r = 0; r < kMR; ++r) {
    _mm256_storeu_ps(y + r * 8, _mm256_load_ps(tile + r * kNR));
    _mm256_storeu_ps(y + next + r * 8, _mm256_load_ps(tile + r * kNR + 8));
  }
}

// Where pack_a_block puts the panel of row block `ib` for the K block starting at kb. The panels of one K block
// are contiguous, so the row blocks that share a weight block read A as one stream (the micro-kernel's prefetch
// runs on into the next panel), instead of jumping K floats between them.
int64_t packed_a_offset(int64_t kb, int64_t ib, int64_t blocks, int64_t K) {
  return kb * blocks * kMR + ib * std::min(kKC, K - kb) * kMR;
}

// In registers, r[j] = column j of the 8 x 8 block whose row i was r[i].
__attribute__((target("avx2"), always_inline)) inline void transpose8(__m256 (&r)[8]) {
  __m256 t[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  // t[0] = (0 0, 1 0, 0 1, 1 1 | 0 4, 1 4, 0 5, 1 5) as (row col), t[1] the same for cols 2, 3 | 6, 7.
  __m256 u[8];
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    for (int h = 0; h < 2; ++h) {
      u[i + 2 * h] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], 0x44);
      u[i + 2 * h + 1] = _mm256_shuffle_ps(t[i + h], t[i + 2 + h], 0xEE);
    }
  }
  // u[0] = col 0 of rows i..i+3 | col 4 of them (i = 0: rows 0-3, u[4..7] rows 4-7), u[1] cols 1 | 5, u[2] 2 | 6,
  // u[3] 3 | 7.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

// dst[j * ldd + i] = src[i * lds + j] for i, j < 8.
__attribute__((target("avx2"))) void transpose_8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  transpose8(r);
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + j * ldd, r[j]);
}

// Eight K steps of six rows into a panel: out[k * 6 + r] = rows[r][k] for k < 8 (transpose8 with rows 6 and 7
// zero; each K step is stored as 4 + 2 floats).
__attribute__((target("avx2"), always_inline)) inline void pack_8x6(const float* const (&rows)[kMR], float* out) {
  __m256 r[8];
#pragma GCC unroll 6
  for (int i = 0; i < kMR; ++i) r[i] = _mm256_loadu_ps(rows[i]);
  r[6] = r[7] = _mm256_setzero_ps();
  transpose8(r);
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {
    _mm_storeu_ps(out + k * kMR, _mm256_castps256_ps128(r[k]));
    _mm_storel_pi(reinterpret_cast<__m64*>(out + k * kMR + 4), _mm256_extractf128_ps(r[k], 1));
  }
}

// Row block `ib` of A [M, K] (rows lda apart) into interleaved panels ap[k * 6 + r], zero past the block's rows:
// one panel per K block of kKC, at packed_a_offset(kb, ib, blocks, K). Eight K steps at a time through pack_8x6
// when the block has six rows.
__attribute__((target("avx2"))) void pack_a_block(const float* a, const RowBlocks& rb, int64_t K, int64_t lda,
                                                  int64_t ib, float* ap) {
  const int64_t r0 = rb.start(ib), rows = rb.rows(ib), blocks = rb.count;
  const float* src = a + r0 * lda;
  for (int64_t kb = 0; kb < K; kb += kKC) {
    float* out = ap + packed_a_offset(kb, ib, blocks, K);
    const int64_t kend = std::min(K, kb + kKC);
    int64_t k = kb;
    if (rows == kMR) {
      for (; k + 8 <= kend; k += 8, out += 8 * kMR) {
        const float* const rp[kMR] = {src + k,           src + lda + k,     src + 2 * lda + k,
                                      src + 3 * lda + k, src + 4 * lda + k, src + 5 * lda + k};
        pack_8x6(rp, out);
      }
    }
    for (; k < kend; ++k, out += kMR) {
      for (int64_t r = 0; r < rows; ++r) out[r] = src[r * lda + k];
      for (int64_t r = rows; r < kMR; ++r) out[r] = 0.0f;
    }
  }
}

// A thread's buffer (kept between calls, so the steady state does not allocate; a very large one is given back).
// Each tag is a separate buffer: packed A panels or im2col tiles (0), a GEMM's C before its scatter (1).
template <int kTag>
class ThreadBuffer {
 public:
  explicit ThreadBuffer(size_t floats) {
    if (buffer().size() < floats) buffer().resize(floats);
    data_ = buffer().data();
  }
  ~ThreadBuffer() {
    if (buffer().size() > (size_t{16} << 20)) std::vector<float>().swap(buffer());
  }
  ThreadBuffer(const ThreadBuffer&) = delete;
  ThreadBuffer& operator=(const ThreadBuffer&) = delete;
  float* data() const { return data_; }

 private:
  static std::vector<float>& buffer() {
    thread_local std::vector<float> b;
    return b;
  }
  float* data_;
};
using PackedA = ThreadBuffer<0>;

// c[i * ldc + j] += bias[j] for i < rows, j < cols.
__attribute__((target("avx2"))) void add_bias(float* c, int64_t rows, int64_t cols, int64_t ldc, const float* bias) {
  for (int64_t i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      _mm256_storeu_ps(ci + j, _mm256_add_ps(_mm256_loadu_ps(ci + j), _mm256_loadu_ps(bias + j)));
    for (; j < cols; ++j) ci[j] += bias[j];
  }
}

// What gemm_tasks calls on each task's finished block of c: rows [r0, r1) by columns [n0, n1).
using Finish = std::function<void(int64_t r0, int64_t r1, int64_t n0, int64_t n1)>;

// c[M, N] (rows N apart) = A @ B, A in panels at `ap` (pack_a_block's layout) or, when ap is null, in place at a
// (rows lda apart). Tasks of up to kRowBlocksPerTask row blocks by kPanelsPerTask weight panels, each over the
// whole of K in a fixed order; `finish` runs on each task's block while it is in cache.
void gemm_tasks(cpu::Isa isa, const float* a, int64_t lda, const float* ap, const RowBlocks& rb, const PackedB& b,
                float* c, const ParallelFor& parallel_for, const Finish& finish) {
  const int64_t K = b.K, N = b.N;
  const int64_t blocks = rb.count, panels = (N + kNR - 1) / kNR;
  const int64_t row_tasks = (blocks + kRowBlocksPerTask - 1) / kRowBlocksPerTask;
  const int64_t per_task = isa >= cpu::Isa::kAvx512 ? kPanelsPerTaskAvx512 : kPanelsPerTask;
  const int64_t panel_tasks = (panels + per_task - 1) / per_task;
  // Weight panels per micro-kernel call: AVX-512 takes a task's two panels at once.
  const int64_t step = isa >= cpu::Isa::kAvx512 ? per_task : 1;
  parallel_for(row_tasks * panel_tasks, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ib0 = (t / panel_tasks) * kRowBlocksPerTask, ib1 = std::min(blocks, ib0 + kRowBlocksPerTask);
      const int64_t p0 = (t % panel_tasks) * per_task, p1 = std::min(panels, p0 + per_task);
      for (int64_t kb = 0; kb < K; kb += kKC) {
        const int64_t kc = std::min(kKC, K - kb);
        for (int64_t pn = p0; pn < p1; pn += step) {
          const int64_t pe = std::min(p1, pn + step);
          // With enough row blocks, the next K block of weights (the task's next panels at this K block, or its
          // first ones at the next) is fetched from memory while this one is in use: each row block prefetches a
          // share of its cache lines (a line is one K step of a panel).
          const float* next = nullptr;
          int64_t next_steps = 0, next_panels = 0;
          if (ib1 - ib0 >= kPrefetchNextMinBlocks) {
            const bool same_k = pe < p1;
            if (same_k || kb + kKC < K) {
              next = same_k ? b.data.get() + (pe * K + kb) * kNR : b.data.get() + (p0 * K + kb + kKC) * kNR;
              next_steps = std::min(kKC, K - (same_k ? kb : kb + kKC));
              next_panels = same_k ? std::min(p1, pe + step) - pe : std::min(p1, p0 + step) - p0;
            }
          }
          const int64_t next_lines = next_steps * next_panels;
          const int64_t share = (next_lines + (ib1 - ib0) - 1) / (ib1 - ib0);
          for (int64_t ib = ib0; ib < ib1; ++ib) {
            for (int64_t l = (ib - ib0) * share; l < std::min(next_lines, (ib - ib0 + 1) * share); ++l) {
              _mm_prefetch(reinterpret_cast<const char*>(next + (l / next_steps) * K * kNR + (l % next_steps) * kNR),
                           _MM_HINT_T0);
            }
            const int64_t r0 = rb.start(ib), mr = rb.rows(ib);
            float* cp = c + r0 * N;
            if (ap) {
              block_kernel<true>(isa, ap + packed_a_offset(kb, ib, blocks, K), 0, b.data.get(), K, N, kb, kc, pn, pe,
                                 cp, N, mr, kb > 0);
            } else {
              block_kernel<false>(isa, a + r0 * lda + kb, lda, b.data.get(), K, N, kb, kc, pn, pe, cp, N, mr, kb > 0);
            }
          }
        }
      }
      finish(rb.start(ib0), rb.start(ib1), p0 * kNR, std::min(N, p1 * kNR));
    }
  });
}

}  // namespace

int64_t packed_b_floats(int64_t K, int64_t N) { return std::max<int64_t>(1, (N + kNR - 1) / kNR * K * kNR); }

void pack_b_into(const float* b, int64_t K, int64_t N, int64_t stride_k, int64_t stride_n, float* out) {
  const int64_t panels = (N + kNR - 1) / kNR;
  for (int64_t pn = 0; pn < panels; ++pn) {
    const int64_t n0 = pn * kNR, cols = std::min(kNR, N - n0);
    int64_t k0 = 0;
    if (stride_k == 1 && cols == kNR) {
      // B transposed (each column contiguous along K, keys in attention): 8 x 8 transposes.
      for (; k0 + 8 <= K; k0 += 8) {
        for (int64_t half = 0; half < kNR; half += 8)
          transpose_8x8(b + (n0 + half) * stride_n + k0, stride_n, out + (pn * K + k0) * kNR + half, kNR);
      }
    }
    for (int64_t k = k0; k < K; ++k) {
      float* o = out + (pn * K + k) * kNR;
      const float* src = b + k * stride_k + n0 * stride_n;
      if (stride_n == 1 && cols == kNR) {
        std::memcpy(o, src, kNR * sizeof(float));
        continue;
      }
      for (int64_t j = 0; j < kNR; ++j) o[j] = j < cols ? src[j * stride_n] : 0.0f;
    }
  }
}

std::shared_ptr<PackedB> allocate_packed_b(int64_t K, int64_t N) {
  auto p = std::make_shared<PackedB>();
  p->K = K;
  p->N = N;
  const size_t bytes = static_cast<size_t>(packed_b_floats(K, N)) * sizeof(float);
  void* mem = allocate_streamed(bytes);  // on huge pages when large: the weights are streamed on every run
  if (!mem) return nullptr;
  p->data = std::unique_ptr<float, void (*)(void*)>(static_cast<float*>(mem), std::free);
  return p;
}

std::shared_ptr<PackedB> pack_b(const float* b, int64_t K, int64_t N, bool trans_b) {
  std::shared_ptr<PackedB> p = allocate_packed_b(K, N);
  if (p) pack_b_into(b, K, N, trans_b ? 1 : N, trans_b ? K : 1, p->data.get());
  return p;
}

void gemm_serial(cpu::Isa isa, const float* a, int64_t M, int64_t lda, const float* bp, int64_t K, int64_t N, float* c,
                 int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, 0.0f);
    return;
  }
  const int64_t panels = (N + kNR - 1) / kNR;
  const int64_t step = isa >= cpu::Isa::kAvx512 ? kPanelsPerTaskAvx512 : 1;
  const RowBlocks rb(M);
  for (int64_t kb = 0; kb < K; kb += kKC) {
    const int64_t kc = std::min(kKC, K - kb);
    for (int64_t pn = 0; pn < panels; pn += step) {
      for (int64_t ib = 0; ib < rb.count; ++ib) {
        const int64_t i = rb.start(ib);
        block_kernel<false>(isa, a + i * lda + kb, lda, bp, K, N, kb, kc, pn, std::min(panels, pn + step), c + i * ldc,
                            ldc, rb.rows(ib), kb > 0);
      }
    }
  }
}

void gemm(cpu::Isa isa, const float* a, int64_t M, int64_t lda, const PackedB& b, const float* bias, float* c,
          const ParallelFor& parallel_for, const Epilogue* epilogue) {
  const int64_t K = b.K, N = b.N;
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n) c[i * N + n] = bias ? bias[n] : 0.0f;
    if (epilogue) (*epilogue)(c, M, N, N);
    return;
  }
  const RowBlocks rb(M);
  const int64_t panels = (N + kNR - 1) / kNR;
  const bool pack = panels > kPackAMinPanels;
  const PackedA ap(pack ? static_cast<size_t>(rb.count * K * kMR) : 0);
  if (pack) {
    parallel_for(rb.count, [&](int64_t b0, int64_t b1) {
      for (int64_t ib = b0; ib < b1; ++ib) pack_a_block(a, rb, K, lda, ib, ap.data());
    });
  }
  gemm_tasks(isa, a, lda, pack ? ap.data() : nullptr, rb, b, c, parallel_for,
             [&](int64_t r0, int64_t r1, int64_t n0, int64_t n1) {
               if (bias) add_bias(c + r0 * N + n0, r1 - r0, n1 - n0, N, bias + n0);
               if (epilogue) (*epilogue)(c + r0 * N + n0, r1 - r0, n1 - n0, N);
             });
}

void conv2d_nchw_to_blocked(cpu::Isa isa, const float* x, const Conv2dGeometry& g, const PackedB& w, const float* bias,
                            int64_t block, float* y, bool relu,
                            const std::function<void(float* tile, int64_t n)>* epilogue,
                            const ParallelFor& parallel_for) {
  const int64_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, CB = (g.M + block - 1) / block;
  const int64_t tiles = (P + kMR - 1) / kMR, panels = (g.M + kNR - 1) / kNR;
  // Offset of tap k = (c, i, j) from a window's corner in one image: the interior tiles read the input in place.
  std::vector<int64_t> taps(static_cast<size_t>(K));
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.KH; ++i)
      for (int64_t j = 0; j < g.KW; ++j)
        taps[static_cast<size_t>((c * g.KH + i) * g.KW + j)] = c * g.H * g.W + i * g.dil_h * g.W + j * g.dil_w;
  // AVX-512 with blocks of 16: tiles of 6 pixels by two panels (32 channels), else by one (16).
  const bool wide = isa >= cpu::Isa::kAvx512 && block == 16;
  const int64_t width = wide ? 2 * kNR : kNR;  // a tile row's floats
  std::vector<float> padded_bias(static_cast<size_t>((panels + 1) * kNR), 0.0f);
  if (bias) std::copy(bias, bias + g.M, padded_bias.begin());
  // Tiles go in groups, so that one weight panel (K x 16) is loaded into L1 once per group, not once per tile.
  constexpr int64_t kGroup = 8;
  parallel_for(g.N * tiles, [&](int64_t t0, int64_t t1) {
    const PackedA ap(static_cast<size_t>(kGroup * K * kMR));
    const float* corner[kGroup];  // an interior tile's first window corner; nullptr: its im2col is in ap
    alignas(64) float tile[kMR * 2 * kNR] = {};
    for (int64_t tg = t0; tg < t1; tg += kGroup) {
      const int64_t count = std::min(kGroup, t1 - tg);
      for (int64_t q = 0; q < count; ++q) {
        const int64_t t = tg + q;
        const int64_t n = t / tiles, p0 = (t % tiles) * kMR, rows = std::min(kMR, P - p0);
        const float* xn = x + n * g.C * g.H * g.W;
        const int64_t oh0 = p0 / g.OW, ow0 = p0 % g.OW;
        const int64_t ih0 = oh0 * g.stride_h - g.pad_t, iw0 = ow0 * g.stride_w - g.pad_l;
        // Six pixels of one output row whose windows lie inside the input: no copy, the kernel reads x.
        corner[q] = nullptr;
        if (rows == kMR && ow0 + kMR <= g.OW && ih0 >= 0 && ih0 + (g.KH - 1) * g.dil_h < g.H && iw0 >= 0 &&
            iw0 + (kMR - 1) * g.stride_w + (g.KW - 1) * g.dil_w < g.W) {
          corner[q] = xn + ih0 * g.W + iw0;
          continue;
        }
        // Otherwise the im2col of the tile, six pixels interleaved: ap[k * 6 + r] for pixel p0 + r, zero padding.
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
              for (int64_t r = 0; r < kMR; ++r) {
                const int64_t h = ohs[r] * g.stride_h - g.pad_t + i * g.dil_h;
                const int64_t w2 = ows[r] * g.stride_w - g.pad_l + j * g.dil_w;
                dst[r] = r < rows && h >= 0 && h < g.H && w2 >= 0 && w2 < g.W ? xc[h * g.W + w2] : 0.0f;
              }
            }
          }
        }
      }
      for (int64_t pn = 0; pn < panels; pn += wide ? 2 : 1) {
        const int64_t m0 = pn * kNR;
        const float* bp = w.data.get() + pn * K * kNR;
        const bool two = wide && pn + 1 < panels;
        const int64_t cols = two ? 2 * kNR : kNR;  // the tile's columns that hold channels
        for (int64_t q = 0; q < count; ++q) {
          const int64_t t = tg + q;
          const int64_t n = t / tiles, p0 = (t % tiles) * kMR, rows = std::min(kMR, P - p0);
          const float* b16 = padded_bias.data() + m0;
          if (wide && corner[q]) {
            if (two) {
              kernel_conv_6x32_avx512<true>(corner[q], g.stride_w, taps.data(), bp, bp + K * kNR, K, b16, relu, tile);
            } else {
              kernel_conv_6x32_avx512<false>(corner[q], g.stride_w, taps.data(), bp, nullptr, K, b16, relu, tile);
            }
          } else if (wide) {
            if (two)
              kernel_6xn_avx512<true, 2>(ap.data() + q * K * kMR, 0, bp, K * kNR, K, tile, width, kMR, cols, false);
            if (!two) kernel_6xn_avx512<true, 1>(ap.data() + q * K * kMR, 0, bp, 0, K, tile, width, kMR, cols, false);
            add_bias_6x32_avx512(tile, b16, relu);
          } else if (corner[q]) {
            kernel_conv_6x16(corner[q], g.stride_w, taps.data(), bp, K, b16, relu, tile);
          } else {
            kernel_6x16<true>(ap.data() + q * K * kMR, 0, bp, K, tile, kNR, kMR, kNR, false);
            add_bias_6x16(tile, b16, relu);
          }
          if (epilogue) (*epilogue)(tile, rows * width);
          if (!wide && block == 8 && rows == kMR && m0 + kNR <= g.M) {
            store_tile_blocked8(tile, y + ((n * CB + m0 / 8) * P + p0) * 8, P * 8);
            continue;
          }
          // Scatter in runs of lanes that are contiguous in y (8 or 16 channels), padding lanes zero.
          const int64_t run = std::min(block, kNR);
          for (int64_t jj = 0; jj < cols && m0 + jj < CB * block; jj += run) {
            const int64_t m = m0 + jj;
            float* dst = y + ((n * CB + m / block) * P + p0) * block + m % block;
            const int64_t valid = std::max<int64_t>(0, std::min(run, g.M - m));
            for (int64_t r = 0; r < rows; ++r) {
              const float* src = tile + r * width + jj;
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

std::shared_ptr<PackedB> pack_conv_weights_blocked(const float* w, int64_t M, int64_t C, int64_t KH, int64_t KW,
                                                   int64_t block) {
  const int64_t CB = (C + block - 1) / block, K = CB * KH * KW * block;
  // W [M, C, KH, KW] as [M, K] in the order of conv2d_blocked's im2col, k = ((cb * KH + i) * KW + j) * block +
  // lane for channel cb * block + lane (zero past C).
  std::vector<float> t(static_cast<size_t>(M * K), 0.0f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < KH; ++i)
        for (int64_t j = 0; j < KW; ++j)
          t[static_cast<size_t>(m * K + ((c / block * KH + i) * KW + j) * block + c % block)] =
              w[((m * C + c) * KH + i) * KW + j];
  return pack_b(t.data(), K, M, true);
}

namespace {

// Row block `ib` (its output pixels) of conv2d_blocked's im2col, packed into A panels at ap: each (cb, i, j) of
// six pixels is six `block`-channel vectors (zero for padding and pixels past P), each 8 lanes of them transposed
// into eight K steps of the panel.
__attribute__((target("avx2"))) void im2col_blocked(const float* x, const Conv2dGeometry& g, int64_t K, int64_t block,
                                                    const RowBlocks& rb, int64_t ib, float* ap) {
  alignas(32) static const float kZeros[16] = {};
  const int64_t CB = (g.C + block - 1) / block, OHW = g.OH * g.OW, blocks = rb.count;
  const int64_t p0 = rb.start(ib), rows = rb.rows(ib);
  const float* image[kMR];
  int64_t ih0[kMR], iw0[kMR];
  for (int64_t r = 0; r < kMR; ++r) {
    const int64_t p = p0 + std::min(r, rows - 1), hw = p % OHW;
    image[r] = r < rows ? x + p / OHW * CB * g.H * g.W * block : nullptr;
    ih0[r] = hw / g.OW * g.stride_h - g.pad_t;
    iw0[r] = hw % g.OW * g.stride_w - g.pad_l;
  }
  for (int64_t cb = 0; cb < CB; ++cb) {
    for (int64_t i = 0; i < g.KH; ++i) {
      for (int64_t j = 0; j < g.KW; ++j) {
        const float* rows[kMR];
        for (int64_t r = 0; r < kMR; ++r) {
          const int64_t h = ih0[r] + i * g.dil_h, v = iw0[r] + j * g.dil_w;
          rows[r] = image[r] && h >= 0 && h < g.H && v >= 0 && v < g.W ? image[r] + ((cb * g.H + h) * g.W + v) * block
                                                                       : kZeros;
        }
        for (int64_t half = 0; half < block; half += 8) {
          // Eight K steps never straddle a K block: kKC and the offsets are multiples of 8.
          const int64_t k = ((cb * g.KH + i) * g.KW + j) * block + half, kb = k / kKC * kKC;
          const float* const lanes[kMR] = {rows[0] + half, rows[1] + half, rows[2] + half,
                                           rows[3] + half, rows[4] + half, rows[5] + half};
          pack_8x6(lanes, ap + packed_a_offset(kb, ib, blocks, K) + (k - kb) * kMR);
        }
      }
    }
  }
}

// Pixels [r0, r1) by channels [m0, m1) (whole runs of 8) of c [P, M] into y [N, M/B, OH, OW, B] for B = block:
// plus bias and z (either may be null), clamped to [lo, hi].
__attribute__((target("avx2"))) void scatter_blocked(const float* c, int64_t M, int64_t OHW, int64_t block, int64_t r0,
                                                     int64_t r1, int64_t m0, int64_t m1, const float* bias,
                                                     const float* z, float lo, float hi, float* y) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const int64_t MB = M / block;
  for (int64_t m = m0; m < m1; m += 8) {
    const __m256 b = bias ? _mm256_loadu_ps(bias + m) : _mm256_setzero_ps();
    for (int64_t p = r0; p < r1; ++p) {
      const int64_t at = ((p / OHW * MB + m / block) * OHW + p % OHW) * block + m % block;
      __m256 v = _mm256_add_ps(_mm256_loadu_ps(c + p * M + m), b);
      if (z) v = _mm256_add_ps(v, _mm256_loadu_ps(z + at));
      _mm256_storeu_ps(y + at, _mm256_min_ps(vhi, _mm256_max_ps(vlo, v)));
    }
  }
}

}  // namespace

void conv2d_blocked(cpu::Isa isa, int64_t block, const float* x, const Conv2dGeometry& g, const PackedB& w,
                    const float* bias, const float* z, float lo, float hi, float* y, const ParallelFor& parallel_for) {
  const int64_t K = w.K, M = w.N, OHW = g.OH * g.OW, P = g.N * OHW;
  if (P <= 0 || M <= 0) return;
  const RowBlocks rb(P);
  const PackedA ap(static_cast<size_t>(rb.count * K * kMR));
  parallel_for(rb.count, [&](int64_t b0, int64_t b1) {
    for (int64_t ib = b0; ib < b1; ++ib) im2col_blocked(x, g, K, block, rb, ib, ap.data());
  });
  // C [P, M], pixels by channels, scattered into y by each task while it is in cache.
  const ThreadBuffer<1> c(static_cast<size_t>(P * M));
  gemm_tasks(isa, nullptr, 0, ap.data(), rb, w, c.data(), parallel_for,
             [&](int64_t r0, int64_t r1, int64_t n0, int64_t n1) {
               scatter_blocked(c.data(), M, OHW, block, r0, r1, n0, n1, bias, z, lo, hi, y);
             });
}

}  // namespace kiln::sgemm
