#include <doctest/doctest.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cache/index.hpp"
#include "cache/index_lmdb.hpp"
#include "cache/index_check.hpp"
#include "cache/index_records.hpp"
#include "cache/lmdb.hpp"
#include "tests/unit/scratch_store.hpp"

using namespace wharf::cache;
using wharf::testing::add_blob;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end of the scope.
struct Scratch {
  fs::path dir;
  Scratch() {
    char tmpl[] = "/tmp/wharf-index-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::unique_ptr<Index> open_index(const fs::path& dir, size_t map_size = size_t(1) << 30) {
  auto idx = LmdbIndex::open(dir, map_size);
  REQUIRE_MESSAGE(idx.has_value(), (idx ? "" : idx.error()));
  return std::move(*idx);
}

std::string digest(int i) {
  char buf[72];
  std::snprintf(buf, sizeof buf, "sha256:%064x", i);
  return buf;
}

ManifestRecord manifest_rec(std::string subject = {}) {
  ManifestRecord m;
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  m.size = 1234;
  m.blobs = {digest(100), digest(101)};
  m.children = {digest(200)};
  m.subject = std::move(subject);
  m.artifact_type = "application/vnd.example.sbom";
  m.annotations_json = R"({"org.example":"x"})";
  m.origin = Origin::Proxied;
  m.created = 1700000000;
  return m;
}

std::string tag_name(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "t%06d", i);
  return buf;
}

}  // namespace

TEST_CASE("Index::open") {
  Scratch s;
  SUBCASE("creates the directory") {
    auto idx = open_index(s.dir / "a" / "index");
    CHECK(fs::exists(s.dir / "a" / "index" / "data.mdb"));
    auto txn = idx->read();
    CHECK_FALSE(idx->repo_exists(txn, "library/alpine"));
  }
  SUBCASE("data survives closing and reopening") {
    {
      auto idx = open_index(s.dir);
      REQUIRE(idx->put_manifest("library/alpine", digest(1), manifest_rec(), "latest"));
      REQUIRE(add_blob(*idx, "library/alpine", digest(100), 42, Origin::Pushed));
      REQUIRE(idx->put_upload("u-1", UploadRecord{"library/alpine", 77}));
    }
    auto idx = open_index(s.dir);
    auto txn = idx->read();
    CHECK(idx->repo_exists(txn, "library/alpine"));
    CHECK(idx->tag(txn, "library/alpine", "latest") == digest(1));
    CHECK(idx->manifest_in_repo(txn, "library/alpine", digest(1)));
    auto m = idx->manifest(txn, digest(1));
    REQUIRE(m);
    CHECK(m->blobs == manifest_rec().blobs);
    CHECK(idx->blob_linked(txn, "library/alpine", digest(100)));
    REQUIRE(idx->blob(txn, digest(100)));
    CHECK(idx->blob(txn, digest(100))->size == 42);
    REQUIRE(idx->upload(txn, "u-1"));
    CHECK(idx->upload(txn, "u-1")->started == 77);
  }
  SUBCASE("fails with a message when the directory is a file") {
    fs::path file = s.dir / "file";
    std::fclose(std::fopen(file.c_str(), "w"));
    auto idx = LmdbIndex::open(file);
    REQUIRE_FALSE(idx);
    CHECK(idx.error().find(file.string()) != std::string::npos);
  }
}

TEST_CASE("Index::read") {
  Scratch s;
  auto idx = open_index(s.dir);
  SUBCASE("a snapshot does not see later writes") {
    auto before = idx->read();
    REQUIRE(idx->put_tags({{"r", "v1", digest(1)}}));
    CHECK_FALSE(idx->tag(before, "r", "v1"));
    CHECK(idx->tag(idx->read(), "r", "v1") == digest(1));
  }
  SUBCASE("several read transactions on one thread") {
    auto a = idx->read();
    auto b = idx->read();
    auto c = std::move(a);
    CHECK_FALSE(idx->repo_exists(b, "r"));
    CHECK_FALSE(idx->repo_exists(c, "r"));
  }
}

TEST_CASE("Index::manifest") {
  Scratch s;
  auto idx = open_index(s.dir);
  SUBCASE("round-trips every field") {
    REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(digest(9)), std::nullopt));
    auto m = idx->manifest(idx->read(), digest(1));
    REQUIRE(m);
    auto want = manifest_rec(digest(9));
    CHECK(m->media_type == want.media_type);
    CHECK(m->size == want.size);
    CHECK(m->blobs == want.blobs);
    CHECK(m->children == want.children);
    CHECK(m->subject == want.subject);
    CHECK(m->artifact_type == want.artifact_type);
    CHECK(m->annotations_json == want.annotations_json);
    CHECK(m->origin == Origin::Proxied);
    CHECK(m->created == want.created);
  }
  SUBCASE("absent") { CHECK_FALSE(idx->manifest(idx->read(), digest(1))); }
  SUBCASE("a truncated record refuses the open, and reads as absent when opened anyway") {
    REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(), std::nullopt));
    idx.reset();
    // Truncate the stored value through the raw LMDB API.
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 16);
    REQUIRE(mdb_env_open(env, s.dir.c_str(), MDB_NOTLS, 0644) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi dbi;
    REQUIRE(mdb_dbi_open(txn, "manifests", 0, &dbi) == 0);
    std::string k = digest(1);
    MDB_val key{k.size(), k.data()}, val{};
    REQUIRE(mdb_get(txn, dbi, &key, &val) == 0);
    std::string cut(static_cast<const char*>(val.mv_data), val.mv_size / 2);
    MDB_val shorter{cut.size(), cut.data()};
    REQUIRE(mdb_put(txn, dbi, &key, &shorter, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);

    auto refused = LmdbIndex::open(s.dir, size_t(1) << 30);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().find("manifests record '" + digest(1) + "': does not decode") != std::string::npos);
    auto opened = LmdbIndex::open(s.dir, size_t(1) << 30, Damaged::Open);
    REQUIRE(opened);
    idx = std::move(*opened);
    auto t = idx->read();
    CHECK_FALSE(idx->manifest(t, digest(1)));
    CHECK(idx->manifest_in_repo(t, "r", digest(1)));
  }
}

TEST_CASE("Index::put_manifest") {
  Scratch s;
  auto idx = open_index(s.dir);
  SUBCASE("creates the repository, the membership and the tag") {
    REQUIRE(idx->put_manifest("library/alpine", digest(1), manifest_rec(), "3.19"));
    auto txn = idx->read();
    CHECK(idx->repo_exists(txn, "library/alpine"));
    CHECK(idx->manifest_in_repo(txn, "library/alpine", digest(1)));
    CHECK_FALSE(idx->manifest_in_repo(txn, "library/other", digest(1)));
    CHECK_FALSE(idx->blob_linked(txn, "library/alpine", digest(1)));
    CHECK(idx->tag(txn, "library/alpine", "3.19") == digest(1));
    CHECK(idx->last_access(txn, digest(1)));
  }
  SUBCASE("without a tag no tag is set") {
    REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(), std::nullopt));
    CHECK(idx->tags(idx->read(), "r", "", 0, nullptr).empty());
  }
  SUBCASE("a second put keeps the first origin and creation time") {
    REQUIRE(idx->put_manifest("a", digest(1), manifest_rec(), std::nullopt));
    auto again = manifest_rec();
    again.origin = Origin::Pushed;
    again.created = 5;
    REQUIRE(idx->put_manifest("b", digest(1), again, std::nullopt));
    auto txn = idx->read();
    auto m = idx->manifest(txn, digest(1));
    REQUIRE(m);
    CHECK(m->origin == Origin::Proxied);
    CHECK(m->created == 1700000000);
    CHECK(idx->manifest_in_repo(txn, "b", digest(1)));
  }
  SUBCASE("a zero creation time becomes now") {
    auto rec = manifest_rec();
    rec.created = 0;
    REQUIRE(idx->put_manifest("r", digest(1), rec, std::nullopt));
    auto m = idx->manifest(idx->read(), digest(1));
    REQUIRE(m);
    CHECK(m->created >= std::time(nullptr) - 60);
  }
  SUBCASE("a tag is moved by a later put") {
    REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(), "latest"));
    REQUIRE(idx->put_manifest("r", digest(2), manifest_rec(), "latest"));
    CHECK(idx->tag(idx->read(), "r", "latest") == digest(2));
  }
}

TEST_CASE("Index::tags") {
  Scratch s;
  auto idx = open_index(s.dir);
  std::vector<TagEntry> entries;
  for (int i = 0; i < 25; ++i) entries.push_back({"r", tag_name(i), digest(i)});
  entries.push_back({"r/sub", "other", digest(99)});  // a repository whose name extends "r"
  entries.push_back({"q", "zzz", digest(98)});        // a repository sorting just before "r"
  REQUIRE(idx->put_tags(entries));
  auto txn = idx->read();
  SUBCASE("pages of 10 cover every tag once, with more on all but the last") {
    std::vector<std::string> all;
    std::string last;
    std::vector<bool> mores;
    for (int guard = 0; guard < 10; ++guard) {
      bool more = false;
      auto page = idx->tags(txn, "r", last, 10, &more);
      all.insert(all.end(), page.begin(), page.end());
      mores.push_back(more);
      if (!more) break;
      last = page.back();
    }
    CHECK(mores == std::vector<bool>{true, true, false});
    REQUIRE(all.size() == 25);
    for (int i = 0; i < 25; ++i) CHECK(all[size_t(i)] == tag_name(i));
  }
  SUBCASE("n == 0 returns everything") {
    bool more = true;
    CHECK(idx->tags(txn, "r", "", 0, &more).size() == 25);
    CHECK_FALSE(more);
  }
  SUBCASE("an exact final page reports no more") {
    bool more = true;
    auto page = idx->tags(txn, "r", tag_name(19), 5, &more);
    CHECK(page.size() == 5);
    CHECK_FALSE(more);
  }
  SUBCASE("last need not be a tag") {
    auto page = idx->tags(txn, "r", "t000004x", 2, nullptr);
    CHECK(page == std::vector<std::string>{tag_name(5), tag_name(6)});
  }
  SUBCASE("last after every tag gives an empty page") {
    bool more = true;
    CHECK(idx->tags(txn, "r", "zzz", 10, &more).empty());
    CHECK_FALSE(more);
  }
  SUBCASE("an overlong last gives an empty page instead of failing") {
    CHECK(idx->tags(txn, "r", std::string(2000, 'z'), 10, nullptr).empty());
    CHECK(idx->tags(txn, "r", "t" + std::string(2000, '0'), 1, nullptr) == std::vector<std::string>{tag_name(1)});
  }
  SUBCASE("unknown repository") { CHECK(idx->tags(txn, "nope", "", 10, nullptr).empty()); }
  SUBCASE("other repositories are not mixed in") {
    CHECK(idx->tags(txn, "r/sub", "", 0, nullptr) == std::vector<std::string>{"other"});
    CHECK(idx->tags(txn, "q", "", 0, nullptr) == std::vector<std::string>{"zzz"});
  }
}

TEST_CASE("Index::repos") {
  Scratch s;
  auto idx = open_index(s.dir);
  std::vector<TagEntry> entries;
  std::vector<std::string> names;
  for (int i = 0; i < 10000; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "ns/repo%05d", i);
    names.push_back(buf);
    entries.push_back({buf, "latest", digest(i)});
  }
  REQUIRE(idx->put_tags(entries));
  auto txn = idx->read();
  SUBCASE("pages walk all repositories in order") {
    std::vector<std::string> all;
    std::string last;
    bool more = true;
    int pages = 0;
    while (more && pages < 200) {
      auto page = idx->repos(txn, last, 100, &more);
      REQUIRE_FALSE(page.empty());
      all.insert(all.end(), page.begin(), page.end());
      last = page.back();
      ++pages;
    }
    CHECK(pages == 100);
    CHECK(all == names);
  }
  SUBCASE("strictly after last") {
    bool more = false;
    auto page = idx->repos(txn, names[9997], 5, &more);
    CHECK(page == std::vector<std::string>{names[9998], names[9999]});
    CHECK_FALSE(more);
  }
  SUBCASE("first page and more") {
    bool more = false;
    CHECK(idx->repos(txn, "", 2, &more) == std::vector<std::string>{names[0], names[1]});
    CHECK(more);
  }
}

TEST_CASE("Index::put_tags") {
  Scratch s;
  auto idx = open_index(s.dir);
  SUBCASE("100k tags insert and page quickly") {
    std::vector<TagEntry> entries;
    entries.reserve(100000);
    for (int i = 0; i < 100000; ++i) entries.push_back({"big/repo", tag_name((i * 7919) % 100000), digest(i)});
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(idx->put_tags(entries));
    auto txn = idx->read();
    bool more = false;
    auto page = idx->tags(txn, "big/repo", tag_name(49999), 100, &more);
    REQUIRE(page.size() == 100);
    CHECK(page.front() == tag_name(50000));
    CHECK(page.back() == tag_name(50099));
    CHECK(more);
    auto last = idx->tags(txn, "big/repo", tag_name(99989), 100, &more);
    CHECK(last.size() == 10);
    CHECK_FALSE(more);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  }
  SUBCASE("nothing is written when the map is full") {
    auto small = open_index(s.dir / "small", size_t(1) << 20);
    std::vector<TagEntry> entries;
    for (int i = 0; i < 20000; ++i) entries.push_back({"r", tag_name(i), digest(i)});
    auto r = small->put_tags(entries);
    REQUIRE_FALSE(r);
    CHECK(r.error().find("put_tags") != std::string::npos);
    CHECK(r.error().find("full") != std::string::npos);
    CHECK_FALSE(small->repo_exists(small->read(), "r"));
    CHECK(small->put_tags({{"r", "one", digest(1)}}));
  }
}

TEST_CASE("Index::referrers") {
  Scratch s;
  auto idx = open_index(s.dir);
  const std::string subject = digest(1);
  REQUIRE(idx->put_manifest("r", subject, manifest_rec(), "v1"));
  REQUIRE(idx->put_manifest("r", digest(2), manifest_rec(subject), std::nullopt));
  REQUIRE(idx->put_manifest("r", digest(3), manifest_rec(subject), std::nullopt));
  REQUIRE(idx->put_manifest("other", digest(4), manifest_rec(subject), std::nullopt));
  REQUIRE(idx->put_manifest("r", digest(5), manifest_rec(digest(6)), std::nullopt));
  auto txn = idx->read();
  SUBCASE("lists the referrers of a subject in a repository") {
    auto refs = idx->referrers(txn, "r", subject);
    REQUIRE(refs.size() == 2);
    CHECK(refs[0].digest == digest(2));
    CHECK(refs[1].digest == digest(3));
    CHECK(refs[0].media_type == manifest_rec().media_type);
    CHECK(refs[0].size == 1234);
    CHECK(refs[0].artifact_type == "application/vnd.example.sbom");
    CHECK(refs[0].annotations_json == R"({"org.example":"x"})");
  }
  SUBCASE("other repositories have their own") {
    auto refs = idx->referrers(txn, "other", subject);
    REQUIRE(refs.size() == 1);
    CHECK(refs[0].digest == digest(4));
  }
  SUBCASE("a subject without referrers") { CHECK(idx->referrers(txn, "r", digest(5)).empty()); }
}

TEST_CASE("Index::delete_tag") {
  Scratch s;
  auto idx = open_index(s.dir);
  REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(), "a"));
  REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(), "b"));
  SUBCASE("removes only the tag") {
    REQUIRE(idx->delete_tag("r", "a") == true);
    auto txn = idx->read();
    CHECK_FALSE(idx->tag(txn, "r", "a"));
    CHECK(idx->tag(txn, "r", "b") == digest(1));
    CHECK(idx->manifest_in_repo(txn, "r", digest(1)));
    CHECK(idx->manifest(txn, digest(1)));
  }
  SUBCASE("false when absent") {
    CHECK(idx->delete_tag("r", "zzz") == false);
    CHECK(idx->delete_tag("nope", "a") == false);
  }
}

TEST_CASE("Index::delete_manifest") {
  Scratch s;
  auto idx = open_index(s.dir);
  REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(digest(9)), "a"));
  REQUIRE(idx->put_manifest("r", digest(1), manifest_rec(digest(9)), "b"));
  REQUIRE(idx->put_manifest("r", digest(2), manifest_rec(), "c"));
  REQUIRE(idx->put_manifest("r2", digest(1), manifest_rec(digest(9)), "a"));
  SUBCASE("removes membership, tags pointing at it and the referrer entry") {
    REQUIRE(idx->delete_manifest("r", digest(1)) == true);
    auto txn = idx->read();
    CHECK_FALSE(idx->manifest_in_repo(txn, "r", digest(1)));
    CHECK(idx->tags(txn, "r", "", 0, nullptr) == std::vector<std::string>{"c"});
    CHECK(idx->referrers(txn, "r", digest(9)).empty());
    CHECK(idx->manifest(txn, digest(1)));  // the record stays for GC
    CHECK(idx->manifest_in_repo(txn, "r2", digest(1)));
    CHECK(idx->tag(txn, "r2", "a") == digest(1));
    CHECK(idx->referrers(txn, "r2", digest(9)).size() == 1);
  }
  SUBCASE("false when not in the repository") {
    CHECK(idx->delete_manifest("r", digest(3)) == false);
    CHECK(idx->delete_manifest("r3", digest(1)) == false);
    CHECK(idx->tag(idx->read(), "r", "a") == digest(1));
  }
}

TEST_CASE("Index::Update::add_blob") {
  Scratch s;
  auto idx = open_index(s.dir);
  SUBCASE("creates the record, the repository and the link") {
    REQUIRE(add_blob(*idx, "r", digest(1), 42, Origin::Proxied));
    auto txn = idx->read();
    auto b = idx->blob(txn, digest(1));
    REQUIRE(b);
    CHECK(b->size == 42);
    CHECK(b->refcount == 1);
    CHECK(b->origin == Origin::Proxied);
    CHECK(b->created > 0);
    CHECK(idx->repo_exists(txn, "r"));
    CHECK(idx->blob_linked(txn, "r", digest(1)));
    CHECK_FALSE(idx->blob_linked(txn, "r2", digest(1)));
    CHECK(idx->last_access(txn, digest(1)));
  }
  SUBCASE("adding twice is a no-op, a second repository counts") {
    REQUIRE(add_blob(*idx, "r", digest(1), 42, Origin::Pushed));
    REQUIRE(add_blob(*idx, "r", digest(1), 42, Origin::Pushed));
    CHECK(idx->blob(idx->read(), digest(1))->refcount == 1);
    REQUIRE(add_blob(*idx, "r2", digest(1), 99, Origin::Proxied));
    auto b = idx->blob(idx->read(), digest(1));
    CHECK(b->refcount == 2);
    CHECK(b->size == 42);
    CHECK(b->origin == Origin::Pushed);
  }
}

TEST_CASE("Index::link_blob") {
  Scratch s;
  auto idx = open_index(s.dir);
  SUBCASE("links a stored blob into another repository") {
    REQUIRE(add_blob(*idx, "r", digest(1), 42, Origin::Pushed));
    REQUIRE(idx->link_blob("r2", digest(1), 99, Origin::Proxied));
    REQUIRE(idx->link_blob("r2", digest(1), 99, Origin::Proxied));
    auto txn = idx->read();
    CHECK(idx->blob_linked(txn, "r2", digest(1)));
    CHECK(idx->blob(txn, digest(1))->refcount == 2);
    CHECK(idx->blob(txn, digest(1))->size == 42);
  }
  SUBCASE("a blob without a record (collected meanwhile) is an error, and nothing is written") {
    auto r = idx->link_blob("r", digest(1), 42, Origin::Pushed);
    REQUIRE_FALSE(r);
    CHECK(r.error().find(digest(1)) != std::string::npos);
    auto txn = idx->read();
    CHECK_FALSE(idx->blob(txn, digest(1)));
    CHECK_FALSE(idx->repo_exists(txn, "r"));
  }
}

TEST_CASE("Index::link_blobs") {
  Scratch s;
  auto idx = open_index(s.dir);
  REQUIRE(add_blob(*idx, "r", digest(1), 42, Origin::Pushed));
  REQUIRE(add_blob(*idx, "r", digest(2), 7, Origin::Proxied));
  REQUIRE(idx->link_blobs({{"r", digest(1), 42, Origin::Proxied},  // already linked: no-op
                           {"other", digest(1), 42, Origin::Proxied},
                           {"other", digest(2), 7, Origin::Proxied}}));
  auto txn = idx->read();
  CHECK(idx->blob(txn, digest(1))->refcount == 2);
  CHECK(idx->blob(txn, digest(1))->origin == Origin::Pushed);
  CHECK(idx->blob(txn, digest(2))->refcount == 2);
  CHECK(idx->blob(txn, digest(2))->size == 7);
  CHECK(idx->blob_linked(txn, "other", digest(2)));
  CHECK(idx->repo_exists(txn, "other"));
  REQUIRE(idx->link_blobs({}));
  CHECK_FALSE(idx->link_blobs({{"third", digest(1), 42, Origin::Pushed}, {"third", digest(3), 1, Origin::Pushed}}));
  CHECK_FALSE(idx->blob_linked(idx->read(), "third", digest(1)));  // all or nothing
}

TEST_CASE("Index::unlink_blob") {
  Scratch s;
  auto idx = open_index(s.dir);
  REQUIRE(add_blob(*idx, "a", digest(1), 42, Origin::Pushed));
  REQUIRE(add_blob(*idx, "b", digest(1), 42, Origin::Pushed));
  SUBCASE("decrements down to zero and keeps the record") {
    REQUIRE(idx->unlink_blob("a", digest(1)) == true);
    CHECK(idx->blob(idx->read(), digest(1))->refcount == 1);
    CHECK_FALSE(idx->blob_linked(idx->read(), "a", digest(1)));
    REQUIRE(idx->unlink_blob("b", digest(1)) == true);
    auto b = idx->blob(idx->read(), digest(1));
    REQUIRE(b);
    CHECK(b->refcount == 0);
  }
  SUBCASE("false when not linked") {
    CHECK(idx->unlink_blob("c", digest(1)) == false);
    REQUIRE(idx->unlink_blob("a", digest(1)) == true);
    CHECK(idx->unlink_blob("a", digest(1)) == false);
    CHECK(idx->blob(idx->read(), digest(1))->refcount == 1);
  }
}

TEST_CASE("Index::put_upload") {
  Scratch s;
  auto idx = open_index(s.dir);
  REQUIRE(idx->put_upload("u1", UploadRecord{"library/a", 10}));
  REQUIRE(idx->put_upload("u2", UploadRecord{"library/b", 20}));
  SUBCASE("readable by id") {
    auto u = idx->upload(idx->read(), "u2");
    REQUIRE(u);
    CHECK(u->repo == "library/b");
    CHECK(u->started == 20);
    CHECK_FALSE(idx->upload(idx->read(), "u3"));
  }
  SUBCASE("listed") {
    auto all = idx->uploads(idx->read());
    REQUIRE(all.size() == 2);
    CHECK(all[0].first == "u1");
    CHECK(all[0].second.repo == "library/a");
    CHECK(all[1].first == "u2");
  }
  SUBCASE("deleted") {
    REQUIRE(idx->delete_upload("u1"));
    REQUIRE(idx->delete_upload("never"));
    CHECK_FALSE(idx->upload(idx->read(), "u1"));
    CHECK(idx->uploads(idx->read()).size() == 1);
  }
}

TEST_CASE("Index::touch") {
  Scratch s;
  auto idx = open_index(s.dir);
  SUBCASE("records the given times") {
    REQUIRE(idx->touch({{digest(1), 100}, {digest(2), 200}}));
    REQUIRE(idx->touch({{digest(1), 150}}));
    auto txn = idx->read();
    CHECK(idx->last_access(txn, digest(1)) == 150);
    CHECK(idx->last_access(txn, digest(2)) == 200);
    CHECK_FALSE(idx->last_access(txn, digest(3)));
  }
  SUBCASE("an empty batch succeeds") { CHECK(idx->touch({})); }
}

TEST_CASE("Index::put_manifest_checked") {
  char tmpl[] = "/tmp/wharf-idx-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  {
    auto index = wharf::cache::LmdbIndex::open(dir + "/index", size_t(64) << 20);
    REQUIRE(index);
    auto& idx = **index;
    const std::string blob = "sha256:" + std::string(64, 'b'), gone = "sha256:" + std::string(64, 'c');
    const std::string m = "sha256:" + std::string(64, 'a');
    REQUIRE(add_blob(idx, "r", blob, 10, wharf::cache::Origin::Pushed));
    wharf::cache::ManifestRecord rec;
    rec.media_type = "application/vnd.oci.image.manifest.v1+json";
    rec.size = 100;
    rec.blobs = {blob, gone};
    SUBCASE("a missing blob is reported and nothing is written") {
      auto r = idx.put_manifest_checked("r", m, rec, std::string_view("t"), {blob, gone});
      REQUIRE(r);
      REQUIRE(r->has_value());
      CHECK(**r == gone);
      auto txn = idx.read();
      CHECK_FALSE(idx.manifest_in_repo(txn, "r", m));
      CHECK_FALSE(idx.tag(txn, "r", "t"));
    }
    SUBCASE("all present: written") {
      auto r = idx.put_manifest_checked("r", m, rec, std::string_view("t"), {blob});
      REQUIRE(r);
      CHECK_FALSE(r->has_value());
      auto txn = idx.read();
      CHECK(idx.manifest_in_repo(txn, "r", m));
      CHECK(idx.tag(txn, "r", "t") == m);
    }
  }
  std::filesystem::remove_all(dir);
}

namespace {

// Writes key → value into table `table` of the index in `dir` directly, as damage would.
void put_raw(const fs::path& dir, const char* table, const std::string& k, const std::string& v) {
  using namespace wharf::cache::lmdb;
  auto env = Env::create();
  check(mdb_env_set_maxdbs(env.get(), 16), "maxdbs");
  check(mdb_env_open(env.get(), dir.c_str(), MDB_NOTLS, 0644), "open");
  auto txn = Txn::begin(env.get(), 0);
  MDB_dbi dbi;
  check(mdb_dbi_open(txn.get(), table, MDB_CREATE, &dbi), "dbi");
  put(txn.get(), dbi, k, v);
  txn.commit();
}

}  // namespace

TEST_CASE("Index::open checks the index before using it") {
  Scratch s;
  SUBCASE("a truncated data.mdb is refused with a message, not a SIGBUS") {
    {
      auto idx = open_index(s.dir);
      for (int i = 0; i < 3000; ++i) REQUIRE(add_blob(*idx, "r", digest(i), 42, Origin::Pushed));
    }
    const auto data = s.dir / "data.mdb";
    REQUIRE(fs::file_size(data) > 8 * 4096);
    fs::resize_file(data, 4 * 4096);
    auto idx = LmdbIndex::open(s.dir, size_t(1) << 30);
    REQUIRE_FALSE(idx);
    CHECK(idx.error().find("truncated") != std::string::npos);
  }
  SUBCASE("flipped bytes in a record are refused, naming the record") {
    const std::string d = digest(7);
    {
      auto idx = open_index(s.dir);
      REQUIRE(add_blob(*idx, "r", d, 0x0123456789abcdefULL, Origin::Pushed));
    }
    std::string bytes;
    {
      std::ifstream in(s.dir / "data.mdb", std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const std::string size_le = "\xef\xcd\xab\x89\x67\x45\x23\x01";
    auto at = bytes.find(size_le);
    REQUIRE(at != std::string::npos);
    REQUIRE(at > 0);
    bytes[at - 1] ^= 0x40;  // the record's version byte
    {
      std::ofstream out(s.dir / "data.mdb", std::ios::binary | std::ios::trunc);
      out << bytes;
    }
    auto idx = LmdbIndex::open(s.dir, size_t(1) << 30);
    REQUIRE_FALSE(idx);
    CHECK(idx.error().find("blobs record '" + d + "'") != std::string::npos);
    SUBCASE("Damaged::Open lists it, and drop_raw removes it") {
      auto opened = LmdbIndex::open(s.dir, size_t(1) << 30, Damaged::Open);
      REQUIRE(opened);
      REQUIRE((*opened)->damage().size() == 1);
      CHECK((*opened)->undecodable("blobs") == std::vector<std::string>{d});
      REQUIRE((*opened)->drop_raw("blobs", d).value_or(false));
      CHECK((*opened)->undecodable("blobs").empty());
      opened->reset();
      CHECK(LmdbIndex::open(s.dir, size_t(1) << 30));
    }
  }
  SUBCASE("records that do not decode: trailing bytes, unknown origin, bad keys") {
    { open_index(s.dir); }
    SUBCASE("trailing bytes") {
      put_raw(s.dir, "access", digest(1), std::string(9, '\0'));
      auto idx = LmdbIndex::open(s.dir, size_t(1) << 30);
      REQUIRE_FALSE(idx);
      CHECK(idx.error().find("access record") != std::string::npos);
    }
    SUBCASE("a tag that does not point at a digest") {
      put_raw(s.dir, "tags", std::string("r\0t", 3), "not-a-digest");
      auto idx = LmdbIndex::open(s.dir, size_t(1) << 30);
      REQUIRE_FALSE(idx);
      CHECK(idx.error().find("tags record 'r/t': value is not a digest") != std::string::npos);
    }
  }
  SUBCASE("an index of another schema is refused") {
    { open_index(s.dir); }
    put_raw(s.dir, "meta", "schema", "wharf-index 99");
    auto idx = LmdbIndex::open(s.dir, size_t(1) << 30);
    REQUIRE_FALSE(idx);
    CHECK(idx.error().find("wharf-index 99") != std::string::npos);
  }
}

TEST_CASE("guard_faults turns a read past the end of a mapped file into a value") {
  Scratch s;
  const auto path = s.dir / "mapped";
  { std::ofstream(path, std::ios::binary) << std::string(3 * 4096, 'x'); }
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  void* map = ::mmap(nullptr, 3 * 4096, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  REQUIRE(map != MAP_FAILED);
  fs::resize_file(path, 4096);  // as a truncated data.mdb under LMDB's map
  struct Read {
    const volatile char* p;
    char got = 0;
  } r{static_cast<const volatile char*>(map) + 2 * 4096};
  auto read = [](void* arg) {
    auto& r = *static_cast<Read*>(arg);
    r.got = *r.p;
  };
  CHECK(wharf::cache::index_detail::guard_faults(read, &r) == SIGBUS);
  r.p = static_cast<const volatile char*>(map);  // within the file: no fault
  CHECK(wharf::cache::index_detail::guard_faults(read, &r) == 0);
  CHECK(r.got == 'x');
  ::munmap(map, 3 * 4096);
}

TEST_CASE("blob records name their backend; records from before backends read as filesystem") {
  using namespace wharf::cache::index_detail;
  BlobRecord fs_rec{42, 2, Origin::Proxied, 1700000000, Backend::Filesystem};
  const std::string old = encode(fs_rec);
  CHECK(old.size() == 1 + 8 + 4 + 1 + 8);  // the layout written before backends existed, byte for byte
  auto back = decode_blob(old);
  REQUIRE(back);
  CHECK(back->backend == Backend::Filesystem);
  CHECK(back->size == 42u);
  BlobRecord s3 = fs_rec;
  s3.backend = Backend::S3;
  const std::string enc = encode(s3);
  CHECK(enc.size() == old.size() + 1);
  auto s3back = decode_blob(enc);
  REQUIRE(s3back);
  CHECK(s3back->backend == Backend::S3);
  CHECK(s3back->refcount == 2u);
  CHECK_FALSE(decode_blob(old + std::string(1, '\0')));  // filesystem is never spelled out
  CHECK_FALSE(decode_blob(old + std::string(1, '\x07')));  // an unknown backend
  CHECK_FALSE(decode_blob(enc + "x"));
}

TEST_CASE("Update::add_blob records the backend of the first publication") {
  Scratch s;
  auto index = LmdbIndex::open(s.dir / "index");
  REQUIRE(index);
  auto& idx = **index;
  REQUIRE(idx.update("t", [](Index::Update& u) { u.add_blob("a", "sha256:" + std::string(64, '1'), 5, Origin::Pushed, Backend::S3); }));
  REQUIRE(idx.update("t", [](Index::Update& u) { u.add_blob("b", "sha256:" + std::string(64, '1'), 5, Origin::Pushed); }));
  auto txn = idx.read();
  auto rec = idx.blob(txn, "sha256:" + std::string(64, '1'));
  REQUIRE(rec);
  CHECK(rec->backend == Backend::S3);
  CHECK(rec->refcount == 2u);
}
