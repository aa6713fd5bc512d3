#pragma once
// wharf as its own token server: parses the scopes a client asks for and signs a short-lived JWT that
// grants only what the caller may do. Pure apart from the clock passed in; the HTTP side is in src/api.
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "src/auth/jwt.hpp"
#include "src/auth/keys.hpp"

namespace wharf::auth {

// Parses one or more space-separated scopes ("repository:team-a/app:pull,push registry:catalog:*").
// Fails with a message naming the scope for a malformed one or an invalid repository name (e.g. "..").
std::expected<std::vector<Access>, std::string> parse_scopes(std::string_view text);

// A signed token and what it grants.
struct IssuedToken {
  std::string token;
  int64_t expires_in = 0;
  int64_t issued_at = 0;
  std::vector<Access> granted;
};

class TokenIssuer {
 public:
  // The first key signs; `ttl` is the lifetime of every token.
  TokenIssuer(std::vector<Key> keys, std::string issuer, std::string service, std::chrono::seconds ttl);
  // Signs a token for `subject` (empty: anonymous) granting, per requested repository, the requested
  // actions that `allowed(repo)` (auth::Action bits) permits; registry:catalog:* is granted to signed-in
  // callers. Fails only if signing fails.
  std::expected<IssuedToken, std::string> issue(std::string_view subject, const std::vector<Access>& requested,
                                                const std::function<uint8_t(std::string_view)>& allowed,
                                                int64_t now) const;
  // The public halves, to verify what this issuer signed (all keys: rotation keeps old tokens valid).
  const std::vector<Key>& keys() const { return keys_; }
  // The iss of every token.
  const std::string& issuer() const { return issuer_; }
  // The aud of every token.
  const std::string& service() const { return service_; }

 private:
  std::vector<Key> keys_;
  std::string issuer_;
  std::string service_;
  std::chrono::seconds ttl_;
};

}  // namespace wharf::auth
