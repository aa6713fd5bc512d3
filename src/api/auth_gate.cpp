#include "src/api/auth_gate.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "src/api/respond.hpp"

namespace wharf::api {

std::expected<std::unique_ptr<AuthGate>, std::string> AuthGate::create(std::string realm, std::string path,
                                                                      util::WorkPool& pool) {
  std::unique_ptr<AuthGate> g(new AuthGate(std::move(realm), std::move(path), pool));
  if (g->enabled()) {
    auto users = auth::Htpasswd::load(g->path_);
    if (!users) return std::unexpected("auth.htpasswd.path: " + users.error());
    g->users_ = std::make_shared<auth::Htpasswd>(std::move(*users));
    struct stat st{};
    if (::stat(g->path_.c_str(), &st) == 0) {
      g->mtime_ = st.st_mtim;
      g->fsize_ = st.st_size;
    }
    g->checked_at_ = time(nullptr);
  }
  return g;
}

void AuthGate::reload() {
  if (!enabled()) return;
  auto users = auth::Htpasswd::load(path_);
  if (!users) {
    spdlog::error("htpasswd reload failed, keeping the previous users: {}", users.error());
    return;
  }
  users_ = std::make_shared<auth::Htpasswd>(std::move(*users));
  cache_->clear();
  spdlog::info("reloaded {} ({} users)", path_, users_->size());
}

void AuthGate::maybe_reload() {
  time_t now = time(nullptr);
  if (now == checked_at_) return;  // at most one stat per second
  checked_at_ = now;
  struct stat st{};
  if (::stat(path_.c_str(), &st) != 0) return;
  if (st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec || st.st_size != fsize_) {
    mtime_ = st.st_mtim;
    fsize_ = st.st_size;
    reload();
  }
}

void AuthGate::deny(const http::ExchangePtr& ex, const std::string& why) {
  auto res = error_response(oci::ErrorCode::Unauthorized, why);
  res.header("WWW-Authenticate", "Basic realm=\"" + realm_ + "\"");
  ex->respond(std::move(res));
}

void AuthGate::check(const http::ExchangePtr& ex, std::function<void()> next) {
  if (!enabled()) return next();
  maybe_reload();
  std::string authz(ex->req().header("authorization"));
  if (authz.empty()) return deny(ex, "authentication required");
  if (auto user = cache_->lookup(authz)) {
    ex->req().user = *user;
    return next();
  }
  auto creds = auth::parse_basic(authz);
  if (!creds) return deny(ex, "only Basic authentication is accepted");
  auto ok = std::make_shared<bool>(false);
  auto users = users_;
  auto cache = cache_;
  pool_.submit([users, creds, ok] { *ok = users->verify(creds->first, creds->second); },
               [this, ex, ok, creds, authz, cache, next = std::move(next)] {
                 if (!*ok) {
                   spdlog::warn("authentication failed for user '{}' from {}", creds->first, ex->req().peer);
                   return deny(ex, "invalid username or password");
                 }
                 cache->remember(authz, creds->first);
                 ex->req().user = creds->first;
                 next();
               });
}

}  // namespace wharf::api
