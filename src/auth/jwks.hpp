#pragma once
// JSON Web Key Sets (RFC 7517) of external token servers (registry:2's auth.token.jwks): RSA keys
// (n, e) and P-256 EC keys (x, y), built into OpenSSL keys with EVP_PKEY_fromdata and held to the same
// rules as the PEM keys (RS256 >= 2048 bits, ES256). A key's "kid" is the one tokens name.
#include <expected>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "src/auth/keys.hpp"

namespace wharf::auth {

// Largest JWKS document read.
inline constexpr size_t kMaxJwksBytes = 1024 * 1024;

// Parses a JWKS document {"keys": [...]} with the bounded JSON parser. Keys for encryption ("use":
// "enc"), of other types or with another "alg" are skipped; a key of a supported type that is malformed
// (bad base64url, a point not on the curve, RSA under 2048 bits) fails the whole set, naming its index.
// Fails too if no usable key remains. Never throws.
std::expected<std::vector<Key>, std::string> parse_jwks(std::string_view json);

// Reads and parses a JWKS file; failures name the path.
std::expected<std::vector<Key>, std::string> load_jwks(const std::filesystem::path& path);

}  // namespace wharf::auth
