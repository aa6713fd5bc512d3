#include <doctest/doctest.h>

#include "src/api/route.hpp"

using namespace wharf::api;

TEST_CASE("parse_route") {
  SUBCASE("base and catalog") {
    CHECK(parse_route("/v2/")->kind == RouteKind::Base);
    CHECK(parse_route("/v2")->kind == RouteKind::Base);
    CHECK(parse_route("/v2/_catalog")->kind == RouteKind::Catalog);
  }
  SUBCASE("manifests with nested names") {
    auto r = parse_route("/v2/library/alpine/manifests/3.19");
    REQUIRE(r);
    CHECK(r->kind == RouteKind::Manifest);
    CHECK(r->name == "library/alpine");
    CHECK(r->ref == "3.19");
  }
  SUBCASE("a repository component named like an endpoint") {
    auto r = parse_route("/v2/a/blobs/b/manifests/latest");
    REQUIRE(r);
    CHECK(r->kind == RouteKind::Manifest);
    CHECK(r->name == "a/blobs/b");
  }
  SUBCASE("blobs, uploads, tags, referrers") {
    CHECK(parse_route("/v2/a/blobs/sha256:00")->kind == RouteKind::Blob);
    CHECK(parse_route("/v2/a/blobs/uploads/")->kind == RouteKind::UploadStart);
    CHECK(parse_route("/v2/a/blobs/uploads")->kind == RouteKind::UploadStart);
    auto u = parse_route("/v2/a/b/blobs/uploads/0123abcd-ef");
    REQUIRE(u);
    CHECK(u->kind == RouteKind::Upload);
    CHECK(u->name == "a/b");
    CHECK(u->ref == "0123abcd-ef");
    CHECK(parse_route("/v2/a/tags/list")->kind == RouteKind::Tags);
    CHECK(parse_route("/v2/a/referrers/sha256:00")->kind == RouteKind::Referrers);
  }
  SUBCASE("invalid names are NAME_INVALID") {
    for (auto p : {"/v2/../etc/manifests/x", "/v2/a/../b/manifests/x", "/v2/A/manifests/x", "/v2/a//b/manifests/x",
                   "/v2/%2e%2e/manifests/x", "/v2//manifests/x"}) {
      auto r = parse_route(p);
      CAPTURE(p);
      REQUIRE(!r);
      CHECK(r.error().code == wharf::oci::ErrorCode::NameInvalid);
      CHECK(r.error().status == 400);
    }
  }
  SUBCASE("unknown endpoints are 404") {
    auto r = parse_route("/v2/a/b");
    REQUIRE(!r);
    CHECK(r.error().status == 404);
    CHECK(!parse_route("/v1/x"));
  }
}

TEST_CASE("valid_session_id") {
  CHECK(valid_session_id("0123abcd-0123-4567-89ab-cdef01234567"));
  CHECK_FALSE(valid_session_id("../../etc"));
  CHECK_FALSE(valid_session_id("short"));
  CHECK_FALSE(valid_session_id("ABCDEF0123"));
}

TEST_CASE("route_label") {
  CHECK(std::string(route_label(parse_route("/v2/a/manifests/x")->kind)) == "manifest");
  CHECK(std::string(route_label(parse_route("/v2/a/blobs/uploads/")->kind)) == "upload");
  CHECK(std::string(route_label(parse_route("/v2/_catalog")->kind)) == "catalog");
}
