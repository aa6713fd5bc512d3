#pragma once
// Authentication and authorization in front of the API. Callers are anonymous, Basic (htpasswd users
// and robot accounts) or Bearer (JWTs from an external token server or from wharf's own /auth/token).
// A remembered Basic credential or bearer token costs one hash lookup; a new password is verified with
// bcrypt on the gate's own small bounded pool, with per-address limits and backoff. Then the request's
// scope (repository + actions) is checked against the token's access claim, the robot's allow list or
// the access rules: 401 with a challenge naming the scope when the caller is not signed in, 403 DENIED
// when it is but may not. The htpasswd and robots files are watched and fail closed.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/api/route.hpp"
#include "src/auth/audit.hpp"
#include "src/auth/htpasswd.hpp"
#include "src/auth/htpasswd_file.hpp"
#include "src/auth/jwt.hpp"
#include "src/auth/robots.hpp"
#include "src/auth/rules.hpp"
#include "src/auth/throttle.hpp"
#include "src/auth/token_cache.hpp"
#include "src/auth/token_issuer.hpp"
#include "src/config/config.hpp"
#include "src/http/server.hpp"
#include "src/oci/errors.hpp"
#include "src/util/work_pool.hpp"

struct event_base;

namespace wharf::api {

// The limits of the gate (http.limits.passwordchecks and http.limits.authfailures).
struct AuthLimits {
  int password_checks = 256;         // checks waiting for the bcrypt thread; beyond: 503 with Retry-After
  int failures_per_client = 8;       // checks in flight and failures in a row per address; beyond: 429
  unsigned threads = 1;              // bcrypt threads
};

// What the gate did, for the metrics (loop thread only).
struct AuthStats {
  uint64_t checks = 0;      // bcrypt verifications run
  uint64_t failures = 0;    // of which the password was wrong or the user unknown
  uint64_t throttled = 0;   // refused with 429 before a check (address over its limit or in backoff)
  uint64_t overloaded = 0;  // refused with 503 because the check queue was full
  uint64_t reloads = 0;     // htpasswd (re)loads after the first
};

// Who made a request, as the gate established it.
struct Caller {
  std::string user;                           // empty: anonymous; "robot$NAME" for robot accounts
  std::shared_ptr<const auth::Claims> token;  // the bearer token's claims (null without one)
  // Whether the caller proved an identity (an anonymous token does not count).
  bool signed_in() const { return !user.empty(); }
};

// Why the gate could not establish who is calling: 401 (code Unauthorized, with the token spec's
// error), 429 or 503 (with a wait).
struct Refusal {
  oci::ErrorCode code = oci::ErrorCode::Unauthorized;
  std::string why;
  std::string token_error;  // "invalid_token", "insufficient_scope" or empty
  std::chrono::seconds wait{0};
};

class AuthGate {
 public:
  // Builds the gate from auth.htpasswd, auth.token, auth.access/groups, auth.robots and auth.audit.
  // Fails with a message naming the key whose file cannot be read or used.
  static std::expected<std::unique_ptr<AuthGate>, std::string> create(const config::Config& cfg, event_base* base,
                                                                     AuthLimits limits = {});
  ~AuthGate();
  // Whether any authentication is configured (htpasswd or token); otherwise only the rules apply.
  bool enabled() const { return file_.has_value() || token_mode_; }
  // Establishes the caller, checks `scope`, then calls `next`; otherwise answers 401, 403, 429 or 503.
  void check(const http::ExchangePtr& ex, const Scope& scope, std::function<void(const Caller&)> next);
  // Establishes the caller from the Authorization header like check() (throttled password checks
  // included) without checking a scope and without answering: `refused` gets the reason instead.
  void authenticate(const http::ExchangePtr& ex, std::function<void(Caller)> next,
                    std::function<void(const Refusal&)> refused);
  // Writes one audit event (and passes it to the observer set with observe_audit).
  void audit(const http::ExchangePtr& ex, std::string_view event, std::string_view user, std::string_view repo,
             std::string_view action, std::string_view outcome);
  // Passes every audit event to `observer` as well (loop thread).
  void observe_audit(std::function<void(const auth::AuditEvent&)> observer) { audit_->observe(std::move(observer)); }
  // The actions (auth::Action bits) `caller` may take on `repo` now.
  uint8_t allowed(const Caller& caller, std::string_view repo);
  // Whether `caller` may make wharf fetch from `upstream` (auth.fetch); otherwise it sees the cache only.
  bool may_fetch(const Caller& caller, std::string_view upstream) const { return rules_.may_fetch(caller.user, upstream); }
  // The access rules (also auth.fetch and auth.immutabletags), compiled at start.
  const auth::Rules& rules() const { return rules_; }
  // GET /auth/token: wharf's own token server (404 when auth.token names an external realm or is absent).
  void token_endpoint(const http::ExchangePtr& ex);
  // Re-reads the htpasswd file now (SIGHUP) and forgets remembered credentials and tokens; a file that
  // cannot be read or parsed locks its users out (logged at error level) until a later reload succeeds.
  void reload();
  // The reason Basic authentication is refusing everyone, or nullopt while the htpasswd file is in use.
  std::optional<std::string> problem() const;
  // Counters for the metrics.
  const AuthStats& stats() const { return stats_; }
  // "htpasswd", "token", "token+htpasswd" or "off", for the start-up line.
  std::string describe() const;

 private:
  AuthGate(const config::Config& cfg, event_base* base, AuthLimits limits);
  // Establishes the caller from the Authorization header and calls `next`, or answers 401/429/503 itself.
  // `refused` gets the reason when the header names nobody valid (or the check is throttled); `repo`
  // is the repository of the request, for the audit log only.
  void identify(const http::ExchangePtr& ex, std::string repo, std::function<void(Caller)> next,
                std::function<void(const Refusal&)> refused);
  void verify_password(const http::ExchangePtr& ex, std::string repo, std::string authz, std::string user, std::string password,
                       std::function<void(Caller)> next, std::function<void(const Refusal&)> refused);
  // Answers a refusal for `scope`: 401 with the challenge, or 429/503 with Retry-After.
  void answer_refusal(const http::ExchangePtr& ex, const Scope& scope, const Refusal& r);
  // 401 UNAUTHORIZED with the challenge for `scope` (`error`: the token spec's error, may be empty).
  void challenge(const http::ExchangePtr& ex, const std::string& why, const Scope& scope, std::string_view error = {});
  void refuse(const http::ExchangePtr& ex, oci::ErrorCode code, const std::string& why, std::chrono::seconds wait);
  std::string realm_for(const http::Request& req) const;

  config::Config cfg_;
  bool token_mode_ = false;
  std::optional<auth::HtpasswdFile> file_;  // set with auth.htpasswd
  std::vector<auth::Key> verify_keys_;      // rootcertbundle and the public halves of the signing keys
  std::optional<auth::TokenIssuer> issuer_; // wharf's own token server (auth.token without realm)
  auth::Rules rules_;
  std::optional<auth::RobotsFile> robots_;
  std::unique_ptr<auth::AuditLog> audit_;
  auth::TokenCache tokens_;
  std::shared_ptr<auth::CredentialCache> cache_ = std::make_shared<auth::CredentialCache>(std::chrono::seconds(300));
  auth::FailureThrottle throttle_;
  AuthStats stats_;
  std::unique_ptr<util::WorkPool> checks_;  // last: its workers stop before the rest goes away
};

}  // namespace wharf::api
