#pragma once
// The htpasswd file as a live source of users: re-read whenever its identity (device, inode, size,
// mtime, ctime) changes, and failing closed: while the file is missing, unreadable or malformed there
// are no users at all, never the previous ones. Not thread-safe (the event loop owns it).
#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <expected>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "src/auth/htpasswd.hpp"

namespace wharf::auth {

class HtpasswdFile {
 public:
  // Loads `path`; fails with the message naming the path (and line) if it cannot be read or parsed.
  static std::expected<HtpasswdFile, std::string> open(std::filesystem::path path);

  // The users now, re-reading the file first if it changed (one stat); nullptr while it is unusable.
  std::shared_ptr<const Htpasswd> users();
  // Re-reads the file unconditionally; logs failures at error level and leaves no users.
  void reload();
  // Why there are no users (nullopt while the file is in use).
  const std::optional<std::string>& problem() const { return problem_; }
  // Bumped by every reload, so work begun against older users can tell.
  uint64_t generation() const { return generation_; }

 private:
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    timespec mtime{};
    timespec ctime{};
    bool operator==(const Identity& o) const;
  };
  static std::optional<Identity> identify(const std::filesystem::path& path);
  explicit HtpasswdFile(std::filesystem::path path) : path_(std::move(path)) {}
  // Reads the file into users_/problem_; the message on failure.
  std::optional<std::string> read();

  std::filesystem::path path_;
  std::optional<Identity> identity_;  // of the version read (nullopt: it could not be stat'ed)
  std::shared_ptr<const Htpasswd> users_;
  std::optional<std::string> problem_;
  uint64_t generation_ = 0;
};

}  // namespace wharf::auth
