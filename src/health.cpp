#include "src/health.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace wharf {

void HealthCheck::probe() {
  std::string error;
  auto path = tmp_dir_ / ("health-" + std::to_string(::getpid()));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, "ok", 2) != 2) {
    error = "storage not writable: " + path.string() + ": " + std::strerror(errno);
  }
  if (fd >= 0) ::close(fd);
  ::unlink(path.c_str());
  if (error.empty() && !database_) {  // with database.dsn the database check below covers the index
    try {
      auto txn = index_.read();
      (void)index_.repo_exists(txn, "health-probe");
    } catch (const std::exception& e) {
      error = std::string("index unavailable: ") + e.what();
    }
  }
  if (error.empty() && extra_) error = extra_();
  const std::string database_error = database_ ? database_() : std::string();
  std::lock_guard lock(mu_);
  if (database_error.empty()) {
    database_failures_ = 0;
  } else {
    ++database_failures_;
    database_error_ = database_error;
  }
  if (error.empty()) {
    failures_ = 0;
  } else {
    ++failures_;
    last_error_ = error;
  }
}

bool HealthCheck::healthy(std::string* error) const {
  std::lock_guard lock(mu_);
  if (failures_ < threshold_) return true;
  if (error) *error = last_error_;
  return false;
}

bool HealthCheck::database_healthy(std::string* error) const {
  std::lock_guard lock(mu_);
  if (database_failures_ < threshold_) return true;
  if (error) *error = database_error_;
  return false;
}

}  // namespace wharf
