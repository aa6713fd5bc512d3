#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

#include "src/auth/jwt.hpp"

using namespace wharf::auth;

namespace {

// A fresh key as PEM text (private and public).
struct TestKey {
  std::string private_pem;
  std::string public_pem;
  explicit TestKey(bool ec) {
    EVP_PKEY* k = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
    REQUIRE(k != nullptr);
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    private_pem = drain(b);
    PEM_write_bio_PUBKEY(b, k);
    public_pem = drain(b);
    BIO_free(b);
    EVP_PKEY_free(k);
  }
  static std::string drain(BIO* b) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, size_t(n));
    (void)BIO_reset(b);
    return out;
  }
  Key signer() const { return *parse_private_key(private_pem); }
  std::vector<Key> verifiers() const { return *parse_public_keys(public_pem); }
};

const TestKey& ec_key() {
  static const TestKey k(true);
  return k;
}

Claims good_claims(int64_t now) {
  Claims c;
  c.issuer = "auth.example";
  c.subject = "alice";
  c.audience = {"registry.example"};
  c.expires = now + 300;
  c.issued_at = now;
  c.not_before = now;
  c.access = {Access{"repository", "team-a/app", {"pull", "push"}}};
  return c;
}

VerifyOptions opts(int64_t now) { return VerifyOptions{"auth.example", "registry.example", now, 60}; }

}  // namespace

TEST_CASE("verify_jwt") {
  const int64_t now = 1'800'000'000;
  SUBCASE("good ES256 and RS256 tokens verify and carry their claims") {
    for (bool ec : {true, false}) {
      const TestKey k(ec);
      auto token = sign_jwt(good_claims(now), k.signer());
      REQUIRE(token);
      auto c = verify_jwt(*token, k.verifiers(), opts(now));
      REQUIRE_MESSAGE(c, c.error());
      CHECK(c->subject == "alice");
      REQUIRE(c->access.size() == 1);
      CHECK(c->access[0] == Access{"repository", "team-a/app", {"pull", "push"}});
    }
  }
  const Key signer = ec_key().signer();
  const auto keys = ec_key().verifiers();
  SUBCASE("expired, not yet valid") {
    auto c = good_claims(now);
    c.expires = now - 61;
    CHECK(verify_jwt(*sign_jwt(c, signer), keys, opts(now)).error() == "token expired");
    c.expires = now - 30;  // within the leeway
    CHECK(verify_jwt(*sign_jwt(c, signer), keys, opts(now)));
    c = good_claims(now);
    c.not_before = now + 600;
    CHECK(verify_jwt(*sign_jwt(c, signer), keys, opts(now)).error() == "token not valid yet");
  }
  SUBCASE("wrong audience, wrong issuer") {
    auto c = good_claims(now);
    c.audience = {"other.example"};
    CHECK(verify_jwt(*sign_jwt(c, signer), keys, opts(now)).error().find("another service") != std::string::npos);
    c = good_claims(now);
    c.issuer = "evil";
    CHECK(verify_jwt(*sign_jwt(c, signer), keys, opts(now)).error().find("issuer") != std::string::npos);
  }
  SUBCASE("bad signature: another key, or a changed payload") {
    TestKey other(true);
    auto token = *sign_jwt(good_claims(now), other.signer());
    CHECK(verify_jwt(token, keys, opts(now)).error().find("signature") != std::string::npos);
    token = *sign_jwt(good_claims(now), signer);
    const size_t d1 = token.find('.'), d2 = token.rfind('.');
    auto c = good_claims(now);
    c.access[0].actions.push_back("delete");
    const std::string forged_body = sign_jwt(c, signer)->substr(d1 + 1);
    const std::string forged = token.substr(0, d1 + 1) + forged_body.substr(0, forged_body.find('.')) + token.substr(d2);
    CHECK(verify_jwt(forged, keys, opts(now)).error().find("signature") != std::string::npos);
  }
  SUBCASE("alg none and HS256 are refused even when the rest is fine") {
    const std::string body = base64url_encode(R"({"iss":"auth.example","aud":"registry.example","exp":1900000000})");
    for (const char* alg : {"none", "HS256", "None"}) {
      const std::string header = base64url_encode(std::string(R"({"alg":")") + alg + R"("})");
      auto r = verify_jwt(header + "." + body + ".", keys, opts(now));
      REQUIRE(!r);
      CHECK(r.error().find("not accepted") != std::string::npos);
    }
  }
  SUBCASE("malformed and huge tokens get a message, never a crash") {
    for (const char* bad : {"", "abc", "a.b", "a.b.c.d", "!!!.e30.", "e30.e30.", "W10.e30.AAAA"}) {
      auto r = verify_jwt(bad, keys, opts(now));
      REQUIRE(!r);
      CHECK(!r.error().empty());
    }
    const std::string huge(kMaxTokenBytes + 1, 'a');
    CHECK(verify_jwt(huge, keys, opts(now)).error().find("too large") != std::string::npos);
  }
  SUBCASE("an access claim naming a path with .. is refused") {
    auto c = good_claims(now);
    c.access[0].name = "team-a/../team-b";
    CHECK(verify_jwt(*sign_jwt(c, signer), keys, opts(now)).error().find("invalid repository") != std::string::npos);
  }
}

TEST_CASE("base64url") {
  const std::vector<std::string> samples{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xff\xfe\x00", 3)};
  for (const std::string& s : samples) {
    CHECK(*base64url_decode(base64url_encode(s)) == s);
  }
  CHECK(!base64url_decode("a"));
  CHECK(!base64url_decode("ab=="));
  CHECK(!base64url_decode("a+b/"));
}

TEST_CASE("keys") {
  CHECK(ec_key().signer().kid.size() == 59);  // 12 groups of 4 and 11 colons, as libtrust
  CHECK(ec_key().signer().kid == ec_key().verifiers()[0].kid);
  CHECK(!parse_public_keys("not pem"));
  CHECK(!parse_private_key("not pem"));
}
