#include <doctest/doctest.h>

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
  return TokenKey{"docker.io", "https://auth.docker.io/token", "registry.docker.io", std::move(scopes)};
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
