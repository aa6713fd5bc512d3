#include <doctest/doctest.h>

#include "proxy/www_authenticate.hpp"

using namespace wharf::proxy;

TEST_CASE("parse_www_authenticate") {
  SUBCASE("Docker Hub bearer challenge") {
    const auto c = parse_www_authenticate(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull")");
    REQUIRE(c.size() == 1);
    CHECK(c[0].scheme == AuthScheme::Bearer);
    CHECK(c[0].scheme_name == "Bearer");
    CHECK(c[0].param("realm") == "https://auth.docker.io/token");
    CHECK(c[0].param("service") == "registry.docker.io");
    CHECK(c[0].param("scope") == "repository:library/alpine:pull");
    CHECK(c[0].param("error").empty());
  }
  SUBCASE("scheme and parameter names are case-insensitive") {
    const auto c = parse_www_authenticate(R"(bEaReR Realm="r", SERVICE=svc)");
    REQUIRE(c.size() == 1);
    CHECK(c[0].scheme == AuthScheme::Bearer);
    CHECK(c[0].param("realm") == "r");
    CHECK(c[0].param("service") == "svc");
    CHECK(parse_www_authenticate("BASIC realm=x")[0].scheme == AuthScheme::Basic);
  }
  SUBCASE("commas and escapes inside quoted strings") {
    const auto c = parse_www_authenticate(
        R"(Bearer realm="https://a/t",scope="repository:a:pull,push repository:b:pull",error="say \"no\"\\")");
    REQUIRE(c.size() == 1);
    CHECK(c[0].param("scope") == "repository:a:pull,push repository:b:pull");
    CHECK(c[0].param("error") == R"(say "no"\)");
  }
  SUBCASE("whitespace around '=' and commas") {
    const auto c = parse_www_authenticate("Bearer  realm = \"r\" ,  service=s ,scope=\"x\"");
    REQUIRE(c.size() == 1);
    CHECK(c[0].param("realm") == "r");
    CHECK(c[0].param("service") == "s");
    CHECK(c[0].param("scope") == "x");
  }
  SUBCASE("unquoted values, even URLs") {
    const auto c = parse_www_authenticate("Bearer realm=https://a.io/token?x=1,service=reg.io");
    REQUIRE(c.size() == 1);
    CHECK(c[0].param("realm") == "https://a.io/token?x=1");
    CHECK(c[0].param("service") == "reg.io");
  }
  SUBCASE("several challenges in one header") {
    const auto c = parse_www_authenticate(R"(Basic realm="Registry Realm", Bearer realm="https://t/token",service="s")");
    REQUIRE(c.size() == 2);
    CHECK(c[0].scheme == AuthScheme::Basic);
    CHECK(c[0].param("realm") == "Registry Realm");
    CHECK(c[1].scheme == AuthScheme::Bearer);
    CHECK(c[1].param("realm") == "https://t/token");
    CHECK(c[1].param("service") == "s");
  }
  SUBCASE("challenges without parameters and unknown schemes") {
    const auto c = parse_www_authenticate("Negotiate, Basic, Bearer realm=r");
    REQUIRE(c.size() == 3);
    CHECK(c[0].scheme == AuthScheme::Other);
    CHECK(c[0].scheme_name == "Negotiate");
    CHECK(c[1].scheme == AuthScheme::Basic);
    CHECK(c[1].params.empty());
    CHECK(c[2].param("realm") == "r");
  }
  SUBCASE("token68") {
    const auto c = parse_www_authenticate("Negotiate abc+/d==, Basic realm=x");
    REQUIRE(c.size() == 2);
    CHECK(c[0].token68 == "abc+/d==");
    CHECK(c[0].params.empty());
    CHECK(c[1].param("realm") == "x");
  }
  SUBCASE("malformed input keeps what parsed and never throws") {
    CHECK(parse_www_authenticate("").empty());
    CHECK(parse_www_authenticate("   ,, ").empty());
    const auto unterminated = parse_www_authenticate(R"(Bearer service=s, realm="https://x)");
    REQUIRE(unterminated.size() == 1);
    CHECK(unterminated[0].param("service") == "s");
    CHECK(unterminated[0].param("realm").empty());
    const auto garbage = parse_www_authenticate(R"(Bearer realm="r" junk here)");
    REQUIRE(garbage.size() == 1);
    CHECK(garbage[0].param("realm") == "r");
    CHECK(parse_www_authenticate("\"quoted\" realm=x").empty());
  }
}
