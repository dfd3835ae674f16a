// Files written whole or not at all.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "kiln/core/allocator.h"
#include "kiln/core/status.h"

namespace kiln {

// Writes `bytes` to `path` through `path` + ".tmp", renamed over `path` once complete: a reader never sees a
// half-written file, and a failure leaves nothing behind. The error says "cannot write <what> '<path>'" and why.
Status write_file_atomic(const std::string& path, std::string_view bytes, const std::string& what = "");

// The whole file `path` as a read-only memory mapping (page-aligned; empty files give an empty buffer), unmapped when
// the last holder of the buffer (or of a tensor viewing it) lets go. Errors name `what` and the path: NotFound for
// a missing file, IoError for one that is not a regular file or cannot be mapped.
StatusOr<std::shared_ptr<Buffer>> map_file(const std::string& path, const std::string& what = "file");

}  // namespace kiln
