#include <doctest/doctest.h>

#include "src/oci/range.hpp"

using namespace wharf::oci;

namespace {
void check_satisfiable(const RangeRequest& r, uint64_t first, uint64_t last) {
  REQUIRE(r.kind == RangeKind::Satisfiable);
  CHECK(r.range.first == first);
  CHECK(r.range.last == last);
}
}  // namespace

TEST_CASE("parse_range") {
  SUBCASE("closed range") {
    check_satisfiable(parse_range("bytes=0-99", 1000), 0, 99);
    check_satisfiable(parse_range("bytes=10-10", 1000), 10, 10);
    CHECK(parse_range("bytes=0-99", 1000).range.length() == 100);
  }
  SUBCASE("last is clamped to size-1") { check_satisfiable(parse_range("bytes=5-5000", 10), 5, 9); }
  SUBCASE("open-ended range") { check_satisfiable(parse_range("bytes=3-", 10), 3, 9); }
  SUBCASE("suffix range") {
    check_satisfiable(parse_range("bytes=-4", 10), 6, 9);
    check_satisfiable(parse_range("bytes=-100", 10), 0, 9);
  }
  SUBCASE("unsatisfiable") {
    CHECK(parse_range("bytes=-0", 10).kind == RangeKind::Unsatisfiable);
    CHECK(parse_range("bytes=10-20", 10).kind == RangeKind::Unsatisfiable);
    CHECK(parse_range("bytes=10-", 10).kind == RangeKind::Unsatisfiable);
  }
  SUBCASE("empty body makes every valid range unsatisfiable") {
    CHECK(parse_range("bytes=0-0", 0).kind == RangeKind::Unsatisfiable);
    CHECK(parse_range("bytes=0-", 0).kind == RangeKind::Unsatisfiable);
    CHECK(parse_range("bytes=-5", 0).kind == RangeKind::Unsatisfiable);
  }
  SUBCASE("ignored headers") {
    CHECK(parse_range("", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=5-2", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=0-1,5-6", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=-", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=a-b", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=1-2x", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=5", 10).kind == RangeKind::None);
    CHECK(parse_range("items=0-5", 10).kind == RangeKind::None);
    CHECK(parse_range("0-5", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=+1-2", 10).kind == RangeKind::None);
  }
  SUBCASE("overflow is ignored") {
    CHECK(parse_range("bytes=18446744073709551616-", 10).kind == RangeKind::None);
    CHECK(parse_range("bytes=0-99999999999999999999", 10).kind == RangeKind::None);
    check_satisfiable(parse_range("bytes=0-18446744073709551615", 10), 0, 9);
  }
  SUBCASE("unit is case-insensitive and surrounding spaces are tolerated") {
    check_satisfiable(parse_range(" Bytes=1-2 ", 10), 1, 2);
  }
}

TEST_CASE("parse_content_range") {
  SUBCASE("bare range") {
    const auto r = parse_content_range("0-99");
    REQUIRE(r);
    CHECK(r->first == 0);
    CHECK(r->last == 99);
  }
  SUBCASE("with a bytes prefix") {
    const auto a = parse_content_range("bytes 100-199");
    REQUIRE(a);
    CHECK(a->first == 100);
    CHECK(a->last == 199);
    const auto b = parse_content_range("bytes=5-5");
    REQUIRE(b);
    CHECK(b->length() == 1);
  }
  SUBCASE("malformed") {
    CHECK_FALSE(parse_content_range("99-0"));
    CHECK_FALSE(parse_content_range("abc"));
    CHECK_FALSE(parse_content_range("0-"));
    CHECK_FALSE(parse_content_range("-5"));
    CHECK_FALSE(parse_content_range(""));
    CHECK_FALSE(parse_content_range("1-2-3"));
    CHECK_FALSE(parse_content_range("bytes"));
    CHECK_FALSE(parse_content_range("0-99999999999999999999"));
  }
}

TEST_CASE("parse_content_range never yields a length that wraps") {
  CHECK_FALSE(parse_content_range("0-18446744073709551615"));  // length would be 2^64 == 0
  CHECK_FALSE(parse_content_range("5-18446744073709551614"));
  CHECK_FALSE(parse_content_range("0-9223372036854775807"));    // past the largest file offset
  const auto r = parse_content_range("0-9223372036854775806");
  REQUIRE(r);
  CHECK(r->length() == 9223372036854775807ULL);
  CHECK_FALSE(parse_content_range("+0-5"));
  CHECK_FALSE(parse_content_range("0--5"));
}
