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
  Request c;
  REQUIRE(parse_request_head("PUT /v2/ HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", c));
  CHECK_FALSE(c.keep_alive);  // chunked in HTTP/1.0: read it, then close
}

namespace {

// Status of parse_request_head's failure, 0 if it succeeded.
int head_status(std::string_view head) {
  Request r;
  auto ok = parse_request_head(head, r);
  return ok ? 0 : ok.error().status;
}

// Feeds `wire` to a HeadScanner one byte at a time; returns the result after the last byte fed.
HeadScanner::Result scan_bytewise(std::string_view wire, HeadScanner& s) {
  auto r = HeadScanner::Result::More;
  for (size_t i = 0; i < wire.size() && r == HeadScanner::Result::More; ++i) r = s.feed(wire.substr(i, 1));
  return r;
}

}  // namespace

TEST_CASE("parse_request_head refuses control characters and bad framing") {
  SUBCASE("bare CR and NUL in a header value") {
    CHECK(head_status(std::string_view("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n")) == 400);
    CHECK(head_status(std::string_view("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 26)) == 400);
    CHECK(head_status(std::string_view("GET / HTTP/1.1\r\nX-A: a\x01" "b\r\n\r\n")) == 400);
    CHECK(head_status(std::string_view("GET / HTTP/1.1\r\nX-A: a\x7f" "b\r\n\r\n")) == 400);
    CHECK(head_status(std::string_view("GET / HTTP/1.1\r\nX-A: a\tb \xc3\xa9\r\n\r\n")) == 0);  // HTAB, obs-text
  }
  SUBCASE("field names, folding") {
    CHECK(head_status("GET / HTTP/1.1\r\nX A: b\r\n\r\n") == 400);
    CHECK(head_status("GET / HTTP/1.1\r\nX-A : b\r\n\r\n") == 400);
    CHECK(head_status("GET / HTTP/1.1\r\n: b\r\n\r\n") == 400);
    CHECK(head_status("GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n") == 400);
    CHECK(head_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400);
  }
  SUBCASE("Content-Length") {
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: +5\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") == 0);
    Request r;
    REQUIRE(parse_request_head("PUT / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", r));
    CHECK(r.content_length == UINT64_MAX);
  }
  SUBCASE("Transfer-Encoding") {
    CHECK(head_status("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
    CHECK(head_status("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501);
    CHECK(head_status("PUT / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n") == 0);
  }
  SUBCASE("request lines") {
    CHECK(head_status("GET /\r\n\r\n") == 400);              // HTTP/0.9
    CHECK(head_status("GET  / HTTP/1.1\r\n\r\n") == 400);    // two spaces
    CHECK(head_status("GET / HTTP/1.1 \r\n\r\n") == 400);
    CHECK(head_status("GET / HTTP/2\r\n\r\n") == 505);
    CHECK(head_status("GET / FTP/1.1\r\n\r\n") == 400);
    CHECK(head_status("GET http://x/ HTTP/1.1\r\n\r\n") == 400);
  }
}

TEST_CASE("parse_request_head accepts bare LF line endings") {
  Request r;
  REQUIRE(parse_request_head("\nGET /v2/ HTTP/1.1\nHost: x\nContent-Length: 3\n\n", r));
  CHECK(r.path == "/v2/");
  CHECK(r.header("host") == "x");
  CHECK(r.content_length == 3u);
  Request m;
  REQUIRE(parse_request_head("GET /v2/ HTTP/1.1\r\nHost: x\nA: b\r\n\n", m));
  CHECK(m.header("a") == "b");
}

TEST_CASE("HeadScanner") {
  SUBCASE("finds the end of CRLF and LF heads, byte by byte or at once") {
    for (std::string_view wire : {std::string_view("GET / HTTP/1.1\r\nA: b\r\n\r\nBODY"),
                                  std::string_view("GET / HTTP/1.1\nA: b\n\nBODY"),
                                  std::string_view("\r\n\nGET / HTTP/1.0\r\nA: b\n\r\nBODY")}) {
      HeadScanner a, b;
      CHECK(a.feed(wire) == HeadScanner::Result::Done);
      CHECK(scan_bytewise(wire, b) == HeadScanner::Result::Done);
      CHECK(a.head_length() == wire.size() - 4);
      CHECK(b.head_length() == a.head_length());
      Request r;
      CHECK(parse_request_head(wire.substr(0, a.head_length()), r));
    }
  }
  SUBCASE("waits for the rest of a valid head") {
    HeadScanner s;
    CHECK(s.feed("GET /v2/ HTTP/1.1\r\nHost: x\r\n") == HeadScanner::Result::More);
    CHECK(s.feed("\r") == HeadScanner::Result::More);
    CHECK(s.feed("\n") == HeadScanner::Result::Done);
    HeadScanner p;
    CHECK(p.feed("PATCH /v2/a/blobs/uploads/x HT") == HeadScanner::Result::More);
  }
  SUBCASE("refuses what cannot be a request at once") {
    struct Case {
      std::string_view wire;
      int status;
    };
    for (auto c : {Case{"GET /\r\n", 400}, Case{"GET /\n", 400}, Case{"GET\r\n", 400},
                   Case{"\x01\x02\x03", 400}, Case{"GET / FTP", 400}, Case{" GET", 400},
                   Case{"GET / HTTP/1.1\rX", 400}, Case{"GET / HTTP/2.0\r\n", 505}, Case{"GET / HTTP/1.1234", 505},
                   Case{std::string_view("GET / HTTP/1.1\r\nA: \0", 20), 400},
                   Case{"GET / HTTP/1.1\r\nA: b\rc", 400}, Case{"GET /\x7f HTTP/1.1", 400}}) {
      CAPTURE(c.wire);
      HeadScanner s;
      REQUIRE(scan_bytewise(c.wire, s) == HeadScanner::Result::Error);
      CHECK(s.error().status == c.status);
    }
  }
}

TEST_CASE("BodyDecoder refuses malformed chunk framing") {
  auto fails = [](std::string_view wire) {
    BodyDecoder d(true, 0);
    while (!wire.empty()) {
      auto s = d.feed(wire);
      if (s.error) return true;
      if (s.consumed == 0) break;
      wire.remove_prefix(s.consumed);
    }
    return false;
  };
  CHECK(fails("-1\r\n"));
  CHECK(fails("+1\r\nx\r\n"));
  CHECK(fails("0x1\r\nx\r\n"));
  CHECK(fails("10000000000000000\r\n"));  // 2^64
  CHECK(fails("1\r\nxy\r\n"));
  CHECK(fails(std::string_view("1\0\r\nx\r\n", 7)));
  CHECK(fails("1\rx\r\nx\r\n"));
  CHECK(fails("0\r\n" + std::string(BodyDecoder::kMaxLine + 1, 'a') + "\r\n\r\n"));  // one over-long line
  std::string trailers = "0\r\n";
  for (int i = 0; i < 100; ++i) trailers += "X-T: " + std::string(1000, 'v') + "\r\n";
  CHECK(fails(trailers));
  CHECK_FALSE(fails("ffffffffffffffff\r\nabc"));  // huge but valid: the body is simply not over yet
  BodyDecoder after;
  after = BodyDecoder(true, 0);
  CHECK(after.feed("zz\r\n").error);
  CHECK(after.feed("1\r\n").error);  // stays failed
}
