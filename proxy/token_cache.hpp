#pragma once
// Bearer tokens from registry token services, cached per (upstream, realm, service, scope set) until they
// expire. Used from the event-loop thread only (not thread-safe).
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::proxy {

// What a token was issued for. The scope order does not matter (the cache sorts and de-duplicates).
struct TokenKey {
  std::string upstream;             // the upstream's name, e.g. "docker.io"
  std::string realm;                // token service URL from the challenge
  std::string service;              // "service" auth-param (may be empty)
  std::vector<std::string> scopes;  // e.g. {"repository:library/alpine:pull"}
  std::string credential;           // Credential::id of a forwarded client account; empty: the configured one
};

// Tokens by key with their expiry, judged by the injected clock.
class TokenCache {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  static constexpr std::chrono::seconds kDefaultLifetime{60};
  static constexpr std::chrono::seconds kSafetyMargin{5};
  // Longest lifetime honoured, whatever the token service says.
  static constexpr std::chrono::seconds kMaxLifetime{24 * 3600};

  explicit TokenCache(Clock clock = [] { return std::chrono::system_clock::now(); });

  // The cached token for `key`; nullopt if absent or expired (an expired entry is dropped).
  std::optional<std::string> get(const TokenKey& key);
  // Caches `token` until (issued_at, or now if absent or in the future) + expires_in (60 s if absent,
  // clamped to [0, kMaxLifetime]) minus a safety margin of 5 s (at most half the lifetime); a token
  // already expired (or issued more than kMaxLifetime ago) is not stored.
  void put(const TokenKey& key, std::string token, std::optional<std::chrono::seconds> expires_in,
           std::optional<std::chrono::system_clock::time_point> issued_at = std::nullopt);
  // Forgets the token for `key` (e.g. after the upstream rejected it); absent keys are ignored.
  void erase(const TokenKey& key);
  // Number of entries, expired ones included until they are next touched.
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string token;
    std::chrono::system_clock::time_point expires;
  };
  static std::string flatten(const TokenKey& key);
  void prune(std::chrono::system_clock::time_point now);

  Clock clock_;
  std::map<std::string, Entry> entries_;
};

// Parses an RFC 3339 timestamp ("2024-05-01T12:00:00Z", fractions and "+02:00" offsets allowed); every
// field is digits only. nullopt if malformed or outside 1970..2200 (system_clock's range is 1677..2262).
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s);

// Largest token-service answer read.
inline constexpr size_t kMaxTokenResponseBytes = 1024 * 1024;

// A token service's answer, range-checked: safe to hand to TokenCache::put as is.
struct TokenResponse {
  std::string token;                                               // "token", else "access_token"
  std::optional<std::chrono::seconds> expires_in;                  // clamped to [0, kMaxLifetime]
  std::optional<std::chrono::system_clock::time_point> issued_at;  // absent if malformed or out of range
};

// Parses a token service's JSON body with the bounded JSON parser. nullopt if it is not a JSON object
// with a non-empty "token" or "access_token"; a non-numeric expires_in or a bad issued_at is ignored.
std::optional<TokenResponse> parse_token_response(std::string_view body);

}  // namespace wharf::proxy
