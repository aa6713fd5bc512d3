// The PostgreSQL index's pure parts (password redaction, migration planning) and, with
// WHARF_TEST_PG_DSN set, its start-up against a live server: concurrent schema creation, a newer schema
// refused, the pool's bounded wait.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

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
