#include <doctest/doctest.h>

#include <string>

#include "src/oci/media_type.hpp"

using namespace wharf::oci;

TEST_CASE("valid_media_type") {
  SUBCASE("OCI and Docker types") {
    CHECK(valid_media_type("application/vnd.oci.image.manifest.v1+json"));
    CHECK(valid_media_type("application/vnd.docker.distribution.manifest.list.v2+json"));
    CHECK(valid_media_type("application/vnd.oci.image.layer.v1.tar+gzip"));
    CHECK(valid_media_type("text/plain"));
    CHECK(valid_media_type("a/b"));
  }
  SUBCASE("malformed names") {
    CHECK_FALSE(valid_media_type(""));
    CHECK_FALSE(valid_media_type("application"));
    CHECK_FALSE(valid_media_type("application/"));
    CHECK_FALSE(valid_media_type("/json"));
    CHECK_FALSE(valid_media_type("application/json/x"));
    CHECK_FALSE(valid_media_type("application/.json"));   // first character must be a letter or digit
    CHECK_FALSE(valid_media_type("application/js on"));
    CHECK_FALSE(valid_media_type("application/json; charset=utf-8"));  // parameters are not part of it
    CHECK_FALSE(valid_media_type(std::string(128, 'a') + "/json"));   // 127 characters at most
    CHECK(valid_media_type(std::string(127, 'a') + "/json"));
  }
  SUBCASE("control characters and bytes outside ASCII") {
    CHECK_FALSE(valid_media_type("application/json\r"));
    CHECK_FALSE(valid_media_type("application/vnd.oci.image.manifest.v1+json\x01"));
    CHECK_FALSE(valid_media_type(std::string("application/js\0on", 17)));
    CHECK_FALSE(valid_media_type("application/j\x7fson"));
    CHECK_FALSE(valid_media_type("application/j\xc3\xa9son"));
  }
}

TEST_CASE("media_type_of") {
  SUBCASE("bare type") {
    CHECK(media_type_of("application/vnd.oci.image.index.v1+json") == "application/vnd.oci.image.index.v1+json");
    CHECK(media_type_of("  text/plain\t") == "text/plain");
  }
  SUBCASE("parameters are checked and dropped") {
    CHECK(media_type_of("application/json; charset=utf-8") == "application/json");
    CHECK(media_type_of("application/json;charset=\"utf-8\";q=1") == "application/json");
    CHECK(media_type_of("text/plain; x=\"a;b\"") == "text/plain");
    CHECK_FALSE(media_type_of("application/json;"));
    CHECK_FALSE(media_type_of("application/json; charset"));
    CHECK_FALSE(media_type_of("application/json; =utf-8"));
    CHECK_FALSE(media_type_of("application/json; charset=\"utf-8"));
    CHECK_FALSE(media_type_of("application/json; charset=\"a\x01\""));
    CHECK_FALSE(media_type_of("application/json; charset=a b"));
  }
  SUBCASE("invalid type") {
    CHECK_FALSE(media_type_of(""));
    CHECK_FALSE(media_type_of("application/vnd.oci.image.manifest.v1+json\x1b[31m"));
    CHECK_FALSE(media_type_of("application/json\x01; charset=utf-8"));
    CHECK_FALSE(media_type_of("*/*"));
  }
}
