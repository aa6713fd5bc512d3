#include <doctest/doctest.h>

#include <string>

#include "src/oci/names.hpp"

using namespace wharf::oci;

TEST_CASE("valid_repo_name") {
  SUBCASE("simple and nested names") {
    CHECK(valid_repo_name("a"));
    CHECK(valid_repo_name("library/alpine"));
    CHECK(valid_repo_name("ghcr.io/org/app"));
    CHECK(valid_repo_name("a/b/c/d/e"));
    CHECK(valid_repo_name("0"));
  }
  SUBCASE("allowed separators") {
    CHECK(valid_repo_name("a.b"));
    CHECK(valid_repo_name("a_b"));
    CHECK(valid_repo_name("a__b"));
    CHECK(valid_repo_name("a-b"));
    CHECK(valid_repo_name("a---b"));
    CHECK(valid_repo_name("my-org/my_app.v2"));
  }
  SUBCASE("bad separators") {
    CHECK_FALSE(valid_repo_name(".."));
    CHECK_FALSE(valid_repo_name("a..b"));
    CHECK_FALSE(valid_repo_name("a___b"));
    CHECK_FALSE(valid_repo_name("a._b"));
    CHECK_FALSE(valid_repo_name("a-.b"));
    CHECK_FALSE(valid_repo_name("a_-b"));
  }
  SUBCASE("separators at the edges of a component") {
    CHECK_FALSE(valid_repo_name("-a"));
    CHECK_FALSE(valid_repo_name("a-"));
    CHECK_FALSE(valid_repo_name(".a"));
    CHECK_FALSE(valid_repo_name("a_"));
    CHECK_FALSE(valid_repo_name("a/-b"));
    CHECK_FALSE(valid_repo_name("a-/b"));
  }
  SUBCASE("bad slashes") {
    CHECK_FALSE(valid_repo_name(""));
    CHECK_FALSE(valid_repo_name("/"));
    CHECK_FALSE(valid_repo_name("/a"));
    CHECK_FALSE(valid_repo_name("a/"));
    CHECK_FALSE(valid_repo_name("a//b"));
  }
  SUBCASE("bad characters") {
    CHECK_FALSE(valid_repo_name("A"));
    CHECK_FALSE(valid_repo_name("Library/alpine"));
    CHECK_FALSE(valid_repo_name("a b"));
    CHECK_FALSE(valid_repo_name("a:b"));
    CHECK_FALSE(valid_repo_name("a@b"));
    CHECK_FALSE(valid_repo_name(std::string("a\0b", 3)));
  }
  SUBCASE("length limit of 255") {
    CHECK(valid_repo_name(std::string(255, 'a')));
    CHECK_FALSE(valid_repo_name(std::string(256, 'a')));
    std::string nested;
    for (int i = 0; i < 127; ++i) nested += "a/";
    nested += "a";  // 255 chars
    CHECK(valid_repo_name(nested));
    CHECK_FALSE(valid_repo_name(nested + "b"));
  }
}

TEST_CASE("valid_tag") {
  SUBCASE("typical tags") {
    CHECK(valid_tag("latest"));
    CHECK(valid_tag("v1.2.3"));
    CHECK(valid_tag("1.0-RC_1"));
    CHECK(valid_tag("_private"));
    CHECK(valid_tag("A"));
  }
  SUBCASE("bad first character") {
    CHECK_FALSE(valid_tag(".hidden"));
    CHECK_FALSE(valid_tag("-dash"));
    CHECK_FALSE(valid_tag(""));
  }
  SUBCASE("bad characters") {
    CHECK_FALSE(valid_tag("a/b"));
    CHECK_FALSE(valid_tag("a:b"));
    CHECK_FALSE(valid_tag("a+b"));
    CHECK_FALSE(valid_tag("sha256@x"));
  }
  SUBCASE("length limit of 128") {
    CHECK(valid_tag(std::string(128, 'a')));
    CHECK_FALSE(valid_tag(std::string(129, 'a')));
  }
}
