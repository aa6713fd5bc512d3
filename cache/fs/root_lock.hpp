#pragma once
// The hold a running server keeps on its root directory: a shared flock(2) on <root>/serve.lock,
// released when the process ends (also by kill -9). Offline verbs that must not run beside a server
// ask for it exclusively.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <expected>
#include <filesystem>
#include <string>

namespace wharf::cache {

class RootLock {
 public:
  // How the lock is held: Shared by each server, Exclusive by a verb that needs the store alone.
  enum class Mode { Shared, Exclusive };
  // Takes the lock without waiting; fails with a message when a server (or another verb) holds it.
  static std::expected<RootLock, std::string> take(const std::filesystem::path& root, Mode mode) {
    const std::filesystem::path path = root / "serve.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return std::unexpected("cannot open '" + path.string() + "': " + std::strerror(errno));
    int rc;
    do rc = ::flock(fd, (mode == Mode::Shared ? LOCK_SH : LOCK_EX) | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        return std::unexpected("the store under '" + root.string() +
                               "' is in use by a running wharf (a server, or an import-registry that needs it "
                               "alone): stop it first");
      return std::unexpected("cannot lock '" + path.string() + "': " + std::strerror(err));
    }
    return RootLock(fd);
  }
  RootLock(RootLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RootLock& operator=(RootLock&&) = delete;
  RootLock(const RootLock&) = delete;
  ~RootLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit RootLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace wharf::cache
