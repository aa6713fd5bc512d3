// SigV4 text rules; the primitives are OpenSSL's (EVP_Digest for SHA-256, HMAC() for HMAC-SHA256).
#include "src/s3/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

namespace wharf::s3 {

namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Header values: leading and trailing spaces removed, inner runs of spaces folded into one.
std::string trim_fold(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return hex(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string uri_encode(std::string_view s, bool encode_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (unreserved(c) || (c == '/' && !encode_slash)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
  }
  return out;
}

std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [k, v] : query) encoded.emplace_back(uri_encode(k, true), uri_encode(v, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out.append(k).append("=").append(v);
  }
  return out;
}

std::string canonical_request(const SignInput& in, std::string& signed_headers) {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(in.headers.size());
  for (const auto& [k, v] : in.headers) headers.emplace_back(lower(k), trim_fold(v));
  std::stable_sort(headers.begin(), headers.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canonical_headers;
  signed_headers.clear();
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {  // repeated header: values joined by commas
      canonical_headers.pop_back();
      canonical_headers.append(",").append(headers[i].second).append("\n");
      continue;
    }
    canonical_headers.append(headers[i].first).append(":").append(headers[i].second).append("\n");
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += headers[i].first;
  }
  std::string out;
  out.append(in.method).append("\n");
  out.append(uri_encode(in.path.empty() ? std::string_view("/") : in.path, false)).append("\n");
  out.append(canonical_query(in.query)).append("\n");
  out.append(canonical_headers).append("\n");
  out.append(signed_headers).append("\n");
  out.append(in.payload_hash);
  return out;
}

std::string string_to_sign(std::string_view amz_date, const Scope& scope, std::string_view canonical) {
  std::string out("AWS4-HMAC-SHA256\n");
  out.append(amz_date).append("\n");
  out.append(amz_date.substr(0, 8)).append("/").append(scope.region).append("/").append(scope.service);
  out.append("/aws4_request\n");
  out.append(sha256_hex(canonical));
  return out;
}

std::string signing_key(std::string_view secret_key, std::string_view date, const Scope& scope) {
  std::string key = hmac_sha256(std::string("AWS4").append(secret_key), date);
  key = hmac_sha256(key, scope.region);
  key = hmac_sha256(key, scope.service);
  return hmac_sha256(key, "aws4_request");
}

std::string signature(const Credentials& creds, const Scope& scope, std::string_view amz_date, const SignInput& in) {
  std::string signed_headers;
  const std::string canonical = canonical_request(in, signed_headers);
  const std::string key = signing_key(creds.secret_key, amz_date.substr(0, 8), scope);
  return hex(hmac_sha256(key, string_to_sign(amz_date, scope, canonical)));
}

std::string authorization(const Credentials& creds, const Scope& scope, std::string_view amz_date, const SignInput& in) {
  std::string signed_headers;
  const std::string canonical = canonical_request(in, signed_headers);
  const std::string key = signing_key(creds.secret_key, amz_date.substr(0, 8), scope);
  const std::string sig = hex(hmac_sha256(key, string_to_sign(amz_date, scope, canonical)));
  std::string out("AWS4-HMAC-SHA256 Credential=");
  out.append(creds.access_key).append("/").append(amz_date.substr(0, 8)).append("/").append(scope.region);
  out.append("/").append(scope.service).append("/aws4_request, SignedHeaders=").append(signed_headers);
  out.append(", Signature=").append(sig);
  return out;
}

std::string presign_query(const Credentials& creds, const Scope& scope, std::string_view amz_date,
                          std::chrono::seconds expires, const SignInput& in) {
  const long long secs = std::clamp<long long>(expires.count(), 1, 7LL * 24 * 3600);
  SignInput signed_in = in;
  std::string credential(creds.access_key);
  credential.append("/").append(amz_date.substr(0, 8)).append("/").append(scope.region).append("/");
  credential.append(scope.service).append("/aws4_request");
  signed_in.query.emplace_back("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
  signed_in.query.emplace_back("X-Amz-Credential", credential);
  signed_in.query.emplace_back("X-Amz-Date", std::string(amz_date));
  signed_in.query.emplace_back("X-Amz-Expires", std::to_string(secs));
  if (!creds.session_token.empty()) signed_in.query.emplace_back("X-Amz-Security-Token", creds.session_token);
  signed_in.query.emplace_back("X-Amz-SignedHeaders", "host");
  std::vector<std::pair<std::string, std::string>> host_only;
  for (const auto& [k, v] : in.headers)
    if (lower(k) == "host") host_only.emplace_back(k, v);
  signed_in.headers = std::move(host_only);
  signed_in.payload_hash = "UNSIGNED-PAYLOAD";
  const std::string sig = signature(creds, scope, amz_date, signed_in);
  return canonical_query(signed_in.query).append("&X-Amz-Signature=").append(sig);
}

}  // namespace wharf::s3
