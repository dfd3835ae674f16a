// Prepared weights to and from plain arrays (kernels/prepared.h), for the types the fast kernels keep in the shared
// cache.
#include "kernels/prepared.h"

#include <algorithm>

#include "kernels/dnnl/dnnl_common.h"
#include "kernels/x86/gemv_bf16.h"
#include "kernels/x86/pointwise.h"
#include "kernels/x86/sgemm.h"
#include "kernels/x86/winograd.h"

namespace kiln::cpu {
namespace {

void no_free(void*) {}

// A float array that `owner` keeps alive, in the unique_ptr the prepared types hold (freed with them: a no-op).
std::unique_ptr<float, void (*)(void*)> view(const PreparedArray& a) { return {const_cast<float*>(a.data), no_free}; }

Status mismatch(CacheEntry entry, const std::string& what) {
  return invalid_model("prepared weights of kind " + std::to_string(static_cast<int64_t>(entry)) + ": " + what);
}

StatusOr<std::shared_ptr<sgemm::PackedB>> packed_b(CacheEntry entry, int64_t K, int64_t N, const PreparedArray& a) {
  if (K < 0 || N < 0 || K > (int64_t{1} << 31) || N > (int64_t{1} << 31) || a.count != sgemm::packed_b_floats(K, N)) {
    return mismatch(entry, "a packed [" + std::to_string(K) + ", " + std::to_string(N) + "] matrix of " +
                               std::to_string(a.count) + " floats");
  }
  auto p = std::make_shared<sgemm::PackedB>();
  p->K = K;
  p->N = N;
  p->data = view(a);
  return p;
}

}  // namespace

std::optional<ExportedWeights> export_prepared(const CacheKey& key, const std::shared_ptr<void>& value) {
  if (!value || key.fields.empty()) return std::nullopt;
  ExportedWeights out;
  out.entry = key.entry;
  out.fields.assign(key.fields.begin() + 1, key.fields.end());
  switch (key.entry) {
    case CacheEntry::kSgemmB:
    case CacheEntry::kConvIm2colWeights:
    case CacheEntry::kConvGemmWeights: {
      const auto& p = *static_cast<const sgemm::PackedB*>(value.get());
      out.meta = {p.K, p.N};
      out.arrays = {{p.data.get(), sgemm::packed_b_floats(p.K, p.N)}};
      return out;
    }
    case CacheEntry::kWinogradWeights: {
      // Positions whose matrices are shared (equal rows of G) are written once: meta ends with, for each position,
      // the first position holding the same matrix.
      const auto& w = *static_cast<const winograd::Weights*>(value.get());
      out.meta = {w.C, w.M, w.tile, w.stride, static_cast<int64_t>(w.u.size())};
      for (size_t xi = 0; xi < w.u.size(); ++xi) {
        if (!w.u[xi]) return std::nullopt;
        size_t first = 0;
        while (w.u[first] != w.u[xi]) ++first;
        out.meta.push_back(static_cast<int64_t>(first));
        if (first == xi) out.arrays.push_back({w.u[xi]->data.get(), sgemm::packed_b_floats(w.u[xi]->K, w.u[xi]->N)});
      }
      return out;
    }
    case CacheEntry::kDnnlMatMulWeights:
    case CacheEntry::kDnnlConvWeights: {
      // oneDNN's layout is the key's (its size and a hash of its descriptor, the last two fields).
      const auto& w = *static_cast<const dnnl_kernels::PackedWeights*>(value.get());
      if (w.bytes % sizeof(float) != 0) return std::nullopt;
      out.meta = {static_cast<int64_t>(w.bytes)};
      out.arrays = {{static_cast<const float*>(w.buffer.get()), static_cast<int64_t>(w.bytes / sizeof(float))}};
      return out;
    }
    case CacheEntry::kPointwiseWeights:
    case CacheEntry::kDirectConvWeights: {
      const auto& w = *static_cast<const pointwise::Weights*>(value.get());
      out.meta = {w.M, w.C, w.Mp, w.Cp, w.block};
      out.arrays = {{w.data.get(), w.Mp * w.Cp}};
      return out;
    }
    case CacheEntry::kGemvBf16Weights: {
      // 32-bit words (bfloat16 pairs) carried as a float array: bytes, not values.
      const auto& p = *static_cast<const gemv_bf16::Packed*>(value.get());
      out.meta = {p.K, p.N};
      out.arrays = {{reinterpret_cast<const float*>(p.data.get()), gemv_bf16::packed_words(p.K, p.N)}};
      return out;
    }
    default: return std::nullopt;
  }
}

namespace {

// Whether the sizes in `meta` are those a kernel that looks the entry up by `fields` expects.
bool meta_fits_key(CacheEntry entry, const std::vector<int64_t>& fields, const std::vector<int64_t>& meta) {
  auto at = [](const std::vector<int64_t>& v, size_t i) { return i < v.size() ? v[i] : -1; };
  switch (entry) {
    case CacheEntry::kSgemmB:             // fields {K, N, trans_b}, meta {K, N}
    case CacheEntry::kGemvBf16Weights:    // fields {K, N, trans_b}, meta {K, N}
    case CacheEntry::kConvIm2colWeights:  // fields {K, M}, meta {K, M}
      return at(meta, 0) == at(fields, 0) && at(meta, 1) == at(fields, 1);
    case CacheEntry::kConvGemmWeights: {  // fields {C, M, KH, KW, block}, meta {K, M}
      const int64_t C = at(fields, 0), KH = at(fields, 2), KW = at(fields, 3), block = at(fields, 4);
      if (C < 0 || KH < 0 || KW < 0 || block <= 0 || C > (1 << 24) || KH > 64 || KW > 64 || block > 64) return false;
      return at(meta, 0) == (C + block - 1) / block * KH * KW * block && at(meta, 1) == at(fields, 1);
    }
    case CacheEntry::kWinogradWeights:  // fields {C, M, tile, stride}, meta {C, M, tile, stride, ...}
      return fields.size() == 4 && meta.size() >= 4 && std::equal(fields.begin(), fields.end(), meta.begin());
    case CacheEntry::kDnnlMatMulWeights:  // fields {..., bytes, layout hash}, meta {bytes}
    case CacheEntry::kDnnlConvWeights:
      return fields.size() >= 2 && meta.size() == 1 && meta[0] == fields[fields.size() - 2] && meta[0] >= 0;
    case CacheEntry::kPointwiseWeights:   // fields {M, C, block}, meta {M, C, Mp, Cp, block}
    case CacheEntry::kDirectConvWeights:  // fields {M, K, block, blocked input}, meta {M, K, Mp, Kp, block}
      return at(meta, 0) == at(fields, 0) && at(meta, 1) == at(fields, 1) && at(meta, 4) == at(fields, 2);
    default: return false;
  }
}

}  // namespace

StatusOr<std::shared_ptr<void>> import_prepared(CacheEntry entry, const std::vector<int64_t>& fields,
                                                const std::vector<int64_t>& meta,
                                                const std::vector<PreparedArray>& arrays, std::shared_ptr<void> owner) {
  if (!meta_fits_key(entry, fields, meta)) return mismatch(entry, "its sizes disagree with its key");
  // The entry holds `owner` through its deleter, so the mapped arrays live as long as it does.
  auto keep = [owner](auto* p) {
    return std::shared_ptr<void>(p, [owner](void* q) { delete static_cast<decltype(p)>(q); });
  };
  switch (entry) {
    case CacheEntry::kSgemmB:
    case CacheEntry::kConvIm2colWeights:
    case CacheEntry::kConvGemmWeights: {
      if (meta.size() != 2 || arrays.size() != 1) return mismatch(entry, "expected 2 sizes and 1 array");
      KILN_ASSIGN_OR_RETURN(auto p, packed_b(entry, meta[0], meta[1], arrays[0]));
      return keep(new sgemm::PackedB(std::move(*p)));
    }
    case CacheEntry::kWinogradWeights: {
      if (meta.size() < 5) return mismatch(entry, "expected at least 5 sizes");
      const int64_t C = meta[0], M = meta[1], tile = meta[2], stride = meta[3], count = meta[4];
      const int64_t positions = stride == 1 ? (tile + 2) * (tile + 2) : 25;  // F(2x2) stride 2: 5 x 5
      if ((tile != 2 && tile != 4) || (stride != 1 && stride != 2) || (stride == 2 && tile != 2) ||
          count != positions || static_cast<int64_t>(meta.size()) != 5 + count) {
        return mismatch(entry, "a Winograd transform of tile " + std::to_string(tile) + ", stride " +
                                   std::to_string(stride) + " with " + std::to_string(count) + " positions");
      }
      auto w = std::make_unique<winograd::Weights>();
      w->C = C;
      w->M = M;
      w->tile = static_cast<int>(tile);
      w->stride = static_cast<int>(stride);
      size_t next = 0;
      for (int64_t xi = 0; xi < count; ++xi) {
        const int64_t first = meta[static_cast<size_t>(5 + xi)];
        if (first < 0 || first > xi || (first < xi && meta[static_cast<size_t>(5 + first)] != first)) {
          return mismatch(entry, "position " + std::to_string(xi) + " refers to position " + std::to_string(first));
        }
        if (first < xi) {
          w->u.push_back(w->u[static_cast<size_t>(first)]);
          continue;
        }
        if (next >= arrays.size()) return mismatch(entry, "fewer arrays than distinct positions");
        KILN_ASSIGN_OR_RETURN(auto u, packed_b(entry, C, M, arrays[next++]));
        w->u.push_back(std::move(u));
      }
      if (next != arrays.size()) return mismatch(entry, "more arrays than distinct positions");
      return keep(w.release());
    }
    case CacheEntry::kDnnlMatMulWeights:
    case CacheEntry::kDnnlConvWeights: {
      if (arrays.size() != 1 || arrays[0].count * static_cast<int64_t>(sizeof(float)) != meta[0]) {
        return mismatch(entry, "oneDNN weights of " + std::to_string(meta[0]) + " bytes in an array of " +
                                   std::to_string(arrays.size() == 1 ? arrays[0].count * 4 : -1) + " bytes");
      }
      auto w = std::make_unique<dnnl_kernels::PackedWeights>();
      w->buffer = std::shared_ptr<void>(owner, const_cast<float*>(arrays[0].data));  // views owner's memory
      w->bytes = static_cast<size_t>(meta[0]);
      return std::shared_ptr<void>(w.release(), [](void* q) { delete static_cast<dnnl_kernels::PackedWeights*>(q); });
    }
    case CacheEntry::kPointwiseWeights:
    case CacheEntry::kDirectConvWeights: {
      if (meta.size() != 5 || arrays.size() != 1) return mismatch(entry, "expected 5 sizes and 1 array");
      const int64_t M = meta[0], C = meta[1], Mp = meta[2], Cp = meta[3], block = meta[4];
      if ((block != 8 && block != 16) || M < 0 || C < 0 || Mp != (M + block - 1) / block * block ||
          Cp != (C + block - 1) / block * block || Mp > (int64_t{1} << 30) || Cp > (int64_t{1} << 30) ||
          arrays[0].count != Mp * Cp) {
        return mismatch(
            entry, std::string(entry == CacheEntry::kPointwiseWeights ? "blocked 1x1" : "direct convolution") +
                       " weights of " + std::to_string(arrays[0].count) + " floats for [" + std::to_string(M) + ", " +
                       std::to_string(C) + "] in blocks of " + std::to_string(block));
      }
      auto w = std::make_unique<pointwise::Weights>();
      w->M = M;
      w->C = C;
      w->Mp = Mp;
      w->Cp = Cp;
      w->block = block;
      w->data = view(arrays[0]);
      return keep(w.release());
    }
    case CacheEntry::kGemvBf16Weights: {
      if (meta.size() != 2 || arrays.size() != 1) return mismatch(entry, "expected 2 sizes and 1 array");
      const int64_t K = meta[0], N = meta[1];
      if (K < 0 || N < 0 || K > (int64_t{1} << 31) || N > (int64_t{1} << 31) ||
          arrays[0].count != gemv_bf16::packed_words(K, N)) {
        return mismatch(entry, "bfloat16 pairs of a [" + std::to_string(K) + ", " + std::to_string(N) + "] matrix in " +
                                   std::to_string(arrays[0].count) + " words");
      }
      auto p = std::make_unique<gemv_bf16::Packed>();
      p->K = K;
      p->N = N;
      p->data = {reinterpret_cast<uint32_t*>(const_cast<float*>(arrays[0].data)), no_free};
      return keep(p.release());
    }
    default: return mismatch(entry, "not a kind kiln can load");
  }
}

}  // namespace kiln::cpu
