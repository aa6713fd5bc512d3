// Scope parsing and token issuing for wharf's own token server.
#include "src/auth/token_issuer.hpp"

#include <openssl/rand.h>

#include "src/auth/rules.hpp"
#include "src/oci/names.hpp"

namespace wharf::auth {

std::expected<std::vector<Access>, std::string> parse_scopes(std::string_view text) {
  std::vector<Access> out;
  while (!text.empty()) {
    const size_t space = text.find(' ');
    const std::string_view one = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (one.empty()) continue;
    const size_t first = one.find(':');
    const size_t last = one.rfind(':');
    if (first == std::string_view::npos || first == last)
      return std::unexpected(std::string("invalid scope '") + std::string(one.substr(0, 256)) + "': expected TYPE:NAME:ACTIONS");
    Access a;
    a.type = std::string(one.substr(0, first));
    a.name = std::string(one.substr(first + 1, last - first - 1));
    if (a.type == "repository" && !oci::valid_repo_name(a.name))
      return std::unexpected(std::string("invalid scope '") + std::string(one.substr(0, 256)) + "': not a valid repository name");
    std::string_view actions = one.substr(last + 1);
    while (!actions.empty()) {
      const size_t comma = actions.find(',');
      if (comma != 0) a.actions.emplace_back(actions.substr(0, comma));
      actions = comma == std::string_view::npos ? std::string_view() : actions.substr(comma + 1);
    }
    if (out.size() >= 64) return std::unexpected("too many scopes (at most 64)");
    out.push_back(std::move(a));
  }
  return out;
}

TokenIssuer::TokenIssuer(std::vector<Key> keys, std::string issuer, std::string service, std::chrono::seconds ttl)
    : keys_(std::move(keys)), issuer_(std::move(issuer)), service_(std::move(service)), ttl_(ttl) {}

std::expected<IssuedToken, std::string> TokenIssuer::issue(std::string_view subject, const std::vector<Access>& requested,
                                                           const std::function<uint8_t(std::string_view)>& allowed,
                                                           int64_t now) const {
  if (keys_.empty()) return std::unexpected("no signing key");
  Claims c;
  c.issuer = issuer_;
  c.subject = std::string(subject);
  c.audience = {service_};
  c.issued_at = now;
  c.not_before = now - 1;
  c.expires = now + ttl_.count();
  unsigned char id[16];
  if (RAND_bytes(id, sizeof id) == 1) c.id = base64url_encode(std::string_view(reinterpret_cast<char*>(id), sizeof id));
  for (const Access& want : requested) {
    if (want.type == "registry" && want.name == "catalog") {
      if (!subject.empty()) c.access.push_back(Access{"registry", "catalog", {"*"}});
      continue;
    }
    if (want.type != "repository") continue;
    const uint8_t grant = parse_actions(want.actions) & allowed(want.name);
    if (grant == 0) continue;
    bool merged = false;
    for (Access& have : c.access) {
      if (have.type == "repository" && have.name == want.name) {
        have.actions = action_names(parse_actions(have.actions) | grant);
        merged = true;
      }
    }
    if (!merged) c.access.push_back(Access{"repository", want.name, action_names(grant)});
  }
  auto token = sign_jwt(c, keys_.front());
  if (!token) return std::unexpected(token.error());
  return IssuedToken{std::move(*token), ttl_.count(), now, c.access};
}

}  // namespace wharf::auth
