// JWS compact tokens: base64url, ES256 (raw r||s on the wire, DER for OpenSSL) and RS256 with
// EVP_DigestSign/EVP_DigestVerify, and the claim checks registry:2 makes.
#include "src/auth/jwt.hpp"

#include <optional>

#include "src/auth/x5c.hpp"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "src/oci/names.hpp"
#include "src/util/json.hpp"

namespace wharf::auth {
namespace {

constexpr size_t kEcCoordinate = 32;  // P-256: r and s are 32 bytes each

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EcSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// raw r||s (64 bytes) → DER ECDSA-Sig-Value; empty on failure.
std::string ecdsa_raw_to_der(std::string_view raw) {
  if (raw.size() != 2 * kEcCoordinate) return {};
  std::unique_ptr<ECDSA_SIG, EcSigFree> sig(ECDSA_SIG_new());
  if (!sig) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(p, int(kEcCoordinate), nullptr);
  BIGNUM* s = BN_bin2bn(p + kEcCoordinate, int(kEcCoordinate), nullptr);
  if (r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return {};
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), size_t(len));
  OPENSSL_free(der);
  return out;
}

// DER ECDSA-Sig-Value → raw r||s; empty on failure.
std::string ecdsa_der_to_raw(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, EcSigFree> sig(d2i_ECDSA_SIG(nullptr, &p, long(der.size())));
  if (!sig) return {};
  std::string out(2 * kEcCoordinate, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), o, int(kEcCoordinate)) != int(kEcCoordinate) ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), o + kEcCoordinate, int(kEcCoordinate)) != int(kEcCoordinate)) {
    return {};
  }
  return out;
}

bool verify_signature(const Key& key, std::string_view signed_part, std::string_view signature) {
  std::string der;
  if (key.alg == Alg::ES256) {
    der = ecdsa_raw_to_der(signature);
    if (der.empty()) return false;
    signature = der;
  }
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

std::expected<nlohmann::json, std::string> decode_object(std::string_view part, const char* what) {
  auto text = base64url_decode(part);
  if (!text) return std::unexpected(std::string("malformed token: ") + what + " is not base64url");
  util::JsonLimits limits;
  limits.max_depth = 8;
  limits.max_bytes = kMaxTokenBytes;
  auto json = util::parse_json(*text, limits);
  if (!json || !json->is_object()) return std::unexpected(std::string("malformed token: ") + what + " is not a JSON object");
  return std::move(*json);
}

// A NumericDate member: absent → 0; present but not a number → failure.
std::expected<int64_t, std::string> numeric_date(const nlohmann::json& claims, const char* name) {
  const auto it = claims.find(name);
  if (it == claims.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (d > -9.2e18 && d < 9.2e18) return int64_t(d);
  }
  return std::unexpected(std::string("malformed token: claim ") + name + " is not a number");
}

std::expected<std::vector<Access>, std::string> access_claim(const nlohmann::json& claims) {
  std::vector<Access> out;
  const auto it = claims.find("access");
  if (it == claims.end() || it->is_null()) return out;
  if (!it->is_array()) return std::unexpected("malformed token: access is not a list");
  for (const auto& entry : *it) {
    if (!entry.is_object()) return std::unexpected("malformed token: an access entry is not an object");
    Access a;
    const auto type = entry.find("type");
    const auto name = entry.find("name");
    if (type == entry.end() || !type->is_string() || name == entry.end() || !name->is_string())
      return std::unexpected("malformed token: an access entry lacks type or name");
    a.type = type->get<std::string>();
    a.name = name->get<std::string>();
    if (a.type == "repository" && !oci::valid_repo_name(a.name))
      return std::unexpected("token access names an invalid repository");
    if (const auto actions = entry.find("actions"); actions != entry.end() && !actions->is_null()) {
      if (!actions->is_array()) return std::unexpected("malformed token: access actions is not a list");
      for (const auto& act : *actions) {
        if (!act.is_string()) return std::unexpected("malformed token: an access action is not a string");
        a.actions.push_back(act.get<std::string>());
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

std::string base64url_encode(std::string_view data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8 | uint8_t(data[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (const size_t rest = data.size() - i; rest > 0) {
    uint32_t v = uint32_t(uint8_t(data[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(data[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (rest == 2) out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::expected<std::string, std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::unexpected("bad base64url length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = b64_value(c);
    if (v < 0) return std::unexpected("bad base64url character");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::unexpected("bad base64url padding bits");
  return out;
}

std::expected<Claims, std::string> verify_jwt(std::string_view token, std::span<const Key> keys,
                                              const VerifyOptions& options) {
  return verify_jwt(token, keys, options, nullptr);
}

std::expected<Claims, std::string> verify_jwt(std::string_view token, std::span<const Key> keys,
                                              const VerifyOptions& options, const CertStore* roots) {
  if (token.size() > kMaxTokenBytes) {
    return std::unexpected(std::string("token too large (") + std::to_string(token.size()) + " bytes; at most " +
                           std::to_string(kMaxTokenBytes) + ")");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return std::unexpected("malformed token: expected three dot-separated parts");
  auto header = decode_object(token.substr(0, dot1), "header");
  if (!header) return std::unexpected(header.error());
  const auto alg_it = header->find("alg");
  if (alg_it == header->end() || !alg_it->is_string()) return std::unexpected("malformed token: no alg in header");
  const std::string alg_text = alg_it->get<std::string>();
  Alg alg;
  if (alg_text == "ES256") {
    alg = Alg::ES256;
  } else if (alg_text == "RS256") {
    alg = Alg::RS256;
  } else {
    return std::unexpected(std::string("token algorithm \"") + alg_text.substr(0, 16) + "\" is not accepted (ES256 or RS256 only)");
  }
  std::string kid;
  if (const auto k = header->find("kid"); k != header->end() && k->is_string()) kid = k->get<std::string>();
  auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!signature) return std::unexpected("malformed token: signature is not base64url");
  const std::string_view signed_part = token.substr(0, dot2);
  std::optional<Key> chained;  // the key an x5c chain vouches for, when there are roots to check it against
  if (const auto x5c = header->find("x5c"); roots != nullptr && x5c != header->end()) {
    auto key = roots->verify_chain(*x5c, options.now);
    if (!key) return std::unexpected(key.error());
    if (key->alg != alg) return std::unexpected("token algorithm does not match its x5c certificate's key");
    chained = std::move(*key);
    keys = std::span<const Key>(&*chained, 1);
  }
  bool named = false;
  for (const Key& key : keys) named = named || (!kid.empty() && key.kid == kid && key.alg == alg);
  if (chained) named = false;
  bool verified = false;
  for (const Key& key : keys) {
    if (key.alg != alg || (named && key.kid != kid)) continue;
    if (verify_signature(key, signed_part, *signature)) {
      verified = true;
      break;
    }
  }
  if (!verified) return std::unexpected("token signature does not verify with any trusted key");

  auto body = decode_object(token.substr(dot1 + 1, dot2 - dot1 - 1), "payload");
  if (!body) return std::unexpected(body.error());
  Claims c;
  auto text_claim = [&](const char* name, std::string& out) -> bool {
    const auto it = body->find(name);
    if (it == body->end() || it->is_null()) return true;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  if (!text_claim("iss", c.issuer) || !text_claim("sub", c.subject) || !text_claim("jti", c.id))
    return std::unexpected("malformed token: iss, sub and jti must be strings");
  if (const auto aud = body->find("aud"); aud != body->end()) {
    if (aud->is_string()) {
      c.audience.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      for (const auto& a : *aud)
        if (a.is_string()) c.audience.push_back(a.get<std::string>());
    }
  }
  auto exp = numeric_date(*body, "exp");
  auto nbf = numeric_date(*body, "nbf");
  auto iat = numeric_date(*body, "iat");
  if (!exp) return std::unexpected(exp.error());
  if (!nbf) return std::unexpected(nbf.error());
  if (!iat) return std::unexpected(iat.error());
  c.expires = *exp;
  c.not_before = *nbf;
  c.issued_at = *iat;
  auto access = access_claim(*body);
  if (!access) return std::unexpected(access.error());
  c.access = std::move(*access);

  if (c.issuer != options.issuer) return std::unexpected(std::string("token issuer \"") + c.issuer.substr(0, 64) + "\" is not trusted");
  bool for_us = false;
  for (const auto& a : c.audience) for_us = for_us || a == options.audience;
  if (!for_us) return std::unexpected("token is for another service (audience does not name this registry)");
  if (body->find("exp") == body->end()) return std::unexpected("malformed token: no exp claim");
  if (c.expires + options.leeway <= options.now) return std::unexpected("token expired");
  if (c.not_before != 0 && c.not_before - options.leeway > options.now) return std::unexpected("token not valid yet");
  if (c.issued_at != 0 && c.issued_at - options.leeway > options.now) return std::unexpected("token issued in the future");
  return c;
}

std::expected<std::string, std::string> sign_jwt(const Claims& claims, const Key& key) {
  nlohmann::json header{{"typ", "JWT"}, {"alg", std::string(alg_name(key.alg))}, {"kid", key.kid}};
  nlohmann::json body{{"iss", claims.issuer}, {"sub", claims.subject}, {"exp", claims.expires}};
  if (claims.audience.size() == 1) body["aud"] = claims.audience.front();
  else body["aud"] = claims.audience;
  if (claims.not_before != 0) body["nbf"] = claims.not_before;
  if (claims.issued_at != 0) body["iat"] = claims.issued_at;
  if (!claims.id.empty()) body["jti"] = claims.id;
  nlohmann::json access = nlohmann::json::array();
  for (const Access& a : claims.access) access.push_back({{"type", a.type}, {"name", a.name}, {"actions", a.actions}});
  body["access"] = std::move(access);
  std::string out = base64url_encode(header.dump());
  out += '.';
  out += base64url_encode(body.dump());
  MdCtx ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(out.data()), out.size()) != 1) {
    return std::unexpected("cannot sign the token");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(out.data()), out.size()) != 1) {
    return std::unexpected("cannot sign the token");
  }
  sig.resize(len);
  if (key.alg == Alg::ES256) {
    sig = ecdsa_der_to_raw(sig);
    if (sig.empty()) return std::unexpected("cannot sign the token");
  }
  out += '.';
  out += base64url_encode(sig);
  return out;
}

}  // namespace wharf::auth
