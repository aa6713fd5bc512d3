// The PostgreSQL index's pure parts (password redaction, migration planning) and, with
// WHARF_TEST_PG_DSN set, its start-up against a live server: concurrent schema creation, a newer schema
// refused, the pool's bounded wait.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cache/fs/fs_store.hpp"
#include "cache/gc.hpp"
#include "cache/index_lmdb.hpp"
#include "cache/pg/pg_admin.hpp"
#include "cache/pg/pg_dsn.hpp"
#include "cache/pg/pg_index.hpp"
#include "cache/pg/pg_schema.hpp"
#include "src/config/config.hpp"

using namespace wharf::cache;
using wharf::cache::pg::redact_dsn;

TEST_CASE("redact_dsn") {
  SUBCASE("URI user info") {
    CHECK(redact_dsn("postgresql://wharf:s3cret@db:5432/wharf") == "postgresql://wharf:***@db:5432/wharf");
    CHECK(redact_dsn("postgres://u:p%40ss@h/db?sslmode=require") == "postgres://u:***@h/db?sslmode=require");
  }
  SUBCASE("URI without a password is unchanged") {
    CHECK(redact_dsn("postgresql://wharf@127.0.0.1:5432/wharf") == "postgresql://wharf@127.0.0.1:5432/wharf");
    CHECK(redact_dsn("postgresql:///wharf") == "postgresql:///wharf");
  }
  SUBCASE("URI query parameter") {
    CHECK(redact_dsn("postgresql://h/db?user=u&password=pw&sslmode=disable") ==
          "postgresql://h/db?user=u&password=***&sslmode=disable");
    CHECK(redact_dsn("postgresql://u:a@h/db?password=b") == "postgresql://u:***@h/db?password=***");
  }
  SUBCASE("key=value forms") {
    CHECK(redact_dsn("host=db password=s3cret dbname=wharf") == "host=db password=*** dbname=wharf");
    CHECK(redact_dsn("host=db password = 'a b\\' c' user=x") == "host=db password = *** user=x");
    CHECK(redact_dsn("password=") == "password=***");
    CHECK(redact_dsn("host=db") == "host=db");
  }
  SUBCASE("never returns the password, whatever the input") {
    for (std::string dsn : {"postgresql://u:hunter2@h", "postgresql://u:hunter2@h/d?password=hunter2",
                            "password=hunter2", "  password='hunter2'", "postgres://u:hunter2@[::1]:5/d"})
      CHECK(redact_dsn(dsn).find("hunter2") == std::string::npos);
  }
}

TEST_CASE("plan_migrations") {
  const pg::Migration all[] = {{1, "a"}, {2, "b"}, {3, "c"}};
  SUBCASE("an empty database gets every migration, in order") {
    auto p = pg::plan_migrations(0, all);
    REQUIRE(p);
    REQUIRE(p->size() == 3);
    CHECK((*p)[0].version == 1);
    CHECK((*p)[2].version == 3);
  }
  SUBCASE("a database part way gets the rest") {
    auto p = pg::plan_migrations(2, all);
    REQUIRE(p);
    REQUIRE(p->size() == 1);
    CHECK((*p)[0].sql == "c");
  }
  SUBCASE("an up-to-date database gets nothing") {
    auto p = pg::plan_migrations(3, all);
    REQUIRE(p);
    CHECK(p->empty());
  }
  SUBCASE("a newer schema is refused, naming both versions") {
    auto p = pg::plan_migrations(4, all);
    REQUIRE_FALSE(p);
    CHECK(p.error().find("version 4") != std::string::npos);
    CHECK(p.error().find("newer than this wharf's 3") != std::string::npos);
  }
  SUBCASE("a list out of order is an internal error") {
    const pg::Migration bad[] = {{1, "a"}, {3, "c"}};
    CHECK_FALSE(pg::plan_migrations(0, bad));
  }
  SUBCASE("wharf's own list is in order") { CHECK(pg::plan_migrations(0, pg::migrations())); }
}

namespace {

// A fresh schema of the live test database (WHARF_TEST_PG_DSN), dropped at the end; dsn() scopes to it.
struct LiveSchema {
  std::string base, name;
  explicit LiveSchema(const char* tag) {
    base = std::getenv("WHARF_TEST_PG_DSN");
    name = std::string("unit_") + tag + "_" + std::to_string(::getpid());
    auto made = pg::run_script(base, "DROP SCHEMA IF EXISTS " + name + " CASCADE; CREATE SCHEMA " + name);
    REQUIRE_MESSAGE(made.has_value(), (made ? "" : made.error()));
  }
  ~LiveSchema() {
    (void)pg::run_script(base, "DROP SCHEMA IF EXISTS " + name + " CASCADE");
  }
  std::string dsn() const {
    if (base.starts_with("postgres"))
      return base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name;
    return base + " options='-csearch_path=" + name + "'";
  }
  // dsn() with `setting` ("name=value", no spaces) also set for every session.
  std::string dsn_with(const std::string& setting) const {
    if (base.starts_with("postgres"))
      return base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name +
             "%20-c" + setting.substr(0, setting.find('=')) + "%3D" + setting.substr(setting.find('=') + 1);
    return base + " options='-csearch_path=" + name + " -c" + setting + "'";
  }
};

bool live() {
  const char* dsn = std::getenv("WHARF_TEST_PG_DSN");
  return dsn && *dsn;
}

}  // namespace

TEST_CASE("PgIndex::open against a live server" * doctest::skip(!live())) {
  SUBCASE("three concurrent opens of an empty database create the schema once") {
    LiveSchema s("concurrent");
    std::vector<std::string> errors(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i)
      threads.emplace_back([&, i] {
        auto idx = PgIndex::open(s.dsn(), 2);
        if (!idx) errors[i] = idx.error();
      });
    for (auto& t : threads) t.join();
    for (const auto& e : errors) CHECK_MESSAGE(e.empty(), e);
    const std::string n = std::to_string(pg::migrations().size());
    auto v = pg::query_row(s.dsn(), "SELECT count(*), max(version) FROM wharf_schema");
    REQUIRE_MESSAGE(v.has_value(), (v ? "" : v.error()));
    CHECK(*v == n + "|" + n);
  }
  SUBCASE("a database with a newer schema is refused") {
    LiveSchema s("newer");
    REQUIRE(PgIndex::open(s.dsn(), 1));
    REQUIRE(pg::run_script(s.dsn(), "INSERT INTO wharf_schema (version) VALUES (999)"));
    auto again = PgIndex::open(s.dsn(), 1);
    REQUIRE_FALSE(again);
    CHECK(again.error().find("database.dsn") != std::string::npos);
    CHECK(again.error().find("schema version 999") != std::string::npos);
    CHECK(PgIndex::probe(s.dsn()).has_value());
  }
  SUBCASE("a full pool makes the next caller wait, then fail with a clear error") {
    LiveSchema s("pool");
    auto idx = PgIndex::open(s.dsn(), 1, std::chrono::milliseconds(300));
    REQUIRE(idx);
    auto held = (*idx)->read();
    CHECK_THROWS_WITH_AS((*idx)->read(), doctest::Contains("database.poolsize"), std::runtime_error);
    auto w = (*idx)->put_upload("u", UploadRecord{"r", 1});
    REQUIRE_FALSE(w);
    CHECK(w.error().find("index put_upload") != std::string::npos);
  }
}

TEST_CASE("PgIndex::open: an unreachable server names database.dsn and hides the password") {
  auto idx = PgIndex::open("postgresql://u:hunter2@127.0.0.1:1/db?connect_timeout=2");
  REQUIRE_FALSE(idx);
  CHECK(idx.error().find("database.dsn") != std::string::npos);
  CHECK(idx.error().find("hunter2") == std::string::npos);
}

TEST_CASE("database.* configuration keys") {
  std::vector<std::string> warnings;
  const std::string base = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/x\n";
  SUBCASE("no database section: the embedded LMDB index") {
    auto cfg = wharf::config::load_from_string(base, {}, warnings);
    REQUIRE(cfg);
    CHECK(cfg->database_dsn.empty());
    CHECK(cfg->database_pool_size == 8);
  }
  SUBCASE("dsn and poolsize from the file") {
    auto cfg = wharf::config::load_from_string(
        base + "database:\n  dsn: postgresql://wharf@127.0.0.1:5432/wharf\n  poolsize: 3\n", {}, warnings);
    REQUIRE(cfg);
    CHECK(cfg->database_dsn == "postgresql://wharf@127.0.0.1:5432/wharf");
    CHECK(cfg->database_pool_size == 3);
  }
  SUBCASE("the REGISTRY_DATABASE_* forms override the file") {
    auto cfg = wharf::config::load_from_string(
        base + "database:\n  dsn: postgresql://a@h/db\n",
        {{"REGISTRY_DATABASE_DSN", "host=db dbname=wharf"}, {"REGISTRY_DATABASE_POOLSIZE", "16"}}, warnings);
    REQUIRE(cfg);
    CHECK(cfg->database_dsn == "host=db dbname=wharf");
    CHECK(cfg->database_pool_size == 16);
  }
  SUBCASE("a poolsize out of range names the key") {
    auto cfg = wharf::config::load_from_string(base + "database:\n  dsn: postgresql://h/db\n  poolsize: 0\n", {},
                                               warnings);
    REQUIRE_FALSE(cfg);
    CHECK(cfg.error().str().find("database.poolsize") != std::string::npos);
  }
  SUBCASE("a dsn that is not a connection string names the key") {
    auto cfg = wharf::config::load_from_string(base + "database:\n  dsn: mysql-server\n", {}, warnings);
    REQUIRE_FALSE(cfg);
    CHECK(cfg.error().str().find("database.dsn") != std::string::npos);
  }
}

TEST_CASE("PgIndex::try_maintenance_lock: one holder among the fronts of a database" * doctest::skip(!live())) {
  LiveSchema s("maint");
  auto a = PgIndex::open(s.dsn(), 2);
  auto b = PgIndex::open(s.dsn(), 2);
  REQUIRE(a);
  REQUIRE(b);
  auto held = (*a)->try_maintenance_lock();
  REQUIRE_MESSAGE(held.has_value(), (held ? "" : held.error()));
  REQUIRE(*held != nullptr);
  SUBCASE("another front is refused while it is held, and gets it once released") {
    auto other = (*b)->try_maintenance_lock();
    REQUIRE(other.has_value());
    CHECK(*other == nullptr);
    auto self = (*a)->try_maintenance_lock();  // a second run on the same front too: it is the fleet's one lock
    REQUIRE(self.has_value());
    CHECK(*self == nullptr);
    held->reset();
    auto after = (*b)->try_maintenance_lock();
    REQUIRE(after.has_value());
    CHECK(*after != nullptr);
  }
  SUBCASE("the pool keeps serving while the lock is held (its connection is not a pooled one)") {
    auto c = PgIndex::open(s.dsn(), 1, std::chrono::milliseconds(2000));
    REQUIRE(c);
    auto lock = (*c)->try_maintenance_lock();
    REQUIRE(lock.has_value());
    CHECK(*lock == nullptr);
    CHECK((*c)->put_upload("u", UploadRecord{"r", 1}).has_value());
  }
}

TEST_CASE("PgIndex::expire_claims and collect remove only old claims" * doctest::skip(!live())) {
  LiveSchema s("claims");
  auto idx = PgIndex::open(s.dsn(), 2);
  REQUIRE(idx);
  REQUIRE((*idx)->claim("old", "front-a", std::chrono::seconds(30)));
  REQUIRE((*idx)->claim("new", "front-b", std::chrono::seconds(30)));
  REQUIRE(pg::run_script(s.dsn(), "UPDATE claims SET at = at - interval '2 days' WHERE key = 'old'"));
  SUBCASE("expire_claims") {
    auto n = (*idx)->expire_claims(std::chrono::hours(24));
    REQUIRE(n.has_value());
    CHECK(*n == 1);
  }
  SUBCASE("a garbage collection run does it too") {
    std::string tmpl = "/tmp/wharf-pgc-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    auto store = FsBlobStore::open(tmpl);
    REQUIRE(store);
    auto r = collect(**idx, *store, GcOptions{});
    std::filesystem::remove_all(tmpl);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
    CHECK(r->claims_deleted == 1);
  }
  auto left = pg::query_row(s.dsn(), "SELECT string_agg(key, ',') FROM claims");
  REQUIRE(left.has_value());
  CHECK(*left == "new");
}

TEST_CASE("PgIndex::update sees every writer committed before it got the writer lock" * doctest::skip(!live())) {
  // Even where the server's default isolation is SERIALIZABLE (a snapshot from the first statement, which
  // is the lock wait), a sweep's re-mark must see a manifest committed while it waited.
  LiveSchema s("isolation");
  auto writer = PgIndex::open(s.dsn(), 2);
  auto sweeper = PgIndex::open(s.dsn_with("default_transaction_isolation=serializable"), 2);
  REQUIRE(writer);
  REQUIRE(sweeper);
  std::atomic<bool> locked{false};
  std::thread w([&] {
    auto done = (*writer)->update("test", [&](Index::Update& u) {
      locked = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the sweeper is waiting on the lock now
      u.add_manifest("r", "sha256:" + std::string(64, 'a'), ManifestRecord{}, std::string_view("t"));
    });
    CHECK(done.has_value());
  });
  for (int i = 0; i < 500 && !locked; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::vector<TagEntry> seen;
  auto done = (*sweeper)->update("test sweep", [&](Index::Update& u) { seen = (*sweeper)->all_tags(u.txn()); });
  w.join();
  REQUIRE_MESSAGE(done.has_value(), (done ? "" : done.error()));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].tag == "t");
}

TEST_CASE("Index::try_maintenance_lock: an index of one process always grants it") {
  std::string tmpl = "/tmp/wharf-lmaint-XXXXXX";
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  {
    auto idx = LmdbIndex::open(std::filesystem::path(tmpl) / "index", size_t(1) << 26);
    REQUIRE(idx);
    auto a = (*idx)->try_maintenance_lock();
    auto b = (*idx)->try_maintenance_lock();
    REQUIRE((a && b));
    CHECK((*a != nullptr && *b != nullptr));
    CHECK((*idx)->expire_claims(std::chrono::seconds(0)) == size_t(0));
  }
  std::filesystem::remove_all(tmpl);
}
