// Text: StringNormalizer, TfIdfVectorizer. Everything computes in double and rounds to the output dtype.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel.h"
#include "kernels/ref/misc_util.h"

namespace kiln::cpu {

using namespace misc;

// Text

namespace {

std::string ascii_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string ascii_upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Status string_normalizer_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  if (x->dtype() != DType::kString) return ctx.unsupported_dtype(x->dtype());
  const bool two_d = x->rank() == 2;
  if (!(x->rank() == 1 || (two_d && x->dims()[0] == 1))) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) + " but [C] or [1, C] was expected");
  }
  const std::string action = ctx.attr_string("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER") {
    return ctx.error("attribute 'case_change_action' is '" + action + "' but NONE, LOWER or UPPER was expected");
  }
  const bool case_sensitive = ctx.attr_int("is_case_sensitive", 0) != 0;
  std::vector<std::string> stop;
  if (const auto* a = ctx.attr("stopwords"); a && a->type == ir::AttrType::kStrings) stop = a->strings;
  if (!case_sensitive) {
    for (auto& s : stop) s = ascii_lower(s);
  }
  std::vector<std::string> out;
  for (const auto& s : x->strings()) {
    const std::string key = case_sensitive ? s : ascii_lower(s);
    if (std::find(stop.begin(), stop.end(), key) != stop.end()) continue;
    out.push_back(action == "LOWER" ? ascii_lower(s) : action == "UPPER" ? ascii_upper(s) : s);
  }
  if (out.empty()) out.push_back("");
  const int64_t n = static_cast<int64_t>(out.size());
  ctx.set_output(0, Tensor::from_strings(two_d ? std::vector<int64_t>{1, n} : std::vector<int64_t>{n}, std::move(out)));
  return Status::ok();
}

Status tfidf_vectorizer_kernel(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const Tensor* x, ctx.required_input(0));
  const bool strings = x->dtype() == DType::kString;
  if (!strings && x->dtype() != DType::kInt32 && x->dtype() != DType::kInt64) {
    return ctx.unsupported_dtype(x->dtype());
  }
  if (x->rank() != 1 && x->rank() != 2) {
    return ctx.error("input has shape " + dims_to_string(x->dims()) + " but [C] or [N, C] was expected");
  }
  const int64_t min_n = ctx.attr_int("min_gram_length", 1), max_n = ctx.attr_int("max_gram_length", 1);
  const int64_t max_skip = ctx.attr_int("max_skip_count", 0);
  const std::string mode = ctx.attr_string("mode", "TF");
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF") {
    return ctx.error("attribute 'mode' is '" + mode + "' but TF, IDF or TFIDF was expected");
  }
  if (min_n < 1 || max_n < min_n || max_skip < 0) {
    return ctx.error("needs 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0");
  }
  const std::vector<int64_t> counts = ctx.attr_ints("ngram_counts");
  const std::vector<int64_t> indexes = ctx.attr_ints("ngram_indexes");
  const std::vector<float> weights = ctx.attr_floats("weights");
  std::vector<std::string> pool_s;
  std::vector<int64_t> pool_i = ctx.attr_ints("pool_int64s");
  if (const auto* a = ctx.attr("pool_strings"); a && a->type == ir::AttrType::kStrings) pool_s = a->strings;
  if (strings && pool_s.empty() && !pool_i.empty()) return ctx.error("string input needs 'pool_strings'");
  const int64_t pool_size = static_cast<int64_t>(strings ? pool_s.size() : pool_i.size());

  // Items as strings (integers printed) so that one map serves both kinds.
  auto item_of_pool = [&](int64_t k) {
    return strings ? pool_s[static_cast<size_t>(k)] : std::to_string(pool_i[static_cast<size_t>(k)]);
  };
  std::map<std::vector<std::string>, int64_t> ngram_to_out;  // n-gram -> output index
  std::map<int64_t, double> out_weight;
  int64_t ngram_id = 0;
  for (size_t level = 0; level < counts.size(); ++level) {
    const int64_t n = static_cast<int64_t>(level) + 1;
    const int64_t start = counts[level];
    const int64_t end = level + 1 < counts.size() ? counts[level + 1] : pool_size;
    if (start < 0 || end > pool_size || end < start || (end - start) % n != 0) {
      return ctx.error("attribute 'ngram_counts' does not split the pool into whole " + std::to_string(n) + "-grams");
    }
    for (int64_t k = start; k < end; k += n, ++ngram_id) {
      if (ngram_id >= static_cast<int64_t>(indexes.size())) {
        return ctx.error("attribute 'ngram_indexes' has fewer entries than the pool has n-grams");
      }
      std::vector<std::string> g;
      for (int64_t m = 0; m < n; ++m) g.push_back(item_of_pool(k + m));
      const int64_t oi = indexes[static_cast<size_t>(ngram_id)];
      ngram_to_out[g] = oi;
      out_weight[oi] = static_cast<size_t>(ngram_id) < weights.size() ? weights[static_cast<size_t>(ngram_id)] : 1.0;
    }
  }
  int64_t out_size = 0;
  for (int64_t i : indexes) {
    if (i < 0) return ctx.error("attribute 'ngram_indexes' has a negative entry");
    out_size = std::max(out_size, i + 1);
  }
  const int64_t rows = x->rank() == 2 ? x->dims()[0] : 1;
  const int64_t cols = x->rank() == 2 ? x->dims()[1] : x->dims()[0];
  std::vector<std::string> items(static_cast<size_t>(rows * cols));
  if (strings) {
    items = x->strings();
  } else {
    auto v = to_int64s(*x);
    for (size_t i = 0; i < v.size(); ++i) items[i] = std::to_string(v[i]);
  }
  std::vector<double> out(static_cast<size_t>(rows * out_size), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const std::string* row = &items[static_cast<size_t>(r * cols)];
    for (int64_t skip = 0; skip <= max_skip; ++skip) {
      const int64_t dist = skip + 1;
      // Unigrams are counted once (skips do not change them).
      const int64_t first_n = dist > 1 ? std::max<int64_t>(min_n, 2) : min_n;
      for (int64_t start = 0; start < cols; ++start) {
        std::vector<std::string> g;
        for (int64_t n = 1; n <= max_n; ++n) {
          const int64_t pos = start + (n - 1) * dist;
          if (pos >= cols) break;
          g.push_back(row[pos]);
          if (n < first_n) continue;
          auto it = ngram_to_out.find(g);
          if (it != ngram_to_out.end()) out[static_cast<size_t>(r * out_size + it->second)] += 1;
        }
      }
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < out_size; ++i) {
      double& v = out[static_cast<size_t>(r * out_size + i)];
      auto w = out_weight.find(i);
      const double weight = w == out_weight.end() ? 1.0 : w->second;
      if (mode == "IDF")
        v = v > 0 ? weight : 0;
      else if (mode == "TFIDF")
        v *= weight;
    }
  }
  return emit(ctx, 0, DType::kFloat32,
              x->rank() == 2 ? std::vector<int64_t>{rows, out_size} : std::vector<int64_t>{out_size}, out);
}

}  // namespace kiln::cpu
