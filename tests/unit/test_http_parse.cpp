#include <doctest/doctest.h>

#include "src/http/parse.hpp"

using namespace wharf::http;

TEST_CASE("parse_request_head") {
  SUBCASE("request line, headers, query") {
    Request r;
    auto ok = parse_request_head("GET /v2/a/tags/list?n=2&last=b%20c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", r);
    REQUIRE(ok);
    CHECK(r.method == "GET");
    CHECK(r.path == "/v2/a/tags/list");
    CHECK(r.query_param("n") == "2");
    CHECK(r.query_param("last") == "b c");
    CHECK(!r.query_param("x"));
    CHECK(r.header("host") == "x");
    CHECK(r.keep_alive);
    CHECK(!r.has_body());
  }
  SUBCASE("HTTP/1.0 closes, chunked is a body") {
    Request r;
    REQUIRE(parse_request_head("PATCH /v2/a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", r));
    CHECK(!r.keep_alive);
    CHECK(r.chunked);
    CHECK(r.has_body());
  }
  SUBCASE("malformed input is refused with a status") {
    Request r1, r2, r3, r4;
    CHECK(parse_request_head("GARBAGE\r\n\r\n", r1).error().status == 400);
    CHECK(parse_request_head("GET / HTTP/2.0\r\n\r\n", r2).error().status == 505);
    CHECK(parse_request_head("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", r3).error().status == 400);
    CHECK(parse_request_head("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", r4).error().status == 501);
  }
}

TEST_CASE("BodyDecoder") {
  SUBCASE("content length") {
    BodyDecoder d(false, 5);
    auto s = d.feed("abcdefgh");
    CHECK(s.consumed == 5);
    CHECK(s.data == "abcde");
    CHECK(d.done());
  }
  SUBCASE("chunked, split at every byte") {
    std::string wire = "3\r\nabc\r\nA;ext=1\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n";
    BodyDecoder d(true, 0);
    std::string out;
    for (size_t i = 0; i < wire.size() && !d.done(); ++i) {
      std::string_view one(wire.data() + i, 1);
      while (!one.empty()) {
        auto s = d.feed(one);
        REQUIRE(!s.error);
        out.append(s.data);
        one.remove_prefix(s.consumed);
        if (s.consumed == 0) break;
      }
    }
    CHECK(d.done());
    CHECK(out == "abc0123456789");
  }
  SUBCASE("bad chunk size") {
    BodyDecoder d(true, 0);
    auto s = d.feed("zz\r\n");
    CHECK(s.error);
  }
}

TEST_CASE("HTTP/1.0 keep-alive is opt-in") {
  Request a, b;
  REQUIRE(parse_request_head("HEAD /v2/ HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", a));
  CHECK(a.http10);
  CHECK(a.keep_alive);
  REQUIRE(parse_request_head("HEAD /v2/ HTTP/1.0\r\n\r\n", b));
  CHECK_FALSE(b.keep_alive);
}
