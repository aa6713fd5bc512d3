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
#include "src/auth/x5c.hpp"

#include <nlohmann/json.hpp>

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

TEST_CASE("CertStore::verify_chain") {
  // A self-signed P-256 certificate whose key was thrown away (also the root of fuzz_jwt).
  const std::string root_pem = R"(-----BEGIN CERTIFICATE-----
MIIBgDCCASWgAwIBAgIUY2m98KCVjBmkkLKZv1AW+NFhsCUwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJZnV6ei1yb290MCAXDTI2MTIwMTExMzIxNVoYDzIxMjYxMTA3
MTEzMjE1WjAUMRIwEAYDVQQDDAlmdXp6LXJvb3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARQ324bdFudiV2w7d0QMOmPq93ERwn/qnB1+hQbRUQm2COgX/lsFxjS
33QEEUMBYqtm2LsPlMMbnd07f+ZqXYy7o1MwUTAdBgNVHQ4EFgQUeEwmL2Y3zPxj
s7U6lD5s62ulsRAwHwYDVR0jBBgwFoAUeEwmL2Y3zPxjs7U6lD5s62ulsRAwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA7oyzIBGHFgbIoCtHrq9W
dn/IfzcFSjytxzgVQIn7WOsCIQChY0WlwRR/ixDGaqUV880o8cExB5o8VV49a8Oq
HRrbMQ==
-----END CERTIFICATE-----
)";
  auto store = CertStore::parse(root_pem);
  REQUIRE(store.has_value());
  std::string b64;
  for (std::string_view rest = root_pem; !rest.empty();) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    if (!line.empty() && !line.starts_with("-----")) b64 += line;
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  const int64_t now = 1'800'000'000;

  SUBCASE("a certificate of the store vouches for its own key") {
    auto key = store->verify_chain(nlohmann::json::array({b64}), now);
    REQUIRE(key.has_value());
    CHECK(key->alg == Alg::ES256);
  }
  SUBCASE("outside its validity the chain is refused") {
    auto key = store->verify_chain(nlohmann::json::array({b64}), 0);
    REQUIRE_FALSE(key.has_value());
    CHECK(key.error().find("does not verify") != std::string::npos);
  }
  SUBCASE("malformed x5c headers get a message") {
    for (const nlohmann::json& bad :
         {nlohmann::json("text"), nlohmann::json::array(), nlohmann::json::array({1}), nlohmann::json::array({"!!!!"}),
          nlohmann::json::array({b64.substr(0, 40)}), nlohmann::json::array({b64 + "AAAA"}),
          nlohmann::json(std::vector<std::string>(kMaxX5cCerts + 1, b64))}) {
      CAPTURE(bad.dump().substr(0, 60));
      auto key = store->verify_chain(bad, now);
      REQUIRE_FALSE(key.has_value());
      CHECK_FALSE(key.error().empty());
    }
  }
  SUBCASE("a PEM bundle without certificates is not a store") { CHECK_FALSE(CertStore::parse("nothing").has_value()); }
}
