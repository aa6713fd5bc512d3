// Unit tests of proxy/http_text: URL resolving, origins and redaction, and response header lines.
#include <doctest/doctest.h>

#include "proxy/http_text.hpp"

using namespace wharf::proxy;

using Headers = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("resolve_url") {
  SUBCASE("a scheme-relative redirect keeps the scheme and leaves the host") {
    CHECK(resolve_url("https://r.io/v2/a", "//cdn.io/b") == "https://cdn.io/b");
  }
  SUBCASE("plain http is allowed, in any letter case") {
    CHECK(resolve_url("HTTP://r.io/v2/a", "b").has_value());
    CHECK(resolve_url("https://r.io/v2/a", "http://mirror.io/b") == "http://mirror.io/b");
  }
  SUBCASE("a base that is not http(s) is refused even for an absolute reference") {
    CHECK_FALSE(resolve_url("ftp://r.io/", "https://cdn.io/b").has_value());
    CHECK_FALSE(resolve_url("https://r.io/", "file:///etc/passwd").has_value());
  }
}

TEST_CASE("url_origin") {
  SUBCASE("a non-default port stays, the default http port goes") {
    CHECK(url_origin("https://r.io:8443/v2/") == "https://r.io:8443");
    CHECK(url_origin("http://r.io:80/v2/") == "http://r.io");
  }
  SUBCASE("the scheme is lowercased as well as the host") {
    CHECK(url_origin("HTTPS://R.IO/x") == "https://r.io");
  }
  SUBCASE("relative or empty input has no origin") {
    CHECK_FALSE(url_origin("/v2/").has_value());
    CHECK_FALSE(url_origin("").has_value());
  }
}

TEST_CASE("redact_url") {
  SUBCASE("user info goes, the path stays") {
    CHECK(redact_url("http://token@r.io:5000/v2/a") == "http://r.io:5000/v2/a");
  }
  SUBCASE("an '@' after the host is path, not user info") {
    CHECK(redact_url("https://r.io/v2/a@b") == "https://r.io/v2/a@b");
  }
  SUBCASE("a query before a fragment is reported, the fragment is not") {
    CHECK(redact_url("https://r.io/t?token=s#f") == "https://r.io/t?<redacted>");
  }
  SUBCASE("text without a scheme still loses its query") {
    CHECK(redact_url("/token?secret=1") == "/token?<redacted>");
  }
}

namespace {

// The headers after adding `lines` in order.
Headers headers_of(std::initializer_list<std::string_view> lines) {
  Headers h;
  for (std::string_view line : lines) add_header_line(h, line);
  return h;
}

}  // namespace

TEST_CASE("add_header_line") {
  SUBCASE("a field: name lowercased, both sides trimmed, CRLF dropped") {
    CHECK(headers_of({"Content-Type :  application/json \r\n"}) == Headers{{"content-type", "application/json"}});
  }
  SUBCASE("only the first colon splits, so values keep theirs") {
    CHECK(headers_of({"Location: https://cdn.io:443/b\r\n"}) == Headers{{"location", "https://cdn.io:443/b"}});
  }
  SUBCASE("repeated fields are kept in arrival order") {
    CHECK(headers_of({"WWW-Authenticate: Basic realm=x\r\n", "www-authenticate: Bearer realm=y\r\n"}) ==
          Headers{{"www-authenticate", "Basic realm=x"}, {"www-authenticate", "Bearer realm=y"}});
  }
  SUBCASE("a folded line continues the previous value after one space") {
    CHECK(headers_of({"X-Long: one\r\n", " \t two\r\n"}) == Headers{{"x-long", "one two"}});
  }
  SUBCASE("a folded line with nothing before it is read as a field") {
    CHECK(headers_of({" X-A: b\r\n"}) == Headers{{"x-a", "b"}});
  }
  SUBCASE("a line without a colon is skipped") {
    CHECK(headers_of({"garbage\r\n", "A: 1\r\n"}) == Headers{{"a", "1"}});
  }
  SUBCASE("only the blank line ending the head returns false, and it adds nothing") {
    Headers h;
    CHECK(add_header_line(h, "A: 1\r\n"));
    CHECK(add_header_line(h, "garbage\r\n"));
    CHECK(add_header_line(h, " folded\r\n"));
    CHECK_FALSE(add_header_line(h, "\r\n"));
    CHECK_FALSE(add_header_line(h, " \t\r\n"));
    CHECK(h == Headers{{"a", "1 folded"}});
  }
}
