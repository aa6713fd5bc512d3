#pragma once
// A pulling client's own upstream account (proxy.forwardcredentials), forwarded instead of the
// configured one. Only `id` may be logged, used as a key or compared across requests; the secret stays in
// memory for the upstream token exchange.
#include <string>

namespace wharf::proxy {

struct Credential {
  std::string id;        // hex SHA-256 of "user:password"; empty: the configured account (or anonymous)
  std::string username;  // upstream account name
  std::string password;  // upstream password or access token
  // True when no client credential was presented.
  bool empty() const { return id.empty(); }
};

}  // namespace wharf::proxy
