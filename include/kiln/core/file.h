// Files written whole or not at all.
#pragma once

#include <string>
#include <string_view>

#include "kiln/core/status.h"

namespace kiln {

// Writes `bytes` to `path` through `path` + ".tmp", renamed over `path` once complete: a reader never sees a
// half-written file, and a failure leaves nothing behind. The error says "cannot write <what> '<path>'" and why.
Status write_file_atomic(const std::string& path, std::string_view bytes, const std::string& what = "");

}  // namespace kiln
