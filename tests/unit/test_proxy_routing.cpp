#include <doctest/doctest.h>

#include "proxy/routing.hpp"

using namespace wharf::proxy;

TEST_CASE("route") {
  RoutingTable t{{"docker.io", "ghcr.io"}, "docker.io", {"team"}};
  SUBCASE("bare names go to the default upstream, cached under its name") {
    auto d = route(t, "library/alpine", "", false);
    CHECK(d.proxied);
    CHECK(d.upstream == "docker.io");
    CHECK(d.remote_repo == "library/alpine");
    CHECK(d.cache_repo == "docker.io/library/alpine");
    CHECK_FALSE(d.explicit_upstream);
  }
  SUBCASE("official images get library/ on Docker Hub") {
    auto d = route(t, "alpine", "", false);
    CHECK(d.remote_repo == "library/alpine");
    CHECK(d.cache_repo == "docker.io/library/alpine");
  }
  SUBCASE("a path prefix selects the upstream") {
    auto d = route(t, "ghcr.io/org/app", "", false);
    CHECK(d.proxied);
    CHECK(d.upstream == "ghcr.io");
    CHECK(d.remote_repo == "org/app");
    CHECK(d.cache_repo == "ghcr.io/org/app");
    CHECK(d.explicit_upstream);
  }
  SUBCASE("containerd's ns parameter selects the upstream") {
    auto d = route(t, "org/app", "ghcr.io", false);
    CHECK(d.upstream == "ghcr.io");
    CHECK(d.remote_repo == "org/app");
    CHECK(d.explicit_upstream);
  }
  SUBCASE("an unknown ns falls back to the normal rules") {
    auto d = route(t, "org/app", "quay.io", false);
    CHECK(d.upstream == "docker.io");
  }
  SUBCASE("local repositories and local namespaces are never proxied") {
    CHECK_FALSE(route(t, "myteam/app", "", true).proxied);
    CHECK_FALSE(route(t, "team/app", "", false).proxied);
    CHECK_FALSE(route(t, "team", "", false).proxied);
    CHECK(route(t, "teamx/app", "", false).proxied);
  }
  SUBCASE("no default upstream: bare names are local") {
    RoutingTable none{{"ghcr.io"}, "", {}};
    CHECK_FALSE(route(none, "library/alpine", "", false).proxied);
    CHECK(route(none, "ghcr.io/a/b", "", false).proxied);
  }
}
