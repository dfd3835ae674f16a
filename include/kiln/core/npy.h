// NumPy .npy files (format versions 1.0-3.0): the way tensors go in and out of `kiln run`.
#pragma once

#include <string>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln {

// Parses .npy bytes; `label` names the source in errors. Fortran-ordered arrays are converted to C order. numpy's
// fixed-width strings ('<U' and 'S' dtypes) become string tensors (UTF-8).
StatusOr<Tensor> parse_npy(const std::string& bytes, const std::string& label = "<npy>");
StatusOr<Tensor> read_npy(const std::string& path);
// The .npy bytes of a numeric, bool or string tensor (format 1.0, C order, little-endian; strings as '<U<n>', n the
// longest string's code points). bfloat16 and other dtypes numpy lacks: Unimplemented.
StatusOr<std::string> to_npy(const Tensor& t);
// Writes atomically: nothing is left at `path` on error.
Status write_npy(const std::string& path, const Tensor& t);

}  // namespace kiln
