// The BlobBackend contract: every backend (cache/blob_backend.hpp) must pass these cases. Each case runs
// once per entry of backends(); an object-store backend joins by adding its factory there.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "cache/blob_backend.hpp"
#include "cache/fs/fs_store.hpp"
#include "cache/s3/s3_env.hpp"
#include "src/oci/digest.hpp"

using namespace wharf::cache;
using wharf::oci::Digest;
using wharf::oci::digest_of;
using wharf::oci::DigestAlgo;
using wharf::oci::Hasher;

namespace {

// A backend under test with what the cases need around it.
struct Fixture {
  std::unique_ptr<BlobBackend> backend;
  // Runs the backend's event loop until `done` is set (for plans that stream); a no-op when synchronous.
  std::function<void(const bool& done)> pump = [](const bool&) {};
  std::function<void()> cleanup = [] {};
  virtual ~Fixture() { cleanup(); }  // virtual: the S3 fixture derives from it
};

using Factory = std::function<std::unique_ptr<Fixture>()>;

std::unique_ptr<Fixture> make_fs() {
  char tmpl[] = "/tmp/wharf-backend-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::filesystem::path dir = tmpl;
  auto store = FsBlobStore::open(dir);
  REQUIRE(store.has_value());
  auto f = std::make_unique<Fixture>();
  f->backend = std::make_unique<FsBlobStore>(std::move(*store));
  f->cleanup = [dir] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  return f;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The S3 store against a live bucket (tests/e2e/test_s3.py runs this file with WHARF_TEST_S3_* set), on a
// private event loop, each fixture under a fresh key prefix; staging in a scratch directory.
std::unique_ptr<Fixture> make_s3() {
  auto f = make_fs();
  auto* fs = dynamic_cast<FsBlobStore*>(f->backend.get());
  REQUIRE(fs != nullptr);
  wharf::config::Config cfg;
  cfg.storage_driver = wharf::config::StorageDriver::S3;
  cfg.s3.region = "us-east-1";
  cfg.s3.bucket = env_or_empty("WHARF_TEST_S3_BUCKET");
  cfg.s3.access_key = env_or_empty("WHARF_TEST_S3_ACCESS_KEY");
  cfg.s3.secret_key = env_or_empty("WHARF_TEST_S3_SECRET_KEY");
  cfg.s3.region_endpoint = env_or_empty("WHARF_TEST_S3_ENDPOINT");
  cfg.s3.root_directory = "/contract-" + std::to_string(std::random_device{}());
  struct S3Fixture : Fixture {
    std::unique_ptr<S3Env> env;
  };
  auto s = std::make_unique<S3Fixture>();
  auto env = open_s3_store(cfg, nullptr, *fs);
  REQUIRE_MESSAGE(env.has_value(), env.error());
  s->env = std::move(*env);
  s->backend = std::move(s->env->store);  // destroyed after the env (base Fixture member): it holds no handle
  event_base* base = s->env->own_base.get();
  s->pump = [base](const bool& done) {
    for (int i = 0; i < 100000 && !done; ++i) event_base_loop(base, EVLOOP_ONCE);
  };
  s->cleanup = f->cleanup;
  f->cleanup = [] {};
  std::printf("BlobBackend contract: s3 fixture under %s\n", cfg.s3.root_directory.c_str());
  return s;
}

// Every backend the contract is checked against: the S3 store joins when a live bucket is given.
std::vector<std::pair<const char*, Factory>> backends() {
  std::vector<std::pair<const char*, Factory>> all{{"filesystem", &make_fs}};
  if (!env_or_empty("WHARF_TEST_S3_ENDPOINT").empty()) all.emplace_back("s3", &make_s3);
  return all;
}

// Runs `body` against each backend, in its own subcase and fresh store.
void for_each_backend(const std::function<void(Fixture&)>& body) {
  for (const auto& [name, make] : backends()) {
    SUBCASE(name) {
      auto f = make();
      body(*f);
    }
  }
}

// Stages `content` through a Temp writer in pieces, checking the hash is taken in the same pass.
StagedKey write_staged(BlobBackend& b, const std::string& content, size_t piece = 7) {
  auto w = b.begin_write(StageArea::Temp, "test");
  REQUIRE(w.has_value());
  Hasher h;
  for (size_t at = 0; at < content.size(); at += piece) {
    auto r = (*w)->append(content.data() + at, std::min(piece, content.size() - at), &h);
    REQUIRE(r.has_value());
  }
  CHECK((*w)->size() == content.size());
  CHECK(h.finish() == digest_of(content));
  return (*w)->key();
}

// prepare + place of one staged item; "" on success.
std::string publish(BlobBackend& b, const StagedKey& key, const Digest& d,
                    Placement::IfDamaged if_damaged = Placement::IfDamaged::Keep) {
  const Placement p{key, d, std::nullopt, if_damaged};
  auto e = b.prepare({p});
  if (!e[0].empty()) return e[0];
  return b.place({p})[0];
}

// The bytes a read plan serves.
std::string drain(Fixture& f, ReadPlan plan) {
  std::string out;
  if (auto* local = std::get_if<LocalRange>(&plan)) {
    out.resize(size_t(local->length));
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(local->fd, out.data() + done, out.size() - done, off_t(local->first + done));
      if (n <= 0) break;
      done += size_t(n);
    }
    ::close(local->fd);
    out.resize(done);
  } else if (auto* stream = std::get_if<std::unique_ptr<ByteStream>>(&plan)) {
    std::string error;
    for (int pieces = 0; pieces < 100000 && error.empty(); ++pieces) {
      bool finished = false, end = false;
      (*stream)->next([&](std::expected<std::string_view, std::string> piece) {
        if (!piece) error = piece.error();
        else if (piece->empty()) end = true;
        else out += *piece;
        finished = true;
      });
      f.pump(finished);
      if (end) break;
    }
    CHECK(error.empty());
  } else {
    FAIL("a read with RedirectPolicy::Never answered a redirect");
  }
  return out;
}

const std::string kContent = "the quick brown fox jumps over the lazy dog, twice: the quick brown fox";

}  // namespace

TEST_CASE("BlobBackend: a staged write, placed, is stored under its digest") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const Digest d = digest_of(kContent);
    CHECK_FALSE(b.stat(d));
    REQUIRE(publish(b, write_staged(b, kContent), d) == "");
    CHECK(b.stat(d) == kContent.size());
    CHECK(b.read_small(d, 1 << 20) == kContent);
    CHECK(b.intact(d));
  });
}

TEST_CASE("BlobBackend: placing a digest that is already stored keeps one copy and consumes the staged data") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const Digest d = digest_of(kContent);
    REQUIRE(publish(b, write_staged(b, kContent), d) == "");
    auto again = write_staged(b, kContent);
    REQUIRE(publish(b, again, d) == "");
    CHECK(b.stat(d) == kContent.size());
    auto gone = b.hash_staged(again, DigestAlgo::Sha256);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind == StoreError::Kind::Missing);
  });
}

TEST_CASE("BlobBackend: a placement that fails makes nothing visible and says why") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const Digest d = digest_of(kContent);
    auto key = write_staged(b, kContent);
    b.discard(key);
    CHECK_FALSE(publish(b, key, d).empty());
    CHECK_FALSE(b.stat(d));
    CHECK_FALSE(b.read_small(d, 1 << 20));
  });
}

TEST_CASE("BlobBackend: several placements at once fail only where at fault") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const std::string other = "other content";
    auto k1 = write_staged(b, kContent), k2 = write_staged(b, other);
    auto missing = write_staged(b, "gone");
    b.discard(missing);
    auto prepared = b.prepare({{k1, digest_of(kContent), kContent.size(), Placement::IfDamaged::Keep},
                               {missing, digest_of("gone"), 4, Placement::IfDamaged::Keep},
                               {k2, digest_of(other), other.size(), Placement::IfDamaged::Keep}});
    CHECK(prepared[0].empty());
    CHECK_FALSE(prepared[1].empty());
    CHECK(prepared[2].empty());
    auto placed = b.place({{k1, digest_of(kContent), kContent.size(), Placement::IfDamaged::Keep},
                           {k2, digest_of(other), other.size(), Placement::IfDamaged::Keep}});
    CHECK(placed == std::vector<std::string>{"", ""});
    CHECK(b.stat(digest_of(other)) == other.size());
    CHECK_FALSE(b.stat(digest_of("gone")));
  });
}

TEST_CASE("BlobBackend: IfDamaged::Replace puts a verified copy over a damaged one") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const Digest d = digest_of(kContent);
    const std::string damaged(kContent.size(), 'x');  // same size, other bytes
    REQUIRE(publish(b, write_staged(b, damaged), d) == "");
    CHECK_FALSE(b.intact(d));
    REQUIRE(publish(b, write_staged(b, kContent), d, Placement::IfDamaged::Keep) == "");
    CHECK_FALSE(b.intact(d));  // Keep: the stored copy of the same size stays
    REQUIRE(publish(b, write_staged(b, kContent), d, Placement::IfDamaged::Replace) == "");
    CHECK(b.intact(d));
    CHECK(b.read_small(d, 1 << 20) == kContent);
  });
}

TEST_CASE("BlobBackend: ranged reads serve exactly the bytes asked for") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const Digest d = digest_of(kContent);
    REQUIRE(publish(b, write_staged(b, kContent), d) == "");
    for (auto [first, length] : {std::pair<uint64_t, uint64_t>{0, kContent.size()}, {4, 5}, {kContent.size() - 1, 1}}) {
      auto plan = b.read(d, Recorded{.size = kContent.size(), .backend = b.kind()}, first, length, RedirectPolicy::Never);
      REQUIRE(plan.has_value());
      REQUIRE(plan->has_value());
      CHECK(drain(f, std::move(**plan)) == kContent.substr(size_t(first), size_t(length)));
    }
    // Not held: an absent file (the filesystem looks), or a record naming another backend (S3 trusts
    // its records and asks nothing).
    const Backend other = b.kind() == Backend::S3 ? Backend::Filesystem : Backend::S3;
    auto absent = b.read(digest_of("absent"), Recorded{.size = 1, .backend = other}, 0, 1, RedirectPolicy::Never);
    REQUIRE(absent.has_value());
    CHECK_FALSE(absent->has_value());
  });
}

TEST_CASE("BlobBackend: stat_recorded answers without asking a networked index or the bucket") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const Digest d = digest_of(kContent);
    REQUIRE(publish(b, write_staged(b, kContent), d) == "");
    CHECK(b.stat_recorded(d, Recorded{.size = kContent.size(), .backend = b.kind()}) == kContent.size());
    CHECK(b.stat_recorded(d, Recorded::of(ManifestRecord{.media_type = "m", .size = kContent.size(), .blobs = {},
                                                              .children = {}, .subject = {}, .artifact_type = {},
                                                              .annotations_json = {}, .origin = {}, .created = 0})) ==
          kContent.size());
    const Backend other = b.kind() == Backend::S3 ? Backend::Filesystem : Backend::S3;
    if (b.kind() == Backend::S3) {
      // The record decides: another backend's record is not here, this one's is (no HEAD was made).
      CHECK_FALSE(b.stat_recorded(d, Recorded{.size = kContent.size(), .backend = other}));
      CHECK(b.stat_recorded(digest_of("never written"), Recorded{.size = 7, .backend = Backend::S3}) == 7u);
    } else {
      // The file decides.
      CHECK(b.stat_recorded(d, Recorded{.size = 1, .backend = other}) == kContent.size());
      CHECK_FALSE(b.stat_recorded(digest_of("never written"), Recorded{.size = 7, .backend = Backend::Filesystem}));
    }
  });
}

TEST_CASE("BlobBackend: read_small refuses blobs over its limit") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const Digest d = digest_of(kContent);
    REQUIRE(publish(b, write_staged(b, kContent), d) == "");
    CHECK_FALSE(b.read_small(d, kContent.size() - 1));
    CHECK(b.read_small(d, kContent.size()) == kContent);
  });
}

TEST_CASE("BlobBackend: remove and list") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const std::string other = "other content";
    REQUIRE(publish(b, write_staged(b, kContent), digest_of(kContent)) == "");
    REQUIRE(publish(b, write_staged(b, other), digest_of(other)) == "");
    std::map<std::string, uint64_t> listed;
    b.list([&](const StoredBlob& s) { listed[s.digest.str()] = s.size; });
    CHECK(listed == std::map<std::string, uint64_t>{{digest_of(kContent).str(), kContent.size()},
                                                    {digest_of(other).str(), other.size()}});
    CHECK(b.remove(digest_of(kContent)));
    CHECK_FALSE(b.remove(digest_of(kContent)));
    CHECK_FALSE(b.stat(digest_of(kContent)));
    listed.clear();
    b.list([&](const StoredBlob& s) { listed[s.digest.str()] = s.size; });
    CHECK(listed.size() == 1);
    CHECK(listed.count(digest_of(other).str()) == 1);
  });
}

TEST_CASE("BlobBackend: an upload stages across writers and restarts, and is hashed whole") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    const std::string id = "0123abcd-0000-0000-0000-000000000001";
    {
      auto w = b.begin_write(StageArea::Upload, id);
      REQUIRE(w.has_value());
      REQUIRE((*w)->append(kContent.data(), 10, nullptr));
    }
    CHECK_FALSE(b.begin_write(StageArea::Upload, id));  // names an existing upload
    CHECK(b.upload_size(id) == 10u);
    {
      auto w = b.resume_write(id);
      REQUIRE(w.has_value());
      CHECK((*w)->size() == 10u);
      REQUIRE((*w)->append(kContent.data() + 10, kContent.size() - 10, nullptr));
    }
    auto hashed = b.hash_staged(b.upload_key(id), DigestAlgo::Sha256);
    REQUIRE(hashed.has_value());
    CHECK(hashed->first == digest_of(kContent));
    CHECK(hashed->second == kContent.size());
    auto uploads = b.list_uploads();
    REQUIRE(uploads.size() == 1);
    CHECK(uploads[0].name == id);
    b.clean_temp();  // uploads survive a restart
    CHECK(b.upload_size(id) == kContent.size());
    b.discard(b.upload_key(id));
    REQUIRE_FALSE(b.upload_size(id));
    CHECK(b.upload_size(id).error().kind == StoreError::Kind::Missing);  // gone, not a failure (404, not 503)
    auto resumed = b.resume_write(id);
    REQUIRE_FALSE(resumed);
    CHECK(resumed.error().kind == StoreError::Kind::Missing);
  });
}

TEST_CASE("BlobBackend: stage and clean_temp") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    auto staged = b.stage(kContent);
    REQUIRE(staged.has_value());
    REQUIRE(publish(b, *staged, digest_of(kContent)) == "");
    CHECK(b.read_small(digest_of(kContent), 1 << 20) == kContent);
    auto left = write_staged(b, "left over");
    b.clean_temp();
    CHECK_FALSE(b.hash_staged(left, DigestAlgo::Sha256));
    CHECK(b.stat(digest_of(kContent)) == kContent.size());  // blobs stay
  });
}

TEST_CASE("BlobBackend: a staged write can be read back while it goes on") {
  for_each_backend([](Fixture& f) {
    auto& b = *f.backend;
    auto w = b.begin_write(StageArea::Temp, "test");
    REQUIRE(w.has_value());
    REQUIRE((*w)->append(kContent.data(), 9, nullptr));
    const int fd = (*w)->read_fd();
    if (fd < 0) return;  // a backend without a local copy
    char buf[9];
    REQUIRE(::pread(fd, buf, sizeof buf, 0) == 9);
    CHECK(std::string(buf, 9) == kContent.substr(0, 9));
  });
}
