#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "proxy/token_cache.hpp"

using namespace wharf::proxy;
using namespace std::chrono_literals;
using TimePoint = std::chrono::system_clock::time_point;

namespace {

struct FakeClock {
  TimePoint now = TimePoint{} + 1'000'000s;
  TokenCache::Clock fn() {
    return [this] { return now; };
  }
};

TokenKey key(std::vector<std::string> scopes = {"repository:library/alpine:pull"}) {
  return TokenKey{"docker.io", "https://auth.docker.io/token", "registry.docker.io", std::move(scopes), {}};
}

}  // namespace

TEST_CASE("TokenCache::get and put") {
  FakeClock clock;
  TokenCache cache(clock.fn());

  SUBCASE("a miss is nullopt") { CHECK_FALSE(cache.get(key()).has_value()); }
  SUBCASE("a token is returned until expires_in minus the safety margin") {
    cache.put(key(), "t1", 300s);
    CHECK(cache.get(key()) == "t1");
    clock.now += 294s;
    CHECK(cache.get(key()) == "t1");
    clock.now += 1s;
    CHECK_FALSE(cache.get(key()).has_value());
    CHECK(cache.size() == 0);
  }
  SUBCASE("a forwarded client credential has tokens of its own") {
    TokenKey mine = key();
    mine.credential = "c0ffee";
    cache.put(mine, "user-token", 300s);
    CHECK_FALSE(cache.get(key()).has_value());
    cache.put(key(), "shared-token", 300s);
    CHECK(cache.get(mine) == "user-token");
    CHECK(cache.get(key()) == "shared-token");
    TokenKey other = mine;
    other.credential = "beef";
    CHECK_FALSE(cache.get(other).has_value());
  }
  SUBCASE("expires_in defaults to 60 s") {
    cache.put(key(), "t1", std::nullopt);
    clock.now += 54s;
    CHECK(cache.get(key()) == "t1");
    clock.now += 1s;
    CHECK_FALSE(cache.get(key()).has_value());
  }
  SUBCASE("issued_at moves the expiry") {
    cache.put(key(), "t1", 100s, clock.now - 50s);
    clock.now += 44s;
    CHECK(cache.get(key()) == "t1");
    clock.now += 1s;
    CHECK_FALSE(cache.get(key()).has_value());
  }
  SUBCASE("an issued_at in the future counts as now") {
    cache.put(key(), "t1", 60s, clock.now + 3600s);
    clock.now += 56s;
    CHECK_FALSE(cache.get(key()).has_value());
  }
  SUBCASE("a token already expired is not stored") {
    cache.put(key(), "t1", 60s, clock.now - 120s);
    CHECK_FALSE(cache.get(key()).has_value());
    CHECK(cache.size() == 0);
  }
  SUBCASE("the margin never exceeds half a short lifetime") {
    cache.put(key(), "t1", 4s);
    clock.now += 1s;
    CHECK(cache.get(key()) == "t1");
    clock.now += 1s;
    CHECK_FALSE(cache.get(key()).has_value());
  }
  SUBCASE("zero or negative lifetimes are not cached") {
    cache.put(key(), "t1", 0s);
    cache.put(key({"x"}), "t2", -10s);
    CHECK(cache.size() == 0);
  }
}

TEST_CASE("TokenCache keys") {
  FakeClock clock;
  TokenCache cache(clock.fn());
  cache.put(key({"repository:a:pull", "repository:b:pull"}), "ab", 300s);

  SUBCASE("scope order and duplicates do not matter") {
    CHECK(cache.get(key({"repository:b:pull", "repository:a:pull", "repository:a:pull"})) == "ab");
  }
  SUBCASE("a different scope set, realm, service or upstream misses") {
    CHECK_FALSE(cache.get(key({"repository:a:pull"})).has_value());
    TokenKey k = key({"repository:a:pull", "repository:b:pull"});
    k.realm = "https://other/token";
    CHECK_FALSE(cache.get(k).has_value());
    k = key({"repository:a:pull", "repository:b:pull"});
    k.service = "other";
    CHECK_FALSE(cache.get(k).has_value());
    k = key({"repository:a:pull", "repository:b:pull"});
    k.upstream = "ghcr.io";
    CHECK_FALSE(cache.get(k).has_value());
  }
  SUBCASE("erase forgets one key") {
    cache.put(key(), "other", 300s);
    cache.erase(key({"repository:b:pull", "repository:a:pull"}));
    CHECK_FALSE(cache.get(key({"repository:a:pull", "repository:b:pull"})).has_value());
    CHECK(cache.get(key()) == "other");
    cache.erase(key({"absent"}));
  }
  SUBCASE("put replaces and prunes expired entries") {
    cache.put(key(), "short", 10s);
    clock.now += 20s;
    cache.put(key({"repository:a:pull", "repository:b:pull"}), "ab2", 300s);
    CHECK(cache.size() == 1);
    CHECK(cache.get(key({"repository:a:pull", "repository:b:pull"})) == "ab2");
  }
}

TEST_CASE("parse_rfc3339") {
  using namespace std::chrono;
  const TimePoint epoch_2024 = sys_days{2024y / January / 1};
  SUBCASE("UTC") { CHECK(parse_rfc3339("2024-01-01T00:00:00Z") == epoch_2024); }
  SUBCASE("fractional seconds") {
    CHECK(parse_rfc3339("2024-01-01T00:00:01.5Z") == epoch_2024 + 1500ms);
    CHECK(parse_rfc3339("2024-01-01T00:00:00.123456789Z") == epoch_2024 + duration_cast<system_clock::duration>(123456789ns));
  }
  SUBCASE("offsets") {
    CHECK(parse_rfc3339("2024-01-01T02:30:00+02:30") == epoch_2024);
    CHECK(parse_rfc3339("2023-12-31T23:00:00-01:00") == epoch_2024);
  }
  SUBCASE("malformed") {
    CHECK_FALSE(parse_rfc3339("").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:00:00").has_value());
    CHECK_FALSE(parse_rfc3339("2024-02-30T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T24:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:00:00.Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:00:00Zjunk").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:00:00+0200").has_value());
  }
}

TEST_CASE("parse_rfc3339 strict grammar and range") {
  SUBCASE("negative or signed fields are refused") {
    CHECK_FALSE(parse_rfc3339("2024--1-01T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01--1T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T-1:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:-1:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:00:-1Z").has_value());
    CHECK_FALSE(parse_rfc3339("-024-01-01T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:00:00+-1:00").has_value());
    CHECK_FALSE(parse_rfc3339("2024-01-01T00:00:00+01:-1").has_value());
    CHECK_FALSE(parse_rfc3339("+024-01-01T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2024-+1-01T00:00:00Z").has_value());
  }
  SUBCASE("years system_clock cannot hold are refused, not overflowed") {
    CHECK_FALSE(parse_rfc3339("1600-01-01T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("0000-01-01T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("2300-01-01T00:00:00Z").has_value());
    CHECK_FALSE(parse_rfc3339("9999-12-31T23:59:59Z").has_value());
    CHECK(parse_rfc3339("2199-12-31T23:59:59Z").has_value());
  }
  SUBCASE("a very long fraction is fine") {
    CHECK(parse_rfc3339("2024-01-01T00:00:00." + std::string(10000, '9') + "Z").has_value());
  }
}

TEST_CASE("parse_token_response") {
  SUBCASE("token or access_token") {
    auto a = parse_token_response(R"({"token":"t","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"})");
    REQUIRE(a);
    CHECK(a->token == "t");
    CHECK(a->expires_in == 300s);
    CHECK(a->issued_at.has_value());
    auto b = parse_token_response(R"({"access_token":"u"})");
    REQUIRE(b);
    CHECK(b->token == "u");
    CHECK_FALSE(b->expires_in.has_value());
  }
  SUBCASE("no token, not an object, or not JSON") {
    CHECK_FALSE(parse_token_response(R"({"token":""})"));
    CHECK_FALSE(parse_token_response(R"({"token":5})"));
    CHECK_FALSE(parse_token_response("[]"));
    CHECK_FALSE(parse_token_response("{"));
    CHECK_FALSE(parse_token_response(std::string(100000, '[')));
  }
  SUBCASE("huge, fractional, negative expires_in are clamped to [0, a day]") {
    for (const char* body : {R"({"token":"t","expires_in":10000000000})", R"({"token":"t","expires_in":1e300})",
                             R"({"token":"t","expires_in":18446744073709551615})",
                             R"({"token":"t","expires_in":9223372036854775807})"}) {
      CAPTURE(body);
      auto r = parse_token_response(body);
      REQUIRE(r);
      CHECK(r->expires_in == TokenCache::kMaxLifetime);
    }
    for (const char* body : {R"({"token":"t","expires_in":-1e300})", R"({"token":"t","expires_in":-5})",
                             R"({"token":"t","expires_in":-9223372036854775808})"}) {
      CAPTURE(body);
      auto r = parse_token_response(body);
      REQUIRE(r);
      CHECK(r->expires_in == 0s);
    }
    auto frac = parse_token_response(R"({"token":"t","expires_in":90.9})");
    REQUIRE(frac);
    CHECK(frac->expires_in == 90s);
    auto str = parse_token_response(R"({"token":"t","expires_in":"300"})");
    REQUIRE(str);
    CHECK_FALSE(str->expires_in.has_value());
  }
  SUBCASE("issued_at outside the clock's range is ignored") {
    for (const char* body : {R"({"token":"t","issued_at":"1600-01-01T00:00:00Z"})",
                             R"({"token":"t","issued_at":"2300-01-01T00:00:00Z"})",
                             R"({"token":"t","issued_at":"2024-01--1T00:00:00Z"})",
                             R"({"token":"t","issued_at":12})"}) {
      CAPTURE(body);
      auto r = parse_token_response(body);
      REQUIRE(r);
      CHECK_FALSE(r->issued_at.has_value());
    }
  }
}

TEST_CASE("TokenCache::put clamps what it is given") {
  FakeClock clock;
  TokenCache cache(clock.fn());
  SUBCASE("a lifetime beyond a day is cut to a day") {
    cache.put(key(), "t", std::chrono::seconds(std::numeric_limits<int64_t>::max() / 2));
    clock.now += TokenCache::kMaxLifetime - 10s;
    CHECK(cache.get(key()) == "t");
    clock.now += 10s;
    CHECK_FALSE(cache.get(key()).has_value());
  }
  SUBCASE("an issued_at near the clock's minimum is an expired token, not an overflow") {
    cache.put(key(), "t", 300s, TimePoint::min() + 1s);
    CHECK_FALSE(cache.get(key()).has_value());
    cache.put(key(), "t", 300s, TimePoint::max());
    CHECK(cache.get(key()) == "t");
  }
}
