// JWKS → OpenSSL keys through OSSL_PARAM_BLD and EVP_PKEY_fromdata (no hand-made key math).
#include "src/auth/jwks.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "src/auth/jwt.hpp"
#include "src/util/json.hpp"

namespace wharf::auth {
namespace {

struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct BldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

constexpr size_t kMaxKeys = 64;
constexpr size_t kMaxRsaBytes = 2048;  // 16384-bit modulus

// A member that must be a non-empty base64url string, decoded.
std::expected<std::string, std::string> b64_member(const nlohmann::json& jwk, const char* name, size_t max) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return std::unexpected(std::string("\"") + name + "\" missing or not a string");
  auto raw = base64url_decode(it->get_ref<const std::string&>());
  if (!raw || raw->empty()) return std::unexpected(std::string("\"") + name + "\" is not base64url");
  if (raw->size() > max) return std::unexpected(std::string("\"") + name + "\" is too long");
  return *raw;
}

std::string string_member(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  return it != jwk.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Builds a public key of `type` ("RSA" or "EC") from the parameters in `bld`.
std::expected<EVP_PKEY*, std::string> from_params(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || pkey == nullptr)
    return std::unexpected(std::string("OpenSSL refused the ") + type + " parameters");
  // For EC this checks that the point lies on the curve.
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    EVP_PKEY_free(pkey);
    return std::unexpected(std::string("the ") + type + " public key is invalid");
  }
  return pkey;
}

std::expected<EVP_PKEY*, std::string> rsa_key(const nlohmann::json& jwk) {
  auto n = b64_member(jwk, "n", kMaxRsaBytes);
  if (!n) return std::unexpected(n.error());
  auto e = b64_member(jwk, "e", 8);
  if (!e) return std::unexpected(e.error());
  auto to_bn = [](const std::string& s) {
    return std::unique_ptr<BIGNUM, BnFree>(BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()), int(s.size()), nullptr));
  };
  auto bn_n = to_bn(*n), bn_e = to_bn(*e);
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    return std::unexpected("out of memory");
  return from_params("RSA", bld.get());
}

std::expected<EVP_PKEY*, std::string> ec_key(const nlohmann::json& jwk) {
  if (string_member(jwk, "crv") != "P-256") return std::unexpected("only the P-256 curve is supported");
  auto x = b64_member(jwk, "x", 32);
  if (!x) return std::unexpected(x.error());
  auto y = b64_member(jwk, "y", 32);
  if (!y) return std::unexpected(y.error());
  if (x->size() != 32 || y->size() != 32) return std::unexpected("\"x\" and \"y\" must be 32 bytes each");
  std::string point = std::string(1, '\x04').append(*x).append(*y);  // uncompressed SEC1 point
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    return std::unexpected("out of memory");
  return from_params("EC", bld.get());
}

}  // namespace

std::expected<std::vector<Key>, std::string> parse_jwks(std::string_view json) {
  util::JsonLimits limits;
  limits.max_bytes = kMaxJwksBytes;
  limits.max_depth = 8;
  auto doc = util::parse_json(json, limits);
  if (!doc) return std::unexpected("not a JWKS document: " + doc.error().message);
  if (!doc->is_object()) return std::unexpected("not a JWKS document: expected a JSON object");
  auto keys = doc->find("keys");
  if (keys == doc->end() || !keys->is_array()) return std::unexpected("not a JWKS document: \"keys\" is not a list");
  if (keys->size() > kMaxKeys) return std::unexpected("more than " + std::to_string(kMaxKeys) + " keys");
  std::vector<Key> out;
  for (size_t i = 0; i < keys->size(); ++i) {
    const nlohmann::json& jwk = (*keys)[i];
    const std::string at = "keys[" + std::to_string(i) + "]: ";
    if (!jwk.is_object()) return std::unexpected(at + "not a JSON object");
    const std::string kty = string_member(jwk, "kty");
    const std::string use = string_member(jwk, "use");
    const std::string alg = string_member(jwk, "alg");
    if (use == "enc" || (kty != "RSA" && kty != "EC")) continue;  // not for verifying signatures here
    if (!alg.empty() && alg != (kty == "RSA" ? "RS256" : "ES256")) continue;
    auto pkey = kty == "RSA" ? rsa_key(jwk) : ec_key(jwk);
    if (!pkey) return std::unexpected(at + pkey.error());
    auto key = key_from_pkey(*pkey);
    if (!key) return std::unexpected(at + key.error());
    if (auto kid = string_member(jwk, "kid"); !kid.empty()) key->kid = std::move(kid);
    out.push_back(std::move(*key));
  }
  if (out.empty()) return std::unexpected("no RS256 or ES256 signing key in the set");
  return out;
}

std::expected<std::vector<Key>, std::string> load_jwks(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected("cannot read " + path.string() + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::unexpected("cannot read " + path.string() + ": " + std::strerror(errno));
  auto keys = parse_jwks(text.str());
  if (!keys) return std::unexpected(path.string() + ": " + keys.error());
  return keys;
}

}  // namespace wharf::auth
