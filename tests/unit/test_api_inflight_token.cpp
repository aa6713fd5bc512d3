#include <doctest/doctest.h>

#include "src/api/inflight.hpp"
#include "src/api/inflight_token.hpp"
#include "src/config/config.hpp"

#include <map>
#include <vector>

using namespace wharf::api;

namespace {
const std::string kDigest = "sha256:" + std::string(64, 'a');
const std::string kOther = "sha256:" + std::string(64, 'b');
}  // namespace

TEST_CASE("inflight_token") {
  const int64_t now = 1'700'000'000;
  const std::string tok = inflight_token("s3cret", kDigest, now + kInflightTokenLife);
  REQUIRE(!tok.empty());
  SUBCASE("valid") { CHECK(check_inflight_token("s3cret", kDigest, tok, now) == InflightTokenCheck::Valid); }
  SUBCASE("expired") {
    CHECK(check_inflight_token("s3cret", kDigest, tok, now + kInflightTokenLife) == InflightTokenCheck::Expired);
    CHECK(check_inflight_token("s3cret", kDigest, tok, now + 10'000) == InflightTokenCheck::Expired);
  }
  SUBCASE("wrong digest") { CHECK(check_inflight_token("s3cret", kOther, tok, now) == InflightTokenCheck::Invalid); }
  SUBCASE("wrong secret") {
    CHECK(check_inflight_token("s3cret2", kDigest, tok, now) == InflightTokenCheck::Invalid);
    CHECK(check_inflight_token("", kDigest, tok, now) == InflightTokenCheck::Invalid);
    CHECK(inflight_token("", kDigest, now + 1).empty());
  }
  SUBCASE("expiry moved") {
    // The expiry is under the MAC: moving it forward with the old MAC fails.
    std::string moved = std::to_string(now + kInflightTokenLife + 100) + tok.substr(tok.find('.'));
    CHECK(check_inflight_token("s3cret", kDigest, moved, now) == InflightTokenCheck::Invalid);
  }
  SUBCASE("too far ahead") {
    const std::string far = inflight_token("s3cret", kDigest, now + kInflightTokenMaxLife + 1);
    CHECK(check_inflight_token("s3cret", kDigest, far, now) == InflightTokenCheck::Invalid);
  }
  SUBCASE("garbage") {
    for (const char* g : {"", ".", "abc", "123", "123.", ".abcd", "x.y", "-5.00", "99999999999999999999999.aa",
                          "1700000060.zz"})
      CHECK(check_inflight_token("s3cret", kDigest, g, now) == InflightTokenCheck::Invalid);
    std::string flipped = tok;
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    CHECK(check_inflight_token("s3cret", kDigest, flipped, now) == InflightTokenCheck::Invalid);
  }
}

TEST_CASE("inflight_owner_address") {
  CHECK(owner_address("0a1b2c3d4e5f6a7b-42@127.0.0.5:5000") == "127.0.0.5:5000");
  CHECK(owner_address("0a1b2c3d4e5f6a7b-42@[::1]:5000") == "[::1]:5000");
  CHECK(owner_address("0a1b2c3d4e5f6a7b-42") == "");         // an older front: no address
  CHECK(owner_address("x@") == "");
  CHECK(owner_address("x@host") == "");                      // no port
  CHECK(owner_address("x@host:0") == "");
  CHECK(owner_address("x@host:99999") == "");
  CHECK(owner_address("x@ho st:80") == "");                  // not a host name
  CHECK(owner_address("x@host/evil:80") == "");
  CHECK(owner_address("x@wharf-2.internal:5000") == "wharf-2.internal:5000");
}

TEST_CASE("internal_address and http.internaladdr") {
  using Env = std::map<std::string, std::string>;
  auto load = [](const std::string& yaml, const Env& env = {}) {
    std::vector<std::string> warnings;
    return wharf::config::load_from_string("version: 0.1\n" + yaml, env, warnings);
  };
  SUBCASE("derived from http.addr") {
    auto c = load("http: {addr: '127.0.0.7:5123'}\n");
    REQUIRE(c);
    CHECK(internal_address(*c) == "127.0.0.7:5123");
  }
  SUBCASE("a wildcard listener names this machine") {
    auto c = load("http: {addr: ':5123'}\n");
    REQUIRE(c);
    const std::string a = internal_address(*c);
    CHECK(a.ends_with(":5123"));
    CHECK(a.size() > 5);
  }
  SUBCASE("http.internaladdr wins, also from the environment") {
    auto c = load("http: {addr: ':5000', internaladdr: 'wharf-2.internal:5000'}\n");
    REQUIRE(c);
    CHECK(internal_address(*c) == "wharf-2.internal:5000");
    auto e = load("http: {addr: ':5000'}\n", Env{{"REGISTRY_HTTP_INTERNALADDR", "10.0.0.5:5001"}});
    REQUIRE(e);
    CHECK(internal_address(*e) == "10.0.0.5:5001");
  }
  SUBCASE("bad values name the key") {
    for (const char* bad : {"5000", ":5000", "0.0.0.0:5000", "[::]:5000", "h:0", "a b:80"}) {
      auto c = load(std::string("http: {internaladdr: '") + bad + "'}\n");
      REQUIRE_MESSAGE(!c, bad);
      CHECK(c.error().key == "http.internaladdr");
    }
  }
}
