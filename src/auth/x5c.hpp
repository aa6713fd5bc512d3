#pragma once
// The "x5c" JWS header (RFC 7515 §4.1.6): the token server sends its signing certificate (and any
// intermediates) with each token, and the chain must lead to a certificate of registry:2's
// rootcertbundle. Verified with OpenSSL's X509_verify_cert; the anchors need not be self-signed.
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "src/auth/keys.hpp"

struct x509_store_st;

namespace wharf::auth {

// Most certificates accepted in one x5c header.
inline constexpr size_t kMaxX5cCerts = 8;

// The trust anchors for x5c chains: the certificates of a PEM bundle (one owner of the X509_STORE).
class CertStore {
 public:
  // Reads the certificates of a PEM bundle; fails naming the path if it cannot be read or holds none.
  static std::expected<CertStore, std::string> load(const std::filesystem::path& path);
  // As above, from PEM text.
  static std::expected<CertStore, std::string> parse(std::string_view pem);
  // The key of the chain's first certificate, if the chain (standard base64 DER certificates, leaf
  // first) verifies up to one of these anchors at time `now` (seconds since the epoch); otherwise a short
  // reason fit for a 401 body. Never throws.
  std::expected<Key, std::string> verify_chain(const nlohmann::json& x5c, int64_t now) const;

 private:
  std::shared_ptr<x509_store_st> store_;
};

}  // namespace wharf::auth
