#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/gc.hpp"
#include "cache/publish.hpp"
#include "tests/unit/scratch_store.hpp"

using namespace wharf;
using namespace wharf::cache;
namespace fs = std::filesystem;

namespace {

struct Store : testing::ScratchStore {
  Store() : ScratchStore("wharf-publish") {}
  // A temp file under <root>/tmp holding `content`, its mtime set `age` seconds in the past.
  fs::path temp(const std::string& name, const std::string& content, int64_t age = 0) {
    fs::path p = blobs->tmp_dir() / name;
    std::ofstream(p, std::ios::binary) << content;
    if (age > 0) {
      struct timeval tv[2] = {{time(nullptr) - age, 0}, {time(nullptr) - age, 0}};
      REQUIRE(::utimes(p.c_str(), tv) == 0);
    }
    return p;
  }
  bool has_file(const oci::Digest& d) const { return blobs->stat(d).has_value(); }
  bool has_record(const oci::Digest& d) const { return index->blob(index->read(), d.str()).has_value(); }
};

std::string content(int i) { return "blob number " + std::to_string(i); }

}  // namespace

TEST_CASE("publish_blobs") {
  Store s;
  SUBCASE("the file and its record appear together") {
    auto d = oci::digest_of(content(1));
    auto errors = publish_blobs(*s.index, *s.blobs, {{s.temp("a", content(1)), d, "r", content(1).size(), Origin::Pushed}});
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].empty());
    CHECK(s.has_file(d));
    auto txn = s.index->read();
    CHECK(s.index->blob_linked(txn, "r", d.str()));
    CHECK(s.index->blob(txn, d.str())->size == content(1).size());
    CHECK_FALSE(fs::exists(s.blobs->tmp_dir() / "a"));
  }
  SUBCASE("an item that fails is neither stored nor linked; the others are") {
    auto d1 = oci::digest_of(content(1)), d2 = oci::digest_of(content(2));
    auto errors = publish_blobs(*s.index, *s.blobs,
                                {{s.blobs->tmp_dir() / "missing", d1, "r", 5, Origin::Pushed},
                                 {s.temp("b", content(2)), d2, "r", content(2).size(), Origin::Pushed}});
    CHECK(errors[0].find("missing") != std::string::npos);
    CHECK(errors[1].empty());
    CHECK_FALSE(s.has_file(d1));
    CHECK_FALSE(s.has_record(d1));
    CHECK(s.has_record(d2));
  }
  SUBCASE("a stored file of the wrong size is replaced") {
    auto d = oci::digest_of(content(3));
    REQUIRE(s.blobs->write(d, "damaged"));
    auto errors = publish_blobs(*s.index, *s.blobs, {{s.temp("c", content(3)), d, "r", content(3).size(), Origin::Pushed}});
    CHECK(errors[0].empty());
    CHECK(*s.blobs->stat(d) == content(3).size());
  }
}

TEST_CASE("publish_manifest") {
  Store s;
  const std::string body = R"({"schemaVersion":2})";
  auto d = oci::digest_of(body);
  ManifestRecord rec;
  rec.media_type = "application/vnd.oci.image.manifest.v1+json";
  rec.size = body.size();
  SUBCASE("stored and recorded, tagged") {
    auto r = publish_manifest_bytes(*s.index, *s.blobs, body, {{}, d, "r", rec, "v1", {}});
    REQUIRE(r);
    CHECK_FALSE(r->has_value());
    CHECK(s.has_file(d));
    CHECK(s.index->tag(s.index->read(), "r", "v1") == d.str());
  }
  SUBCASE("a missing reference writes neither the file nor the record") {
    const std::string gone = "sha256:" + std::string(64, 'c');
    auto r = publish_manifest_bytes(*s.index, *s.blobs, body, {{}, d, "r", rec, "v1", {gone}});
    REQUIRE(r);
    CHECK(r->value_or("") == gone);
    CHECK_FALSE(s.has_file(d));
    CHECK_FALSE(s.index->manifest(s.index->read(), d.str()));
    int left = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(s.blobs->tmp_dir())) ++left;
    CHECK(left == 0);
  }
}

// The race of issue 9: the online stray sweep removed a file renamed into blobs/ but not yet indexed,
// when the file was old (an upload resumed after an hour). Publications of old files run against
// online collections in a loop; every publication that succeeded must keep its file.
TEST_CASE("online garbage collection never removes a published blob") {
  Store s;
  constexpr int kBlobs = 150;
  std::atomic<bool> done{false};
  std::atomic<int> runs{0}, failures{0};
  std::thread gc([&] {
    while (!done) {
      GcOptions opts;
      opts.grace = kOnlineGcGrace;  // strays are files older than an hour: every file below is
      if (!collect(*s.index, *s.blobs, opts)) ++failures;
      ++runs;
    }
  });
  std::vector<oci::Digest> published;
  for (int i = 0; i < kBlobs; ++i) {
    auto d = oci::digest_of(content(i));
    auto tmp = s.temp("up-" + std::to_string(i), content(i), 3 * 86400);
    auto errors = publish_blobs(*s.index, *s.blobs, {{tmp, d, "r", content(i).size(), Origin::Pushed}});
    REQUIRE(errors[0].empty());
    published.push_back(d);
  }
  const int after = runs + 3;  // a few more runs after the last publication (bounded: 60 s at most)
  for (int i = 0; i < 6000 && runs < after; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  done = true;
  gc.join();
  CHECK(failures == 0);
  int lost = 0;
  for (const auto& d : published)
    if (!s.has_file(d) || !s.has_record(d)) ++lost;
  CHECK(lost == 0);
}

TEST_CASE("remove_unindexed") {
  Store s;
  auto indexed = oci::digest_of(content(1)), stray = oci::digest_of(content(2));
  REQUIRE(publish_blobs(*s.index, *s.blobs, {{s.temp("a", content(1)), indexed, "r", 13, Origin::Pushed}})[0].empty());
  REQUIRE(s.blobs->write(stray, content(2)));
  GcResult r;
  remove_unindexed(*s.index, *s.blobs, {indexed.str(), stray.str(), "not a digest"}, r);
  CHECK(s.has_file(indexed));
  CHECK_FALSE(s.has_file(stray));
  CHECK(r.files_deleted == 1);
  CHECK(r.bytes_freed == content(2).size());
}
