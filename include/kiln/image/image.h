// Images in and out of models, in the tutorial's convention (cv2.imread + numpy): pixels 0-255 as float32,
// channels in BGR order, NCHW layout. PNG and JPEG, chosen by the file extension.
#pragma once

#include <string>

#include "kiln/core/status.h"
#include "kiln/core/tensor.h"

namespace kiln::image {

// Decodes a PNG or JPEG to a float32 tensor [1, 3, H, W] (BGR, 0-255). Gray images are expanded to 3
// channels and alpha is dropped, as cv2.imread does. Errors name the file.
StatusOr<Tensor> read_nchw(const std::string& path);

// The same from the file's bytes, PNG or JPEG told apart by their signatures; `label` names the source in errors.
// Truncated or corrupt data is an error (JPEG's "premature end of data" included), and an image whose decoded
// tensor would be larger than the machine's memory is refused before its pixels are allocated.
StatusOr<Tensor> decode_nchw(const void* data, size_t size, const std::string& label = "<image>");

// Encodes a float tensor [1, C, H, W] or [C, H, W] with C = 1 or 3 (BGR, 0-255) as PNG or JPEG, by the
// extension of `path`. Values are clipped to 0-255 and truncated to uint8, as np.clip(...).astype(np.uint8)
// does. The file is written atomically: on error nothing is left at `path`.
Status write_nchw(const Tensor& t, const std::string& path);

}  // namespace kiln::image
