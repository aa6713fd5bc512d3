// The htpasswd file watched by identity, failing closed on any change that cannot be used.
#include "src/auth/htpasswd_file.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <vector>

namespace wharf::auth {

bool HtpasswdFile::Identity::operator==(const Identity& o) const {
  return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
}

std::optional<HtpasswdFile::Identity> HtpasswdFile::identify(const std::filesystem::path& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return Identity{st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
}

std::expected<HtpasswdFile, std::string> HtpasswdFile::open(std::filesystem::path path) {
  HtpasswdFile f(std::move(path));
  if (auto err = f.read()) return std::unexpected(*err);
  return f;
}

std::optional<std::string> HtpasswdFile::read() {
  identity_ = identify(path_);  // before reading: a change made while we read is seen next time
  std::vector<std::string> warnings;
  auto db = Htpasswd::load(path_, warnings);
  for (const auto& w : warnings) spdlog::warn("{}", w);
  if (!db) {
    users_.reset();
    problem_ = db.error();
    return problem_;
  }
  users_ = std::make_shared<const Htpasswd>(std::move(*db));
  problem_.reset();
  return std::nullopt;
}

void HtpasswdFile::reload() {
  ++generation_;
  const bool was_broken = problem_.has_value();
  if (auto err = read()) {
    spdlog::error("htpasswd unusable, refusing every Basic login until it is fixed: {}", *err);
    return;
  }
  if (was_broken) spdlog::info("htpasswd usable again");
  spdlog::info("reloaded {} ({} users)", path_.string(), users_->size());
}

std::shared_ptr<const Htpasswd> HtpasswdFile::users() {
  auto now = identify(path_);
  // Unchanged, or still missing after a failure already reported: nothing to do.
  if (now != identity_ || (!now && !problem_)) reload();
  return users_;
}

}  // namespace wharf::auth
