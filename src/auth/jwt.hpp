#pragma once
// JSON Web Tokens as Docker's token authentication uses them: JWS compact serialization signed with
// ES256 or RS256 (never "none" or HMAC), claims iss, sub, aud, exp, nbf, iat and "access".
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/auth/keys.hpp"

namespace wharf::auth {

// One grant of the "access" claim, e.g. {type: repository, name: team-a/app, actions: [pull, push]}.
struct Access {
  std::string type;
  std::string name;
  std::vector<std::string> actions;
  // Same type, name and actions (in order).
  bool operator==(const Access&) const = default;
};

// The claims wharf reads and writes.
struct Claims {
  std::string issuer;                 // iss
  std::string subject;                // sub (the account; empty for anonymous)
  std::vector<std::string> audience;  // aud (a string or a list on the wire)
  int64_t expires = 0;                // exp, seconds since the epoch (required)
  int64_t not_before = 0;             // nbf (0: absent)
  int64_t issued_at = 0;              // iat (0: absent)
  std::string id;                     // jti
  std::vector<Access> access;
};

// What a token must satisfy besides its signature.
struct VerifyOptions {
  std::string_view issuer;    // iss must equal this
  std::string_view audience;  // aud must contain this (the service)
  int64_t now = 0;            // seconds since the epoch
  int64_t leeway = 60;        // clock skew allowed on exp, nbf and iat
};

// Tokens longer than this are refused before any decoding.
constexpr size_t kMaxTokenBytes = 32 * 1024;

// Verifies a compact JWS against `keys` (the key named by "kid" if one matches, else every key of the
// token's algorithm) and checks the claims. Fails with a short message fit for a 401 body: malformed
// token, refused algorithm, bad signature, wrong issuer or audience, expired, not yet valid, or an
// access claim naming an invalid repository. Never throws.
std::expected<Claims, std::string> verify_jwt(std::string_view token, std::span<const Key> keys,
                                              const VerifyOptions& options);

class CertStore;
// As above, except that a token with an "x5c" header is verified with the key of its chain's first
// certificate, and only if the chain leads to a certificate of `roots` (a chain that does not is refused).
// Without `roots` the header is ignored.
std::expected<Claims, std::string> verify_jwt(std::string_view token, std::span<const Key> keys,
                                              const VerifyOptions& options, const CertStore* roots);

// Signs `claims` with `key` (header: alg, typ JWT, kid). Fails only if OpenSSL does.
std::expected<std::string, std::string> sign_jwt(const Claims& claims, const Key& key);

// base64url without padding, as JWS uses it.
std::string base64url_encode(std::string_view data);
// Decodes base64url without padding; fails for any other character, a bad length or stray bits.
std::expected<std::string, std::string> base64url_decode(std::string_view text);

}  // namespace wharf::auth
