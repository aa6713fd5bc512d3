#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <ctime>
#include <memory>
#include <string>

#include "src/auth/jwks.hpp"
#include "src/auth/jwt.hpp"

using namespace wharf::auth;

namespace {

// A fresh private key with its JWK (public members only).
struct JwkKey {
  std::shared_ptr<EVP_PKEY> pkey;
  std::string jwk;

  static std::string member(EVP_PKEY* k, const char* param, int width = 0) {
    BIGNUM* bn = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
    std::string raw(size_t(width > 0 ? width : BN_num_bytes(bn)), '\0');
    REQUIRE(BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(raw.data()), int(raw.size())) == int(raw.size()));
    BN_free(bn);
    return base64url_encode(raw);
  }
  JwkKey(bool ec, const std::string& kid, int rsa_bits = 2048) {
    EVP_PKEY* k = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(unsigned(rsa_bits));
    REQUIRE(k != nullptr);
    pkey.reset(k, EVP_PKEY_free);
    if (ec) {
      jwk = R"({"kty":"EC","crv":"P-256","use":"sig","kid":")" + kid + R"(","x":")" +
            member(k, OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" + member(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + R"("})";
    } else {
      jwk = R"({"kty":"RSA","alg":"RS256","kid":")" + kid + R"(","n":")" + member(k, OSSL_PKEY_PARAM_RSA_N) +
            R"(","e":")" + member(k, OSSL_PKEY_PARAM_RSA_E) + R"("})";
    }
  }
  // A signing key for this private key, announcing `kid`.
  Key signer(const std::string& kid) const {
    EVP_PKEY_up_ref(pkey.get());
    Key k = *key_from_pkey(pkey.get());
    k.kid = kid;
    return k;
  }
};

std::string set_of(std::initializer_list<std::string> jwks) {
  std::string out = R"({"keys":[)";
  for (const auto& j : jwks) out += (out.back() == '[' ? "" : ",") + j;
  return out + "]}";
}

std::string token(const Key& signer, int64_t now) {
  Claims c;
  c.issuer = "issuer";
  c.audience = {"service"};
  c.subject = "alice";
  c.expires = now + 300;
  c.access = {Access{"repository", "team/app", {"pull"}}};
  return *sign_jwt(c, signer);
}

}  // namespace

TEST_CASE("parse_jwks") {
  const int64_t now = int64_t(time(nullptr));
  const VerifyOptions opts{"issuer", "service", now, 60};
  const JwkKey ec1(true, "ec-1"), ec2(true, "ec-2"), rsa(false, "rsa-1");

  SUBCASE("RSA and P-256 keys verify tokens, chosen by kid") {
    auto keys = parse_jwks(set_of({ec1.jwk, ec2.jwk, rsa.jwk}));
    REQUIRE(keys.has_value());
    REQUIRE(keys->size() == 3);
    CHECK((*keys)[0].kid == "ec-1");
    CHECK((*keys)[0].alg == Alg::ES256);
    CHECK((*keys)[2].alg == Alg::RS256);
    CHECK(verify_jwt(token(ec2.signer("ec-2"), now), *keys, opts).has_value());
    CHECK(verify_jwt(token(rsa.signer("rsa-1"), now), *keys, opts).has_value());
    // The kid names ec-1, whose key did not sign it: refused, the other keys are not tried.
    CHECK_FALSE(verify_jwt(token(ec2.signer("ec-1"), now), *keys, opts).has_value());
    // An unknown kid: every key of the algorithm is tried.
    CHECK(verify_jwt(token(ec1.signer("elsewhere"), now), *keys, opts).has_value());
  }
  SUBCASE("a token signed by a key outside the set is refused") {
    auto keys = parse_jwks(set_of({ec1.jwk}));
    REQUIRE(keys.has_value());
    CHECK_FALSE(verify_jwt(token(ec2.signer("ec-1"), now), *keys, opts).has_value());
  }
  SUBCASE("keys for encryption, of other types or algorithms are skipped") {
    const std::string enc = R"({"kty":"EC","crv":"P-256","use":"enc","x":"AA","y":"AA"})";
    const std::string oct = R"({"kty":"oct","k":"c2VjcmV0"})";
    const std::string ps = R"({"kty":"RSA","alg":"PS256","n":"AQAB","e":"AQAB"})";
    auto keys = parse_jwks(set_of({enc, oct, ps, ec1.jwk}));
    REQUIRE(keys.has_value());
    CHECK(keys->size() == 1);
    auto none = parse_jwks(set_of({enc, oct}));
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().find("no RS256 or ES256") != std::string::npos);
  }
  SUBCASE("malformed sets and keys fail with a message") {
    const std::string off_curve = R"({"kty":"EC","crv":"P-256","x":")" + base64url_encode(std::string(32, '\x01')) +
                                  R"(","y":")" + base64url_encode(std::string(32, '\x02')) + R"("})";
    const JwkKey small(false, "small", 1024);
    for (const std::string& bad :
         {std::string("not json"), std::string("[]"), std::string(R"({"keys":{}})"), std::string(R"({"keys":[1]})"),
          set_of({off_curve}), set_of({small.jwk}), set_of({R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"})"}),
          set_of({R"({"kty":"RSA","n":"not base64!","e":"AQAB"})"}), set_of({R"({"kty":"RSA","e":"AQAB"})"}),
          set_of({R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})"})}) {
      auto r = parse_jwks(bad);
      CAPTURE(bad);
      REQUIRE_FALSE(r.has_value());
      CHECK_FALSE(r.error().empty());
    }
    auto r = parse_jwks(set_of({rsa.jwk, off_curve}));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().starts_with("keys[1]: "));
  }
}
