#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cache/backup.hpp"
#include "cache/fsck.hpp"
#include "cache/publish.hpp"
#include "tests/unit/failing_store.hpp"
#include "tests/unit/scratch_store.hpp"

using namespace wharf;
using namespace wharf::cache;
namespace fs = std::filesystem;

namespace {

struct Store : testing::ScratchStore {
  Store() : ScratchStore("wharf-fsck") {}
  // Publishes `content` as a blob linked in `repo`.
  oci::Digest blob(const std::string& repo, const std::string& content) {
    auto d = oci::digest_of(content);
    fs::path tmp = blobs->tmp_dir() / ("b-" + d.hex);
    std::ofstream(tmp, std::ios::binary) << content;
    REQUIRE(publish_blobs(*index, *blobs, {{tmp, d, repo, content.size(), Origin::Pushed}})[0].empty());
    return d;
  }
  // Publishes an image manifest over `layer` (config: `layer` too, for brevity), tagged `tag`.
  oci::Digest manifest(const std::string& repo, const oci::Digest& layer, uint64_t size, const std::string& tag,
                       Origin origin = Origin::Pushed) {
    const std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                             R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                             layer.str() + R"(","size":)" + std::to_string(size) +
                             R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
                             layer.str() + R"(","size":)" + std::to_string(size) + "}]}";
    auto d = oci::digest_of(body);
    ManifestRecord rec;
    rec.media_type = "application/vnd.oci.image.manifest.v1+json";
    rec.size = body.size();
    rec.blobs = {layer.str(), layer.str()};
    rec.origin = origin;
    auto r = publish_manifest_bytes(*index, *blobs, body, {{}, d, repo, rec, tag, {}});
    REQUIRE(r);
    REQUIRE_FALSE(r->has_value());
    return d;
  }
  FsckReport check(VerifyContent v = VerifyContent::No, Repair r = Repair::No) {
    return fsck(*index, *blobs, {}, {v, r});
  }
  // Overwrites a stored file in place (same size, one byte changed).
  void flip(const oci::Digest& d) {
    std::fstream f(blobs->blob_path(d), std::ios::in | std::ios::out | std::ios::binary);
    char c;
    f.seekg(0);
    f.get(c);
    f.seekp(0);
    f.put(char(c ^ 1));
  }
};

bool mentions(const FsckReport& r, const std::string& text) {
  for (const auto& f : r.findings)
    if ((f.subject + ": " + f.problem).find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("fsck of a sound store finds nothing") {
  Store s;
  auto layer = s.blob("app", "layer bytes");
  s.manifest("app", layer, 11, "v1");
  auto r = s.check(VerifyContent::Yes);
  CHECK(r.findings.empty());
  CHECK(r.fatal.empty());
  CHECK(r.blobs == 1);
  CHECK(r.manifests == 1);
  CHECK(r.tags == 1);
  CHECK(r.strays == 0);
}

TEST_CASE("fsck names each stray file by digest and size, and repair leaves it to garbage-collect") {
  Store s;
  auto layer = s.blob("app", "layer bytes");
  s.manifest("app", layer, 11, "v1");
  const std::string content = "nobody records me";
  const auto stray = oci::digest_of(content);
  fs::create_directories(s.blobs->blob_path(stray).parent_path());
  std::ofstream(s.blobs->blob_path(stray), std::ios::binary) << content;
  for (auto repair : {Repair::No, Repair::Yes}) {
    auto r = s.check(VerifyContent::No, repair);
    CHECK(r.findings.empty());
    CHECK(r.strays == 1);
    REQUIRE(r.stray_list.size() == 1);
    CHECK(r.stray_list[0] == stray.str() + " (17 bytes)");
    CHECK(fs::exists(s.blobs->blob_path(stray)));
  }
}

TEST_CASE("fsck: blob files") {
  Store s;
  auto layer = s.blob("app", "layer bytes");
  auto lone = s.blob("app", "nobody uses this");
  s.manifest("app", layer, 11, "v1");
  SUBCASE("a missing file nothing needs: record and links dropped") {
    fs::remove(s.blobs->blob_path(lone));
    auto r = s.check();
    REQUIRE(r.findings.size() == 1);
    CHECK(mentions(r, "blob " + lone.str() + ": its file is missing"));
    CHECK(r.findings[0].repairable);
    CHECK(r.left() == 1);
    auto fixed = s.check(VerifyContent::No, Repair::Yes);
    CHECK(fixed.left() == 0);
    auto txn = s.index->read();
    CHECK_FALSE(s.index->blob(txn, lone.str()));
    CHECK_FALSE(s.index->blob_linked(txn, "app", lone.str()));
    CHECK(s.check().findings.empty());
  }
  SUBCASE("a missing layer of a manifest cannot be repaired, and is named") {
    fs::remove(s.blobs->blob_path(layer));
    auto r = s.check(VerifyContent::No, Repair::Yes);
    CHECK(mentions(r, "blob " + layer.str() + ": its file is missing; manifest"));
    CHECK(r.left() == 1);
    CHECK(s.index->blob(s.index->read(), layer.str()));  // kept: the manifest still names it
  }
  SUBCASE("changed content is found only with --verify-content") {
    s.flip(lone);
    CHECK(s.check().findings.empty());
    auto r = s.check(VerifyContent::Yes);
    CHECK(mentions(r, "blob " + lone.str() + ": its file's content does not hash to its digest"));
    auto fixed = s.check(VerifyContent::Yes, Repair::Yes);
    CHECK(fixed.left() == 0);
    CHECK_FALSE(s.blobs->stat(lone));  // the damaged file goes with its record
  }
  SUBCASE("a wrong size is found without reading") {
    std::ofstream(s.blobs->blob_path(lone), std::ios::binary | std::ios::app) << "x";
    CHECK(mentions(s.check(), "its file has 17 bytes, the index says 16"));
  }
}

TEST_CASE("fsck: index consistency") {
  Store s;
  auto layer = s.blob("app", "layer bytes");
  auto m = s.manifest("app", layer, 11, "v1");
  SUBCASE("a wrong refcount is recounted") {
    REQUIRE(s.index->update("t", [&](Index::Update& u) {
      auto rec = *s.index->blob(u.txn(), layer.str());
      rec.refcount = 5;
      u.put_blob_record(layer.str(), rec);
    }));
    auto r = s.check(VerifyContent::No, Repair::Yes);
    CHECK(mentions(r, "refcount is 5 but 1 repositories link it"));
    CHECK(r.left() == 0);
    CHECK(s.index->blob(s.index->read(), layer.str())->refcount == 1);
  }
  SUBCASE("a blob whose record is gone but whose file is there is indexed again") {
    REQUIRE(s.index->update("t", [&](Index::Update& u) { u.put_blob_record(layer.str(), {}); }));
    REQUIRE(s.index->drop_raw("blobs", layer.str()).value_or(false));
    auto r = s.check(VerifyContent::No, Repair::Yes);
    CHECK(mentions(r, "has no record; its file is there: re-indexed"));
    CHECK(r.left() == 0);
    auto b = s.index->blob(s.index->read(), layer.str());
    REQUIRE(b);
    CHECK(b->size == 11);
    CHECK(b->refcount == 1);
    CHECK(s.check().findings.empty());
  }
  SUBCASE("a damaged pushed manifest is named and kept; a damaged proxied one is dropped") {
    s.flip(m);
    auto r = s.check(VerifyContent::No, Repair::Yes);
    CHECK(mentions(r, "manifest " + m.str() + " (in app): its file's content does not hash to its digest"));
    CHECK(r.left() == 1);
    auto layer2 = s.blob("cache/x", "proxied layer");
    auto pm = s.manifest("cache/x", layer2, 13, "p", Origin::Proxied);
    s.flip(pm);
    auto again = s.check(VerifyContent::No, Repair::Yes);
    CHECK(mentions(again, "manifest " + pm.str()));
    CHECK(again.left() == 1);  // only the pushed one is left
    auto txn = s.index->read();
    CHECK_FALSE(s.index->manifest(txn, pm.str()));
    CHECK_FALSE(s.index->tag(txn, "cache/x", "p"));
  }
  SUBCASE("a tag pointing at no record is removed") {
    REQUIRE(s.index->put_tags({{"app", "dangling", "sha256:" + std::string(64, 'e')}}));
    auto r = s.check(VerifyContent::No, Repair::Yes);
    CHECK(mentions(r, "tag app:dangling"));
    CHECK(r.left() == 0);
    CHECK_FALSE(s.index->tag(s.index->read(), "app", "dangling"));
  }
  SUBCASE("records that do not decode are listed and dropped") {
    auto r = fsck(*s.index, *s.blobs, {"blobs record 'x': does not decode"}, {VerifyContent::No, Repair::No});
    CHECK(mentions(r, "does not decode"));
    CHECK(r.left() == 1);
  }
}

TEST_CASE("fsck stops with the store's failure rather than reporting blobs missing") {
  Store s;
  auto layer = s.blob("app", "layer bytes");
  s.manifest("app", layer, 11, "v1");
  testing::FailingStore store(*s.blobs);
  CHECK(fsck(*s.index, store, {}, {VerifyContent::No, Repair::No}).fatal.empty());
  store.down = true;
  auto r = fsck(*s.index, store, {}, {VerifyContent::No, Repair::Yes});
  CHECK(r.fatal.find("connection refused") != std::string::npos);
  CHECK_FALSE(mentions(r, "missing"));
  store.down = false;  // and nothing was "repaired" away meanwhile
  auto again = fsck(*s.index, store, {}, {VerifyContent::Yes, Repair::No});
  CHECK(again.findings.empty());
  CHECK(again.fatal.empty());
}

TEST_CASE("backup of a remote store stops with the store's failure rather than listing blobs missing") {
  Store s;
  auto layer = s.blob("app", "layer bytes");
  s.manifest("app", layer, 11, "v1");
  testing::FailingStore store(*s.blobs);
  auto ok = backup_remote(*s.index, store, s.dir / "backup-up", IncludeBlobs::No);
  REQUIRE(ok);
  CHECK(ok->missing.empty());
  CHECK(ok->present == 2);  // the layer and the manifest
  store.down = true;
  for (auto include : {IncludeBlobs::No, IncludeBlobs::Yes}) {
    auto down = backup_remote(*s.index, store, s.dir / (include == IncludeBlobs::No ? "b1" : "b2"), include);
    REQUIRE_FALSE(down);
    CHECK(down.error().find("connection refused") != std::string::npos);
  }
}
