// What the C API's source files share: the kiln_status struct and how errors become one.
#pragma once

#include <exception>
#include <new>
#include <string>
#include <utility>

#include "kiln/core/status.h"
#include "kiln/kiln_c.h"

struct kiln_status {
  int32_t code;
  std::string message;
};

namespace kiln::capi {

// Returned when even the error cannot be allocated; never freed.
inline kiln_status g_out_of_memory{KILN_RESOURCE_EXHAUSTED, ""};

inline kiln_status* make_status(int32_t code, std::string message) {
  try {
    return new kiln_status{code, std::move(message)};
  } catch (...) {
    return &g_out_of_memory;
  }
}

inline kiln_status* from_status(const kiln::Status& s) {
  if (s.is_ok()) return nullptr;
  return make_status(static_cast<int32_t>(s.code()), s.message());
}

inline kiln_status* invalid(const std::string& message) { return make_status(KILN_INVALID_ARGUMENT, message); }

// Runs `body` (which returns a kiln_status*), turning any exception into an error status.
template <typename F>
kiln_status* guarded(const char* function, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return make_status(KILN_RESOURCE_EXHAUSTED, std::string(function) + ": out of memory");
  } catch (const std::exception& e) {
    return make_status(KILN_INTERNAL, std::string(function) + ": " + e.what());
  } catch (...) {
    return make_status(KILN_INTERNAL, std::string(function) + ": unknown exception");
  }
}

#define KILN_C_REQUIRE(ptr, function, what) \
  if ((ptr) == nullptr) return invalid(std::string(function) + ": " + (what) + " is NULL")

}  // namespace kiln::capi
