#include "kiln/core/file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace kiln {

Status write_file_atomic(const std::string& path, std::string_view bytes, const std::string& what) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](int err) {
    std::remove(tmp.c_str());
    return io_error("cannot write " + (what.empty() ? "" : what + " ") + "'" + path + "'" +
                    (err ? std::string(": ") + std::strerror(err) : std::string()));
  };
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return fail(errno);
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const int write_err = written ? 0 : errno;
  if (std::fclose(f) != 0 || !written) return fail(write_err ? write_err : errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail(errno);
  return Status::ok();
}

}  // namespace kiln
