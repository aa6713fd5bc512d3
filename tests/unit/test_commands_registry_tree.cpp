#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "src/commands/registry_tree.hpp"

using wharf::commands::key_children;
using wharf::commands::parse_link;
using Names = std::vector<std::string>;

TEST_CASE("key_children lists the directories and objects under a key prefix") {
  const std::set<std::string> keys = {
      "repositories/app/_layers/sha256/aa/link",
      "repositories/app/_manifests/tags/v1/current/link",
      "repositories/app/_manifests/tags/v1/index/sha256/bb/link",
      "repositories/app/_manifests/tags/v2/current/link",
      "repositories/app2/_layers/sha256/cc/link",
      "repositories/app-x/_layers/sha256/dd/link",
      "repositories/team/tool/_layers/sha256/ee/link",
      "repositories/team//empty/link",
      "repositories/a",
      "repositories/a!b/x",
      "repositories/a/y",
  };
  SUBCASE("distinct first components, sorted, each once (an object and a directory of the same name)") {
    CHECK(key_children(keys, "repositories") == Names{"a", "a!b", "app", "app-x", "app2", "team"});
  }
  SUBCASE("a prefix is a whole component: app is not app2 or app-x") {
    CHECK(key_children(keys, "repositories/app") == Names{"_layers", "_manifests"});
    CHECK(key_children(keys, "repositories/app/_manifests/tags") == Names{"v1", "v2"});
  }
  SUBCASE("empty components are no entry") { CHECK(key_children(keys, "repositories/team") == Names{"tool"}); }
  SUBCASE("an absent directory or an object's name lists nothing") {
    CHECK(key_children(keys, "repositories/none").empty());
    CHECK(key_children(keys, "repositories/app/_layers/sha256/aa/link").empty());
  }
}

TEST_CASE("parse_link accepts a digest with surrounding whitespace only") {
  const std::string hex(64, 'a');
  CHECK(parse_link("sha256:" + hex + "\n"));
  CHECK(parse_link("  sha256:" + hex));
  CHECK_FALSE(parse_link(""));
  CHECK_FALSE(parse_link("sha256:" + hex + " x"));
  CHECK_FALSE(parse_link("\x00\xffnot a digest"));
}
