#include "src/api/auth_gate.hpp"

#include <spdlog/spdlog.h>

#include "src/api/respond.hpp"

namespace wharf::api {

AuthGate::AuthGate(std::string realm, std::string path, event_base* base, AuthLimits limits)
    : realm_(std::move(realm)), path_(std::move(path)), limits_(limits), throttle_(limits.failures_per_client) {
  if (enabled()) {
    checks_ = std::make_unique<util::WorkPool>(base, std::max(limits_.threads, 1u),
                                               size_t(std::max(limits_.password_checks, 1)));
  }
}

AuthGate::~AuthGate() {
  if (checks_) checks_->shutdown(util::WorkPool::Pending::Drop);
}

std::expected<std::unique_ptr<AuthGate>, std::string> AuthGate::create(std::string realm, std::string path,
                                                                      event_base* base, AuthLimits limits) {
  std::unique_ptr<AuthGate> g(new AuthGate(std::move(realm), std::move(path), base, limits));
  if (g->enabled()) {
    auto file = auth::HtpasswdFile::open(g->path_);
    if (!file) return std::unexpected("auth.htpasswd.path: " + file.error());
    g->file_.emplace(std::move(*file));
  }
  return g;
}

void AuthGate::reload() {
  if (!file_) return;
  ++stats_.reloads;
  cache_->clear();
  file_->reload();
}

std::optional<std::string> AuthGate::problem() const {
  if (!file_ || !file_->problem()) return std::nullopt;
  return "auth.htpasswd.path: " + *file_->problem();
}

void AuthGate::deny(const http::ExchangePtr& ex, const std::string& why) {
  auto res = error_response(oci::ErrorCode::Unauthorized, why);
  res.header("WWW-Authenticate", "Basic realm=\"" + realm_ + "\"");
  ex->respond(std::move(res));
}

void AuthGate::refuse(const http::ExchangePtr& ex, oci::ErrorCode code, const std::string& why,
                      std::chrono::seconds wait) {
  auto res = error_response(code, why);
  res.header("Retry-After", std::to_string(wait.count()));
  ex->respond(std::move(res));
}

void AuthGate::check(const http::ExchangePtr& ex, std::function<void()> next) {
  if (!enabled()) return next();
  const uint64_t before = file_->generation();
  auto users = file_->users();  // re-reads the file if it changed
  if (file_->generation() != before) {
    ++stats_.reloads;
    cache_->clear();
  }
  std::string authz(ex->req().header("authorization"));
  if (authz.empty()) return deny(ex, "authentication required");
  if (!users) return deny(ex, "authentication is unavailable: the server's htpasswd file cannot be used");
  if (auto user = cache_->lookup(authz)) {
    ex->req().user = *user;
    return next();
  }
  auto creds = auth::parse_basic(authz);
  if (!creds) return deny(ex, "only Basic authentication is accepted");
  const std::string client = auth::client_key(ex->req().peer);
  if (auto wait = throttle_.begin(client)) {
    ++stats_.throttled;
    return refuse(ex, oci::ErrorCode::TooManyRequests,
                  "too many failed or concurrent logins from this address; retry later", *wait);
  }
  auto ok = std::make_shared<bool>(false);
  const uint64_t generation = file_->generation();
  const bool queued = checks_->try_submit(
      [users, creds, ok] { *ok = users->verify(creds->first, creds->second); },
      [this, ex, ok, creds, authz, client, generation, next]() mutable {
        ++stats_.checks;
        if (!*ok) ++stats_.failures;
        throttle_.finish(client, *ok ? auth::FailureThrottle::Outcome::Verified : auth::FailureThrottle::Outcome::Failed);
        if (!ex->alive()) return;
        if (generation != file_->generation()) return check(ex, std::move(next));  // the file changed meanwhile
        if (!*ok) {
          spdlog::warn("authentication failed for user '{}' from {}", creds->first, ex->req().peer);
          return deny(ex, "invalid username or password");
        }
        cache_->remember(authz, creds->first);
        ex->req().user = creds->first;
        next();
      });
  if (!queued) {
    throttle_.finish(client, auth::FailureThrottle::Outcome::NotRun);
    ++stats_.overloaded;
    return refuse(ex, oci::ErrorCode::Unavailable, "too many logins waiting for a password check; retry later",
                  std::chrono::seconds(1));
  }
}

}  // namespace wharf::api
