#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "src/util/number.hpp"

using namespace wharf::util;

TEST_CASE("parse_u64") {
  CHECK(parse_u64("0") == 0u);
  CHECK(parse_u64("18446744073709551615") == UINT64_MAX);
  CHECK_FALSE(parse_u64("18446744073709551616"));
  CHECK_FALSE(parse_u64("99999999999999999999"));
  CHECK_FALSE(parse_u64(""));
  CHECK_FALSE(parse_u64("-1"));
  CHECK_FALSE(parse_u64(" -1"));
  CHECK_FALSE(parse_u64("+1"));
  CHECK_FALSE(parse_u64(" 1"));
  CHECK_FALSE(parse_u64("1x"));
  CHECK_FALSE(parse_u64("0x10"));
  CHECK(parse_u64("100", 100) == 100u);
  CHECK_FALSE(parse_u64("101", 100));
}

TEST_CASE("parse_i64") {
  CHECK(parse_i64("-5") == -5);
  CHECK(parse_i64("-9223372036854775808") == INT64_MIN);
  CHECK_FALSE(parse_i64("9223372036854775808"));
  CHECK_FALSE(parse_i64("-"));
  CHECK_FALSE(parse_i64("--1"));
  CHECK_FALSE(parse_i64("1", 2, 3));
}

TEST_CASE("parse_hex_u64") {
  CHECK(parse_hex_u64("fF") == 255u);
  CHECK_FALSE(parse_hex_u64("-1"));
  CHECK_FALSE(parse_hex_u64("10000000000000000"));
  CHECK_FALSE(parse_hex_u64("0x1"));
}

TEST_CASE("parse_u64_trimmed") {
  CHECK(parse_u64_trimmed(" \t42 ") == 42u);
  CHECK_FALSE(parse_u64_trimmed("4 2"));
  CHECK_FALSE(parse_u64_trimmed("  "));
}

TEST_CASE("json_int") {
  using nlohmann::json;
  CHECK(json_int(json(300), 0, 1000) == 300);
  CHECK(json_int(json(300.7), 0, 1000) == 300);
  CHECK_FALSE(json_int(json(1e300), 0, INT64_MAX));
  CHECK_FALSE(json_int(json(-1e300), INT64_MIN, 0));
  CHECK_FALSE(json_int(json(10000000000LL), 0, 100000));
  CHECK_FALSE(json_int(json(UINT64_MAX), 0, INT64_MAX));
  CHECK_FALSE(json_int(json("300"), 0, 1000));
  CHECK_FALSE(json_int(json(std::nan("")), 0, 1000));
  CHECK_FALSE(json_int(json(-1), 0, 1000));
}

TEST_CASE("clamp_seconds") {
  CHECK(clamp_seconds(-5, 100).count() == 0);
  CHECK(clamp_seconds(5, 100).count() == 5);
  CHECK(clamp_seconds(INT64_MAX, 100).count() == 100);
}
