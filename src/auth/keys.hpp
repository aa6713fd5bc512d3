#pragma once
// Keys for signing and verifying tokens: PEM files read with OpenSSL, each key with its JWS algorithm
// (ES256 for P-256 EC keys, RS256 for RSA keys of at least 2048 bits) and its key id in libtrust's
// form, the one registry:2 and docker_auth put in the "kid" header.
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct evp_pkey_st;

namespace wharf::auth {

// The JWS algorithms wharf signs and verifies with; no others are accepted.
enum class Alg { ES256, RS256 };

// The JWS name of an algorithm ("ES256", "RS256").
std::string_view alg_name(Alg alg);

// A key (public, or private for signing): one shared owner of the OpenSSL handle.
struct Key {
  std::shared_ptr<evp_pkey_st> pkey;  // freed with EVP_PKEY_free when the last copy goes
  Alg alg = Alg::ES256;
  std::string kid;  // libtrust key id of the public key
};

// Reads every certificate and public key in a PEM bundle (registry:2's rootcertbundle). Fails naming
// the path if it cannot be read, holds no usable key, or holds a key of another type or size.
std::expected<std::vector<Key>, std::string> load_public_keys(const std::filesystem::path& path);
// As above, from PEM text.
std::expected<std::vector<Key>, std::string> parse_public_keys(std::string_view pem);

// Takes ownership of an OpenSSL key and gives it its algorithm and libtrust key id. Fails (freeing it)
// if it is not a P-256 EC or an RSA (>= 2048 bits) key.
std::expected<Key, std::string> key_from_pkey(evp_pkey_st* pkey);

// Reads one private key (PEM, PKCS#8 or traditional) to sign with. Fails naming the path if it cannot
// be read or is not a P-256 EC or an RSA (>= 2048 bits) key.
std::expected<Key, std::string> load_private_key(const std::filesystem::path& path);
// As above, from PEM text.
std::expected<Key, std::string> parse_private_key(std::string_view pem);

}  // namespace wharf::auth
