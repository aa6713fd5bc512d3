// The PostgreSQL index's tables and their migrations. Keys are text COLLATE "C" (bytewise, like LMDB's
// keys), so paging by `>` and ORDER BY gives the same order as the embedded index.
#include "cache/pg/pg_schema.hpp"

#include "cache/pg/pg_conn.hpp"

namespace wharf::cache::pg {

namespace {

constexpr std::string_view kV1 = R"sql(
CREATE TABLE repos (name text COLLATE "C" PRIMARY KEY, created bigint NOT NULL);
CREATE TABLE tags (repo text COLLATE "C" NOT NULL, tag text COLLATE "C" NOT NULL, digest text COLLATE "C" NOT NULL,
                   PRIMARY KEY (repo, tag));
CREATE INDEX tags_by_digest ON tags (repo, digest);
CREATE TABLE manifests (digest text COLLATE "C" PRIMARY KEY, media_type text NOT NULL, size bigint NOT NULL,
                        blobs text[] NOT NULL, children text[] NOT NULL, subject text COLLATE "C" NOT NULL,
                        artifact_type text NOT NULL, annotations text NOT NULL, origin smallint NOT NULL,
                        created bigint NOT NULL);
CREATE TABLE repo_manifests (repo text COLLATE "C" NOT NULL, digest text COLLATE "C" NOT NULL, added bigint NOT NULL,
                             PRIMARY KEY (repo, digest));
CREATE TABLE blobs (digest text COLLATE "C" PRIMARY KEY, size bigint NOT NULL, refcount integer NOT NULL,
                    origin smallint NOT NULL, created bigint NOT NULL, backend smallint NOT NULL);
CREATE TABLE links (repo text COLLATE "C" NOT NULL, digest text COLLATE "C" NOT NULL, PRIMARY KEY (repo, digest));
CREATE TABLE referrers (repo text COLLATE "C" NOT NULL, subject text COLLATE "C" NOT NULL,
                        digest text COLLATE "C" NOT NULL, media_type text NOT NULL, size bigint NOT NULL,
                        artifact_type text NOT NULL, annotations text NOT NULL, PRIMARY KEY (repo, subject, digest));
CREATE TABLE uploads (uuid text COLLATE "C" PRIMARY KEY, repo text NOT NULL, started bigint NOT NULL);
CREATE TABLE access (digest text COLLATE "C" PRIMARY KEY, at bigint NOT NULL);
)sql";

// Version 2: every change a front's read cache may hold (cache/pg/pg_listener.hpp) sends a NOTIFY on
// channel wharf_index from a trigger, so it is part of the writing transaction and delivered only on
// commit. Payloads (tab-separated, last field the sender's clock in epoch milliseconds):
// "t repo tag" a tag moved or went away; "r repo" a manifest left the repository or the repository
// went away; "m digest" a manifest record changed or went away.
// Also the claims table: work one front does for the fleet once per window (PgIndex::claim).
constexpr std::string_view kV2 = R"sql(
CREATE FUNCTION wharf_notify_now() RETURNS text LANGUAGE sql AS
  $$ SELECT (floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint::text $$;
CREATE FUNCTION wharf_notify_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.digest = NEW.digest AND OLD.repo = NEW.repo AND OLD.tag = NEW.tag THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN
    PERFORM pg_notify('wharf_index', 't' || chr(9) || OLD.repo || chr(9) || OLD.tag || chr(9) || wharf_notify_now());
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM pg_notify('wharf_index', 't' || chr(9) || NEW.repo || chr(9) || NEW.tag || chr(9) || wharf_notify_now());
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER tags_notify AFTER INSERT OR UPDATE OR DELETE ON tags FOR EACH ROW EXECUTE FUNCTION wharf_notify_tags();
CREATE FUNCTION wharf_notify_repo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wharf_index', 'r' || chr(9) || OLD.repo || chr(9) || wharf_notify_now());
  RETURN NULL;
END $$;
CREATE TRIGGER repo_manifests_notify AFTER UPDATE OR DELETE ON repo_manifests
  FOR EACH ROW EXECUTE FUNCTION wharf_notify_repo();
CREATE FUNCTION wharf_notify_repos() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wharf_index', 'r' || chr(9) || OLD.name || chr(9) || wharf_notify_now());
  RETURN NULL;
END $$;
CREATE TRIGGER repos_notify AFTER UPDATE OR DELETE ON repos FOR EACH ROW EXECUTE FUNCTION wharf_notify_repos();
CREATE FUNCTION wharf_notify_manifest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('wharf_index', 'm' || chr(9) || OLD.digest || chr(9) || wharf_notify_now());
  RETURN NULL;
END $$;
CREATE TRIGGER manifests_notify AFTER UPDATE OR DELETE ON manifests
  FOR EACH ROW EXECUTE FUNCTION wharf_notify_manifest();
CREATE TABLE claims (key text COLLATE "C" PRIMARY KEY, owner text NOT NULL, at timestamptz NOT NULL);
)sql";

constexpr Migration kMigrations[] = {{1, kV1}, {2, kV2}};

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

std::expected<std::vector<Migration>, std::string> plan_migrations(int current, std::span<const Migration> all) {
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i].version != int(i) + 1)
      return std::unexpected("internal: migration " + std::to_string(i) + " has version " +
                             std::to_string(all[i].version) + ", expected " + std::to_string(i + 1));
  const int latest = int(all.size());
  if (current > latest)
    return std::unexpected("the database holds wharf schema version " + std::to_string(current) +
                           ", newer than this wharf's " + std::to_string(latest) +
                           "; run a wharf at least as new as the one that wrote it");
  if (current < 0) return std::unexpected("the database's wharf_schema holds a negative version");
  return std::vector<Migration>(all.begin() + current, all.end());
}

std::expected<int, std::string> schema_version(PGconn* c) {
  try {
    auto t = exec(c, "SELECT to_regclass('wharf_schema') IS NOT NULL");
    if (t.text(0, 0) != "t") return 0;
    auto r = exec(c, "SELECT coalesce(max(version), 0) FROM wharf_schema");
    return int(r.int64(0, 0));
  } catch (const PgError& e) {
    return std::unexpected(std::string("reading the schema version: ") + e.what());
  }
}

std::expected<void, std::string> migrate(PGconn* c) {
  const std::string lock = std::to_string(kMigrationLock);
  try {
    exec(c, "SELECT pg_advisory_lock($1::bigint)", {lock});
  } catch (const PgError& e) {
    return std::unexpected(std::string("taking the migration lock: ") + e.what());
  }
  auto result = [&]() -> std::expected<void, std::string> {
    try {
      exec(c, "CREATE TABLE IF NOT EXISTS wharf_schema (version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())");
    } catch (const PgError& e) {
      return std::unexpected(std::string("creating wharf_schema: ") + e.what());
    }
    auto current = schema_version(c);
    if (!current) return std::unexpected(current.error());
    auto plan = plan_migrations(*current, migrations());
    if (!plan) return std::unexpected(plan.error());
    for (const auto& m : *plan) {
      try {
        exec(c, "BEGIN");
        exec_script(c, m.sql);
        exec(c, "INSERT INTO wharf_schema (version) VALUES ($1::integer)", {std::to_string(m.version)});
        exec(c, "COMMIT");
      } catch (const PgError& e) {
        Result rollback(PQexec(c, "ROLLBACK"));
        return std::unexpected("applying schema migration " + std::to_string(m.version) + ": " + e.what());
      }
    }
    return {};
  }();
  try {
    exec(c, "SELECT pg_advisory_unlock($1::bigint)", {lock});
  } catch (const PgError&) {
    // The connection broke: the server released the session lock with it.
  }
  return result;
}

}  // namespace wharf::cache::pg
