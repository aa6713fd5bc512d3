// The per-front manifest lookup cache kept fresh by index notifications (src/api/tag_cache.hpp).
#include <doctest/doctest.h>

#include "src/api/tag_cache.hpp"

using wharf::api::TagCache;

namespace {

TagCache::Entry entry(const std::string& digest) {
  TagCache::Entry e;
  e.digest = digest;
  e.rec.media_type = "application/vnd.oci.image.manifest.v1+json";
  e.rec.size = 123;
  return e;
}

}  // namespace

TEST_CASE("TagCache keeps answers only while enabled") {
  TagCache c;
  c.put(c.generation(), "r", "v1", entry("sha256:a"));
  CHECK(c.get("r", "v1") == nullptr);  // off until the LISTEN is in place
  c.set_enabled(true);
  c.put(c.generation(), "r", "v1", entry("sha256:a"));
  REQUIRE(c.get("r", "v1") != nullptr);
  CHECK(c.get("r", "v1")->digest == "sha256:a");
  CHECK(c.hits() == 2);
  c.set_enabled(false);  // the connection broke: nothing is served, nothing is kept
  CHECK(c.get("r", "v1") == nullptr);
  c.set_enabled(true);
  CHECK(c.get("r", "v1") == nullptr);
}

TEST_CASE("TagCache refuses a lookup that started before a notification") {
  TagCache c;
  c.set_enabled(true);
  const uint64_t seen = c.generation();
  c.apply("t\tr\tother\t1", 1);  // any notification may concern what the lookup read
  c.put(seen, "r", "v1", entry("sha256:old"));
  CHECK(c.get("r", "v1") == nullptr);
  c.put(c.generation(), "r", "v1", entry("sha256:new"));
  CHECK(c.get("r", "v1") != nullptr);
}

TEST_CASE("TagCache drops what a notification names") {
  TagCache c;
  c.set_enabled(true);
  auto fill = [&] {
    c.put(c.generation(), "r", "v1", entry("sha256:a"));
    c.put(c.generation(), "r", "v2", entry("sha256:b"));
    c.put(c.generation(), "r", "sha256:a", entry("sha256:a"));
    c.put(c.generation(), "s", "v1", entry("sha256:a"));
  };
  fill();
  CHECK(c.size() == 4);
  SUBCASE("a tag") {
    c.apply("t\tr\tv1\t1000", 1500);
    CHECK(c.get("r", "v1") == nullptr);
    CHECK(c.get("r", "v2") != nullptr);
    CHECK(c.get("s", "v1") != nullptr);
    CHECK(c.size() == 3);
    CHECK(c.last_lag() == doctest::Approx(0.5));
    CHECK(c.notifications() == 1);
  }
  SUBCASE("a repository") {
    c.apply("r\tr\t1000", 1000);
    CHECK(c.get("r", "v2") == nullptr);
    CHECK(c.get("r", "sha256:a") == nullptr);
    CHECK(c.get("s", "v1") != nullptr);
    CHECK(c.size() == 1);
  }
  SUBCASE("a manifest record") {
    c.apply("m\tsha256:a\t1000", 1000);
    CHECK(c.get("r", "v1") == nullptr);
    CHECK(c.get("s", "v1") == nullptr);
    CHECK(c.get("r", "sha256:a") == nullptr);
    CHECK(c.get("r", "v2") != nullptr);
    CHECK(c.size() == 1);
  }
  SUBCASE("this front's own write") {
    const uint64_t seen = c.generation();
    c.forget("r", "v1");
    CHECK(c.get("r", "v1") == nullptr);
    CHECK(c.get("r", "v2") != nullptr);
    c.put(seen, "r", "v1", entry("sha256:old"));  // a lookup from before the write is not kept
    CHECK(c.get("r", "v1") == nullptr);
    c.forget("r", "");
    CHECK(c.get("r", "v2") == nullptr);
    CHECK(c.get("s", "v1") != nullptr);
  }
  SUBCASE("an unreadable payload empties the cache") {
    for (const char* p : {"", "x", "t\tr", "t\tr\tv1\tnot-a-number", "q\tr\t1", "tt\tr\tv1\t1"}) {
      fill();
      c.apply(p, 1);
      CHECK(c.size() == 0);
    }
  }
}

TEST_CASE("TagCache stays bounded") {
  TagCache c;
  c.set_enabled(true);
  for (size_t i = 0; i <= TagCache::kMaxEntries; ++i) c.put(c.generation(), "r", std::string("t").append(std::to_string(i)), entry("d"));
  CHECK(c.size() <= TagCache::kMaxEntries);
}
