#include <doctest/doctest.h>

#include <string>

#include "src/util/json.hpp"

using namespace wharf::util;

namespace {

std::string nested(size_t depth, std::string_view open = "[", std::string_view close = "]",
                   std::string_view inner = "1") {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += open;
  s += inner;
  for (size_t i = 0; i < depth; ++i) s += close;
  return s;
}

}  // namespace

TEST_CASE("parse_json") {
  SUBCASE("ordinary documents parse to the same DOM as nlohmann") {
    const std::string text = R"({"a":[1,-2,3.5,"x",true,null,{"b":{}}],"c":18446744073709551615})";
    auto j = parse_json(text);
    REQUIRE(j);
    CHECK(*j == nlohmann::json::parse(text));
  }
  SUBCASE("nesting up to the limit is accepted, one more level is refused") {
    JsonLimits limits;
    limits.max_depth = 64;
    CHECK(parse_json(nested(64), limits));
    auto deep = parse_json(nested(65), limits);
    REQUIRE_FALSE(deep);
    CHECK(deep.error().kind == JsonFailure::TooDeep);
  }
  SUBCASE("100k levels of objects or arrays fail cleanly, even unterminated") {
    auto objects = parse_json(nested(100000, "{\"a\":", "}"));
    REQUIRE_FALSE(objects);
    CHECK(objects.error().kind == JsonFailure::TooDeep);
    auto brackets = parse_json(std::string(4 * 1024 * 1024, '['));
    REQUIRE_FALSE(brackets);
    CHECK(brackets.error().kind == JsonFailure::TooDeep);
  }
  SUBCASE("syntax errors and trailing text are refused with a short message") {
    for (const char* bad : {"", "{", "[1,]", "{\"a\":1}x", "nul", "\"\xff\"", "1e400", "[1 2]"}) {
      auto r = parse_json(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == JsonFailure::Syntax);
    }
    auto r = parse_json("\"" + std::string(100000, 'a') + "\x01\"");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.size() < 300);
  }
  SUBCASE("text over max_bytes is refused before parsing") {
    JsonLimits limits;
    limits.max_bytes = 10;
    auto r = parse_json("[1,2,3,4,5,6]", limits);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == JsonFailure::TooLarge);
  }
  SUBCASE("a DOM far larger than its text is refused") {
    // 3 bytes of text per empty array, about 80 bytes of heap each.
    std::string many = "[";
    for (int i = 0; i < 200000; ++i) many += "[],";
    many += "[]]";
    JsonLimits limits;
    limits.dom_fixed = 0;
    limits.dom_per_byte = 12;
    auto r = parse_json(many, limits);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == JsonFailure::TooBig);
    limits.dom_per_byte = 40;
    CHECK(parse_json(many, limits));
  }
  SUBCASE("the cost estimate grows with the document") {
    auto small = json_dom_cost("[1]");
    auto big = json_dom_cost("[1,2,3,4,5,6,7,8]");
    REQUIRE(small);
    REQUIRE(big);
    CHECK(*small < *big);
  }
}
