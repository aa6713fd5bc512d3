#include <doctest/doctest.h>

#include "src/auth/throttle.hpp"

using namespace wharf::auth;
using namespace std::chrono_literals;
using Outcome = FailureThrottle::Outcome;

TEST_CASE("FailureThrottle::begin") {
  const auto t0 = FailureThrottle::Clock::time_point{} + 1h;
  FailureThrottle th(3);

  SUBCASE("caps the checks in flight per address, not across addresses") {
    CHECK_FALSE(th.begin("10.0.0.1", t0));
    CHECK_FALSE(th.begin("10.0.0.1", t0));
    CHECK_FALSE(th.begin("10.0.0.1", t0));
    auto refused = th.begin("10.0.0.1", t0);
    REQUIRE(refused);
    CHECK(*refused == 1s);
    CHECK_FALSE(th.begin("10.0.0.2", t0));
    th.finish("10.0.0.1", Outcome::Verified, t0);
    CHECK_FALSE(th.begin("10.0.0.1", t0));
  }
  SUBCASE("failures in a row back off exponentially, up to the maximum") {
    FailureThrottle slow(2, 1s, 8s);
    auto fail_once = [&](FailureThrottle::Clock::time_point now) {
      REQUIRE_FALSE(slow.begin("c", now));
      slow.finish("c", Outcome::Failed, now);
    };
    auto now = t0;
    fail_once(now);
    CHECK_FALSE(slow.begin("c", now));  // one failure is free
    slow.finish("c", Outcome::Failed, now);
    // Two failures: wait 1 s.
    REQUIRE(slow.begin("c", now));
    CHECK(*slow.begin("c", now) == 1s);
    now += 1s;
    fail_once(now);  // three: 2 s
    CHECK(*slow.begin("c", now) == 2s);
    CHECK(*slow.begin("c", now + 1500ms) == 1s);  // rounded up
    now += 2s;
    fail_once(now);  // four: 4 s
    CHECK(*slow.begin("c", now) == 4s);
    now += 4s;
    fail_once(now);  // five: 8 s (the maximum)
    CHECK(*slow.begin("c", now) == 8s);
    now += 8s;
    fail_once(now);  // six: still 8 s
    CHECK(*slow.begin("c", now) == 8s);
    CHECK_FALSE(slow.begin("other", now));
  }
  SUBCASE("a verified password clears the failures") {
    for (int i = 0; i < 2; ++i) {
      REQUIRE_FALSE(th.begin("c", t0));
      th.finish("c", Outcome::Failed, t0);
    }
    REQUIRE_FALSE(th.begin("c", t0));
    th.finish("c", Outcome::Verified, t0);
    CHECK(th.tracked() == 0);
    for (int i = 0; i < 2; ++i) {
      REQUIRE_FALSE(th.begin("c", t0));
      th.finish("c", Outcome::Failed, t0);
    }
    CHECK_FALSE(th.begin("c", t0));  // two failures after the reset, below the limit of three
  }
  SUBCASE("checks that never ran do not count as failures") {
    for (int i = 0; i < 10; ++i) {
      REQUIRE_FALSE(th.begin("c", t0));
      th.finish("c", Outcome::NotRun, t0);
    }
    CHECK(th.tracked() == 0);
  }
  SUBCASE("old failures are forgotten") {
    for (int i = 0; i < 3; ++i) {
      REQUIRE_FALSE(th.begin("c", t0));
      th.finish("c", Outcome::Failed, t0);
    }
    CHECK(th.begin("c", t0));
    const auto later = t0 + FailureThrottle::kForget + 1s;
    CHECK_FALSE(th.begin("c", later));
    th.finish("c", Outcome::Failed, later);
    CHECK_FALSE(th.begin("c", later));  // one failure, not four
  }
  SUBCASE("idle addresses are pruned when many are tracked") {
    for (size_t i = 0; i <= FailureThrottle::kPruneAbove; ++i) {
      const std::string who = std::string("a").append(std::to_string(i));
      REQUIRE_FALSE(th.begin(who, t0));
      th.finish(who, Outcome::Failed, t0);
    }
    CHECK(th.tracked() == FailureThrottle::kPruneAbove + 1);
    CHECK_FALSE(th.begin("new", t0 + FailureThrottle::kForget));
    CHECK(th.tracked() == 1);
  }
}

TEST_CASE("client_key") {
  CHECK(client_key("192.0.2.7") == "192.0.2.7");
  CHECK(client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(client_key("2001:db8:1:2::9") == client_key("2001:db8:1:2:ffff::1"));
  CHECK(client_key("2001:db8:1:3::9") != client_key("2001:db8:1:2::9"));
  CHECK(client_key("::ffff:192.0.2.7") == "192.0.2.7");
  CHECK(client_key("::1") == "::/64");
  CHECK(client_key("not:an:address") == "not:an:address");
  CHECK(client_key("") == "");
}
