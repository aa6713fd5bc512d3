#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <algorithm>
#include <ctime>
#include <filesystem>
#include <string>

#include "cache/gc.hpp"
#include "tests/unit/scratch_store.hpp"

using namespace wharf;
using namespace wharf::cache;
namespace fs = std::filesystem;

namespace {

// A store (index + blob files) in a fresh directory under /tmp, removed at the end of the scope.
struct Store : testing::ScratchStore {
  Store() : ScratchStore("wharf-gc") {}
  bool has_file(const std::string& d) const { return blobs->stat(*oci::parse_digest(d)).has_value(); }
  // Stores a blob file and links it into `repo`.
  void blob(const std::string& repo, const std::string& d, Origin origin = Origin::Pushed) {
    REQUIRE(blobs->write(*oci::parse_digest(d), std::string(100, 'b')));
    REQUIRE(testing::add_blob(*index, repo, d, 100, origin));
  }
  // Stores a manifest file and record referencing `refs` (blobs) and `children`, optionally tagged.
  void manifest(const std::string& repo, const std::string& d, std::vector<std::string> refs,
                std::optional<std::string> tag, std::vector<std::string> children = {}, std::string subject = {},
                Origin origin = Origin::Pushed) {
    REQUIRE(blobs->write(*oci::parse_digest(d), std::string(10, 'm')));
    ManifestRecord rec;
    rec.media_type = "application/vnd.oci.image.manifest.v1+json";
    rec.size = 10;
    rec.blobs = std::move(refs);
    rec.children = std::move(children);
    rec.subject = std::move(subject);
    rec.origin = origin;
    REQUIRE(index->put_manifest(repo, d, rec, tag ? std::optional<std::string_view>(*tag) : std::nullopt));
  }
  bool blob_record(const std::string& d) const {
    auto t = index->read();
    return index->blob(t, d).has_value();
  }
  bool manifest_record(const std::string& d) const {
    auto t = index->read();
    return index->manifest(t, d).has_value();
  }
};

std::string dg(int i) {
  char buf[72];
  std::snprintf(buf, sizeof buf, "sha256:%064x", i);
  return buf;
}

}  // namespace

TEST_CASE("mark") {
  Store s;
  s.blob("a", dg(1));
  s.blob("a", dg(2));
  s.manifest("a", dg(10), {dg(1)}, "v1");
  s.manifest("a", dg(11), {dg(2)}, std::nullopt);  // untagged
  auto txn = s.index->read();
  Snapshot snap = load_snapshot(*s.index, txn);

  SUBCASE("untagged manifests are roots unless deleting untagged") {
    Marks keep = mark(snap, Untagged::Keep, INT64_MAX);
    CHECK(keep.blobs.count(dg(1)) == 1);
    CHECK(keep.blobs.count(dg(2)) == 1);
    Marks del = mark(snap, Untagged::Delete, INT64_MAX);
    CHECK(del.blobs.count(dg(1)) == 1);
    CHECK(del.blobs.count(dg(2)) == 0);
    CHECK(del.in_repo.count({"a", dg(11)}) == 0);
  }
  SUBCASE("young untagged manifests are kept") {
    Marks del = mark(snap, Untagged::Delete, 0);
    CHECK(del.blobs.count(dg(2)) == 1);
  }
  SUBCASE("skipped entries are not roots") {
    Marks m = mark(snap, Untagged::Keep, INT64_MAX, {{"a", dg(10)}, {"a", dg(11)}});
    CHECK(m.blobs.empty());
  }
}

TEST_CASE("mark follows index children and referrers") {
  Store s;
  s.blob("a", dg(1));
  s.blob("a", dg(2));
  s.blob("a", dg(3));
  s.manifest("a", dg(10), {dg(1)}, std::nullopt);                              // child, untagged
  s.manifest("a", dg(20), {}, "multi", {dg(10)});                                // tagged index
  s.manifest("a", dg(30), {dg(2)}, std::nullopt, {}, dg(20));                    // referrer of the index
  s.manifest("a", dg(40), {dg(3)}, std::nullopt, {}, dg(99));                    // referrer of nothing kept
  auto txn = s.index->read();
  Snapshot snap = load_snapshot(*s.index, txn);
  Marks m = mark(snap, Untagged::Delete, INT64_MAX);
  CHECK(m.in_repo.count({"a", dg(10)}) == 1);
  CHECK(m.in_repo.count({"a", dg(30)}) == 1);
  CHECK(m.in_repo.count({"a", dg(40)}) == 0);
  CHECK(m.blobs.count(dg(1)) == 1);
  CHECK(m.blobs.count(dg(2)) == 1);
  CHECK(m.blobs.count(dg(3)) == 0);
}

TEST_CASE("collect") {
  Store s;
  s.blob("a", dg(1));
  s.blob("a", dg(2));
  s.blob("b", dg(2));
  s.blob("b", dg(3));
  s.manifest("a", dg(10), {dg(1), dg(2)}, "v1");
  s.manifest("b", dg(11), {dg(2), dg(3)}, "v1");
  REQUIRE(s.index->delete_manifest("b", dg(11)).value());

  SUBCASE("sweeps what no kept manifest references") {
    auto r = collect(*s.index, *s.blobs, {});
    REQUIRE(r.has_value());
    CHECK(r->blobs_deleted == 1);
    CHECK(r->manifests_deleted == 1);
    CHECK(r->files_deleted == 2);
    CHECK(r->bytes_freed == 110);
    CHECK_FALSE(s.blob_record(dg(3)));
    CHECK_FALSE(s.has_file(dg(3)));
    CHECK_FALSE(s.manifest_record(dg(11)));
    CHECK_FALSE(s.has_file(dg(11)));
    for (int i : {1, 2, 10}) CHECK(s.has_file(dg(i)));
    CHECK(s.blob_record(dg(2)));
    auto t = s.index->read();
    CHECK_FALSE(s.index->blob_linked(t, "b", dg(3)));
    CHECK(s.index->blob_linked(t, "b", dg(2)));
  }
  SUBCASE("dry run deletes nothing") {
    GcOptions o;
    o.dry_run = DryRun::Yes;
    auto r = collect(*s.index, *s.blobs, o);
    REQUIRE(r.has_value());
    CHECK(r->blobs_deleted == 1);
    CHECK(r->files_deleted == 2);
    CHECK(r->bytes_freed == 110);
    CHECK(s.blob_record(dg(3)));
    CHECK(s.has_file(dg(3)));
    CHECK(s.has_file(dg(11)));
  }
  SUBCASE("content touched within the grace period is kept") {
    GcOptions o;
    o.grace = std::chrono::seconds(3600);
    auto r = collect(*s.index, *s.blobs, o);
    REQUIRE(r.has_value());
    CHECK(r->files_deleted == 0);
    CHECK(s.has_file(dg(3)));
    CHECK(s.blob_record(dg(3)));
    o.now = ::time(nullptr) + 7200;  // two hours later it is garbage
    r = collect(*s.index, *s.blobs, o);
    REQUIRE(r.has_value());
    CHECK(r->blobs_deleted == 1);
    CHECK_FALSE(s.has_file(dg(3)));
  }
  SUBCASE("untagged manifests go with --delete-untagged") {
    s.manifest("a", dg(12), {dg(1)}, std::nullopt);
    s.blob("a", dg(4));
    s.manifest("a", dg(13), {dg(4)}, std::nullopt);
    GcOptions o;
    o.untagged = Untagged::Delete;
    auto r = collect(*s.index, *s.blobs, o);
    REQUIRE(r.has_value());
    CHECK(r->manifests_untagged == 2);
    CHECK_FALSE(s.manifest_record(dg(13)));
    CHECK_FALSE(s.has_file(dg(4)));
    CHECK(s.has_file(dg(1)));  // still used by the tagged manifest
    auto t = s.index->read();
    CHECK_FALSE(s.index->manifest_in_repo(t, "a", dg(12)));
  }
  SUBCASE("stray files are removed, recent ones only after the grace period") {
    REQUIRE(s.blobs->write(*oci::parse_digest(dg(50)), "stray"));
    GcOptions o;
    o.grace = std::chrono::seconds(3600);
    REQUIRE(collect(*s.index, *s.blobs, o).has_value());
    CHECK(s.has_file(dg(50)));
    REQUIRE(collect(*s.index, *s.blobs, {}).has_value());
    CHECK_FALSE(s.has_file(dg(50)));
  }
}

TEST_CASE("plan_retention keeps the newest matching tags per repository and rule") {
  Snapshot snap;
  // team-a/app: pr-1..pr-6 pushed at 100..600 (pr-1 and pr-2 share a manifest), v1 at 50; team-b/app: pr-1..pr-3.
  for (int i = 1; i <= 6; ++i) {
    const int d = i == 2 ? 1 : i;
    snap.tags.push_back({"team-a/app", "pr-" + std::to_string(i), dg(d)});
    if (i != 2) snap.repo_manifests.push_back({"team-a/app", dg(d), 100 * i});
  }
  snap.tags.push_back({"team-a/app", "v1", dg(7)});
  snap.repo_manifests.push_back({"team-a/app", dg(7), 50});
  for (int i = 1; i <= 3; ++i) {
    snap.tags.push_back({"team-b/app", "pr-" + std::to_string(i), dg(20 + i)});
    snap.repo_manifests.push_back({"team-b/app", dg(20 + i), 100 * i});
  }
  const std::vector<config::RetentionRule> rules{{.match = "team-a/*", .tags = "pr-*", .keep = 3}};

  SUBCASE("older tags go; their manifests leave the repository once no tag is left") {
    RetentionPlan p = plan_retention(snap, rules, {});
    std::set<std::pair<std::string, std::string>> tags(p.tags.begin(), p.tags.end());
    CHECK(tags == std::set<std::pair<std::string, std::string>>{
                      {"team-a/app", "pr-1"}, {"team-a/app", "pr-2"}, {"team-a/app", "pr-3"}});
    CHECK(p.untag == std::set<std::pair<std::string, std::string>>{{"team-a/app", dg(1)}, {"team-a/app", dg(3)}});
  }
  SUBCASE("a manifest still tagged otherwise stays in the repository") {
    snap.tags.push_back({"team-a/app", "latest", dg(3)});
    RetentionPlan p = plan_retention(snap, rules, {});
    CHECK(p.tags.size() == 3);
    CHECK(p.untag == std::set<std::pair<std::string, std::string>>{{"team-a/app", dg(1)}});
  }
  SUBCASE("a manifest that a still tagged index references stays in the repository") {
    ManifestRecord index;
    index.children = {dg(3)};
    snap.manifests.emplace(dg(30), index);
    snap.tags.push_back({"team-a/app", "multi", dg(30)});
    snap.repo_manifests.push_back({"team-a/app", dg(30), 10});
    RetentionPlan p = plan_retention(snap, rules, {});
    CHECK(p.untag == std::set<std::pair<std::string, std::string>>{{"team-a/app", dg(1)}});
  }
  SUBCASE("immutable tags are neither counted nor removed") {
    RetentionPlan p = plan_retention(snap, rules, {"team-a/*:pr-3"});
    std::set<std::pair<std::string, std::string>> tags(p.tags.begin(), p.tags.end());
    CHECK(tags == std::set<std::pair<std::string, std::string>>{{"team-a/app", "pr-1"}, {"team-a/app", "pr-2"}});
  }
  SUBCASE("the first matching rule governs a tag; keep 0 removes all it governs") {
    const std::vector<config::RetentionRule> two{{.match = "team-b/app", .tags = "pr-3", .keep = 1},
                                                 {.match = "team-b/*", .tags = "*", .keep = 0}};
    RetentionPlan p = plan_retention(snap, two, {});
    std::set<std::pair<std::string, std::string>> tags(p.tags.begin(), p.tags.end());
    CHECK(tags == std::set<std::pair<std::string, std::string>>{{"team-b/app", "pr-1"}, {"team-b/app", "pr-2"}});
  }
  SUBCASE("no rules, nothing removed") {
    RetentionPlan p = plan_retention(snap, {}, {});
    CHECK(p.tags.empty());
    CHECK(p.untag.empty());
  }
}

TEST_CASE("collect applies retention, a dry run only lists it") {
  Store s;
  for (int i = 1; i <= 5; ++i) {
    s.blob("team-a/app", dg(i));
    s.manifest("team-a/app", dg(10 + i), {dg(i)}, "pr-" + std::to_string(i));  // same second: lexical order
  }
  GcOptions o;
  o.retention = {{.match = "team-a/*", .tags = "pr-*", .keep = 2}};
  auto tags = [&] {
    auto t = s.index->read();
    bool more = false;
    return s.index->tags(t, "team-a/app", "", 0, &more);
  };
  SUBCASE("dry run") {
    o.dry_run = DryRun::Yes;
    auto r = collect(*s.index, *s.blobs, o);
    REQUIRE(r.has_value());
    CHECK(r->tags_deleted == 3);
    CHECK(std::count(r->deleted.begin(), r->deleted.end(), "tag team-a/app:pr-1") == 1);
    CHECK(tags().size() == 5);
    CHECK(s.has_file(dg(1)));
  }
  SUBCASE("real run") {
    auto r = collect(*s.index, *s.blobs, o);
    REQUIRE(r.has_value());
    CHECK(r->tags_deleted == 3);
    CHECK(r->manifests_untagged == 3);
    CHECK(tags() == std::vector<std::string>{"pr-4", "pr-5"});
    CHECK_FALSE(s.manifest_record(dg(11)));
    CHECK_FALSE(s.has_file(dg(1)));
    CHECK(s.has_file(dg(5)));
  }
}
