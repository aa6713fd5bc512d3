#include <doctest/doctest.h>

#include "src/http/message.hpp"

using namespace wharf::http;

TEST_CASE("reason_phrase") {
  SUBCASE("every status wharf sends has its registered phrase") {
    CHECK(reason_phrase(505) == "HTTP Version Not Supported");
    CHECK(reason_phrase(408) == "Request Timeout");
    CHECK(reason_phrase(413) == "Content Too Large");
    CHECK(reason_phrase(409) == "Conflict");
    CHECK(reason_phrase(415) == "Unsupported Media Type");
    CHECK(reason_phrase(303) == "See Other");
    CHECK(reason_phrase(308) == "Permanent Redirect");
    CHECK(reason_phrase(507) == "Insufficient Storage");
  }
  SUBCASE("no status ever gets 'Unknown' or an empty phrase") {
    for (int s = 100; s <= 599; ++s) {
      CAPTURE(s);
      CHECK(reason_phrase(s) != "Unknown");
      CHECK_FALSE(reason_phrase(s).empty());
    }
  }
}
