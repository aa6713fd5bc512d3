#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "cache/evict.hpp"
#include "tests/unit/scratch_store.hpp"

using namespace wharf;
using namespace wharf::cache;
namespace fs = std::filesystem;

namespace {

struct Cache : testing::ScratchStore {
  Cache() : ScratchStore("wharf-evict") {}
  static std::string dg(int i) {
    char buf[72];
    std::snprintf(buf, sizeof buf, "sha256:%064x", i);
    return buf;
  }
  bool has_file(int i) const { return blobs->stat(*oci::parse_digest(dg(i))).has_value(); }
  // An image: manifest `m` (size 0) tagged "latest" in `repo` with one 100-byte blob `b`, last used at `when`.
  void image(const std::string& repo, int m, int b, Origin origin, int64_t when) {
    REQUIRE(blobs->write(*oci::parse_digest(dg(b)), std::string(100, 'b')));
    REQUIRE(testing::add_blob(*index, repo, dg(b), 100, origin));
    REQUIRE(blobs->write(*oci::parse_digest(dg(m)), ""));
    ManifestRecord rec;
    rec.media_type = "application/vnd.oci.image.manifest.v1+json";
    rec.blobs = {dg(b)};
    rec.origin = origin;
    REQUIRE(index->put_manifest(repo, dg(m), rec, std::string_view("latest")));
    REQUIRE(index->touch({{dg(m), when}, {dg(b), when}}));
  }
};

}  // namespace

TEST_CASE("evict") {
  Cache c;
  c.image("docker.io/library/old", 10, 1, Origin::Proxied, 1000);
  c.image("docker.io/library/new", 11, 2, Origin::Proxied, 2000);
  c.image("local/app", 12, 3, Origin::Pushed, 500);

  SUBCASE("within the bound nothing goes") {
    auto r = evict(*c.index, *c.blobs, 300);
    REQUIRE(r.has_value());
    CHECK(r->manifests_evicted == 0);
    CHECK(r->bytes_before == 300);
    for (int i : {1, 2, 3, 10, 11, 12}) CHECK(c.has_file(i));
  }
  SUBCASE("least recently used proxied image goes first") {
    auto r = evict(*c.index, *c.blobs, 250);
    REQUIRE(r.has_value());
    CHECK(r->manifests_evicted == 1);
    CHECK(r->bytes_after == 200);
    CHECK_FALSE(c.has_file(1));
    CHECK_FALSE(c.has_file(10));
    for (int i : {2, 3, 11, 12}) CHECK(c.has_file(i));
    auto t = c.index->read();
    CHECK_FALSE(c.index->tag(t, "docker.io/library/old", "latest"));
    CHECK(c.index->tag(t, "docker.io/library/new", "latest"));
  }
  SUBCASE("pushed content is never evicted") {
    auto r = evict(*c.index, *c.blobs, 50);
    REQUIRE(r.has_value());
    CHECK(r->manifests_evicted == 2);
    CHECK(r->bytes_after == 100);
    CHECK(c.has_file(3));
    CHECK(c.has_file(12));
    CHECK_FALSE(c.has_file(2));
  }
  SUBCASE("a proxied blob a pushed manifest uses stays") {
    REQUIRE(testing::add_blob(*c.index, "local/app", Cache::dg(1), 100, Origin::Pushed));
    ManifestRecord rec;
    rec.blobs = {Cache::dg(1)};
    REQUIRE(c.index->put_manifest("local/app", Cache::dg(13), rec, std::string_view("v2")));
    auto r = evict(*c.index, *c.blobs, 150);
    REQUIRE(r.has_value());
    CHECK(c.has_file(1));
    CHECK_FALSE(c.has_file(2));
  }
  SUBCASE("an open file still reads in full after eviction") {
    int fd = c.blobs->open_local(*oci::parse_digest(Cache::dg(1)));
    REQUIRE(fd >= 0);
    REQUIRE(evict(*c.index, *c.blobs, 250).has_value());
    CHECK_FALSE(c.has_file(1));
    char buf[200];
    CHECK(::read(fd, buf, sizeof buf) == 100);
    ::close(fd);
  }
}
