#include "src/api/inflight_token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "src/util/number.hpp"

namespace wharf::api {

namespace {

std::string mac_hex(std::string_view secret, std::string_view digest, std::string_view expiry) {
  std::string msg(digest);
  msg.append("\n").append(expiry);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &n))
    return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 15]);
  }
  return hex;
}

}  // namespace

std::string inflight_token(std::string_view secret, std::string_view digest, int64_t expires) {
  if (secret.empty() || expires < 0) return {};
  const std::string expiry = std::to_string(expires);
  std::string mac = mac_hex(secret, digest, expiry);
  if (mac.empty()) return {};
  return std::string(expiry).append(".").append(mac);
}

InflightTokenCheck check_inflight_token(std::string_view secret, std::string_view digest, std::string_view token,
                                        int64_t now) {
  if (secret.empty()) return InflightTokenCheck::Invalid;
  const size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 19) return InflightTokenCheck::Invalid;
  const std::string_view expiry = token.substr(0, dot);
  if (expiry.size() > 1 && expiry.front() == '0') return InflightTokenCheck::Invalid;  // one spelling per expiry
  const auto expires = util::parse_u64(expiry);
  if (!expires || *expires > static_cast<uint64_t>(INT64_MAX)) return InflightTokenCheck::Invalid;
  const std::string want = mac_hex(secret, digest, expiry);
  const std::string_view got = token.substr(dot + 1);
  if (want.empty() || got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0)
    return InflightTokenCheck::Invalid;
  const auto at = static_cast<int64_t>(*expires);
  if (at <= now) return InflightTokenCheck::Expired;
  if (at > now + kInflightTokenMaxLife) return InflightTokenCheck::Invalid;
  return InflightTokenCheck::Valid;
}

}  // namespace wharf::api
