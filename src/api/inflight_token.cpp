#include "src/api/inflight_token.hpp"

#include <cctype>

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

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

}  // namespace

std::string owner_address(std::string_view owner) {
  const size_t at = owner.rfind('@');
  if (at == std::string_view::npos) return {};
  const std::string_view addr = owner.substr(at + 1);
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  std::string_view host = addr.substr(0, colon);
  const auto port = util::parse_u64(addr.substr(colon + 1), 65535);
  if (!port || *port == 0) return {};
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return {};
    for (char c : host.substr(1, host.size() - 2))
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return {};
  } else {
    for (char c : host)
      if (!host_char(c)) return {};
  }
  return std::string(addr);
}

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
