#pragma once
// Internal to cache/fs: POSIX helpers with EINTR retries and messages that name the path.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace wharf::cache::fs_detail {

// "<what> '<path>': <strerror(err)>"
inline std::unexpected<std::string> failure(std::string_view what, const std::filesystem::path& path, int err) {
  return std::unexpected(std::string(what).append(" '").append(path.string()).append("': ").append(
      std::generic_category().message(err)));
}

// open(2), retried on EINTR.
inline int open_retry(const std::filesystem::path& p, int flags, mode_t mode = 0) {
  int fd;
  do fd = ::open(p.c_str(), flags, mode);
  while (fd < 0 && errno == EINTR);
  return fd;
}

// fsync(2), retried on EINTR.
inline int fsync_retry(int fd) {
  int rc;
  do rc = ::fsync(fd);
  while (rc < 0 && errno == EINTR);
  return rc;
}

// Closes `fd` (never retried: on Linux the descriptor is gone even after EINTR).
inline void close_fd(int fd) {
  if (fd >= 0) ::close(fd);
}

// fsyncs a directory, making its new entries durable.
inline std::expected<void, std::string> fsync_dir(const std::filesystem::path& dir) {
  int fd = open_retry(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return failure("cannot open directory", dir, errno);
  int rc = fsync_retry(fd);
  int err = errno;
  close_fd(fd);
  if (rc < 0) return failure("cannot fsync directory", dir, err);
  return {};
}

// Writes all of `n` bytes at the end of `fd`; the errno of the failure, 0 on success.
inline int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    p += w;
    n -= size_t(w);
  }
  return 0;
}

}  // namespace wharf::cache::fs_detail
