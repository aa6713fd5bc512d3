#pragma once
// Basic authentication in front of the API: a remembered credential costs one hash lookup; a new one
// is verified with bcrypt on the gate's own small bounded pool, never on the storage pool, so a flood
// of wrong passwords cannot delay commits. Each client address may have a few checks in flight and
// backs off exponentially once it keeps failing. The htpasswd file is watched (inode, size, mtime,
// ctime) and fails closed: while it cannot be read or parsed, nobody gets in.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "src/auth/htpasswd.hpp"
#include "src/auth/htpasswd_file.hpp"
#include "src/auth/throttle.hpp"
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

class AuthGate {
 public:
  // An empty `path` disables authentication. Fails (message names auth.htpasswd.path) if unreadable or malformed.
  static std::expected<std::unique_ptr<AuthGate>, std::string> create(std::string realm, std::string path,
                                                                     event_base* base, AuthLimits limits = {});
  ~AuthGate();
  // Whether an htpasswd file is configured (otherwise every request passes).
  bool enabled() const { return !path_.empty(); }
  // Calls `next` with the request's user set if it is authorized; otherwise answers 401, 429 or 503 itself.
  void check(const http::ExchangePtr& ex, std::function<void()> next);
  // Re-reads the htpasswd file now (SIGHUP) and forgets remembered credentials; a file that cannot be read
  // or parsed locks everyone out (logged at error level) until a later reload succeeds.
  void reload();
  // The reason Basic authentication is refusing everyone, or nullopt while the htpasswd file is in use.
  std::optional<std::string> problem() const;
  // Counters for the metrics.
  const AuthStats& stats() const { return stats_; }

 private:
  AuthGate(std::string realm, std::string path, event_base* base, AuthLimits limits);
  void deny(const http::ExchangePtr& ex, const std::string& why);
  void refuse(const http::ExchangePtr& ex, oci::ErrorCode code, const std::string& why, std::chrono::seconds wait);

  std::string realm_;
  std::string path_;
  AuthLimits limits_;
  std::optional<auth::HtpasswdFile> file_;  // set when enabled
  std::shared_ptr<auth::CredentialCache> cache_ = std::make_shared<auth::CredentialCache>(std::chrono::seconds(300));
  auth::FailureThrottle throttle_;
  AuthStats stats_;
  std::unique_ptr<util::WorkPool> checks_;  // last: its workers stop before the rest goes away
};

}  // namespace wharf::api
