#pragma once
// Basic authentication in front of the API: a remembered credential costs one hash lookup; a new one
// is verified with bcrypt on a worker thread. The htpasswd file is reloaded when it changes.
#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include "src/auth/htpasswd.hpp"
#include "src/http/server.hpp"
#include "src/util/work_pool.hpp"

namespace wharf::api {

class AuthGate {
 public:
  // An empty `path` disables authentication. Fails (message names auth.htpasswd.path) if unreadable.
  static std::expected<std::unique_ptr<AuthGate>, std::string> create(std::string realm, std::string path,
                                                                     util::WorkPool& pool);
  bool enabled() const { return !path_.empty(); }
  // Calls `next` with the request's user set if it is authorized; otherwise answers 401 itself.
  void check(const http::ExchangePtr& ex, std::function<void()> next);
  // Re-reads the htpasswd file now (SIGHUP) and forgets remembered credentials.
  void reload();

 private:
  AuthGate(std::string realm, std::string path, util::WorkPool& pool)
      : realm_(std::move(realm)), path_(std::move(path)), pool_(pool) {}
  void maybe_reload();
  void deny(const http::ExchangePtr& ex, const std::string& why);

  std::string realm_;
  std::string path_;
  util::WorkPool& pool_;
  std::shared_ptr<const auth::Htpasswd> users_;
  std::shared_ptr<auth::CredentialCache> cache_ = std::make_shared<auth::CredentialCache>(std::chrono::seconds(300));
  time_t checked_at_ = 0;
  struct timespec mtime_{};
  off_t fsize_ = -1;
};

}  // namespace wharf::api
