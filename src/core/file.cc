#include "kiln/core/file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

StatusOr<std::shared_ptr<Buffer>> map_file(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = "cannot open " + what + " '" + path + "': " + std::strerror(err);
    return err == ENOENT ? not_found(msg) : io_error(msg);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return io_error(what + " '" + path + "' is not a regular file");
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return Buffer::wrap(nullptr, 0, nullptr);
  }
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) return io_error("cannot map " + what + " '" + path + "': " + std::strerror(err));
  std::shared_ptr<void> owner(p, [size](void* q) { munmap(q, size); });
  return Buffer::wrap(p, size, std::move(owner));
}

}  // namespace kiln
