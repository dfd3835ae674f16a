// Conversions between element types with defined behaviour where a plain static_cast has none.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace kiln::cpu {

// `v` as a D: floating point -> integer saturates at D's range and maps NaN to 0 (a static_cast of an out-of-range
// value is undefined behaviour); anything -> bool is v != 0; everything else as static_cast.
template <typename D, typename S>
D saturating_cast(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S{};
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    if (std::isnan(v)) return D{};
    const auto lo = static_cast<long double>(std::numeric_limits<D>::lowest());
    const auto hi = static_cast<long double>(std::numeric_limits<D>::max());
    const auto x = static_cast<long double>(v);
    if (x <= lo) return std::numeric_limits<D>::lowest();
    if (x >= hi) return std::numeric_limits<D>::max();
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

// a + b, a - b, a * b wrapping around on overflow for integers (as two's complement hardware does, and as ONNX
// Runtime's results show; signed overflow is undefined behaviour in C++), plain for floating point.
template <typename T>
T wrapping_add(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return static_cast<T>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  } else {
    return static_cast<T>(a + b);
  }
}
template <typename T>
T wrapping_sub(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return static_cast<T>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
  } else {
    return static_cast<T>(a - b);
  }
}
template <typename T>
T wrapping_mul(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return static_cast<T>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  } else {
    return static_cast<T>(a * b);
  }
}

}  // namespace kiln::cpu
