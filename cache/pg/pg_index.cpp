// PgIndex: opening (connect + migrate), read snapshots and the read-side queries. Writes: pg_write.cpp.
#include "cache/pg/pg_index.hpp"

#include "cache/pg/pg_conn.hpp"
#include "cache/pg/pg_dsn.hpp"
#include "cache/pg/pg_rows.hpp"
#include "cache/pg/pg_schema.hpp"

namespace wharf::cache {

using pg::exec;
using namespace pg::rows;

PgIndex::PgIndex(std::string dsn, size_t pool_size, std::chrono::milliseconds wait)
    : pool_(std::make_unique<pg::Pool>(std::move(dsn), pool_size, wait)) {}

PgIndex::~PgIndex() = default;

std::expected<std::unique_ptr<PgIndex>, std::string> PgIndex::open(const std::string& dsn, size_t pool_size,
                                                                   std::chrono::milliseconds wait) {
  const std::string where = std::string("database.dsn (").append(pg::redact_dsn(dsn)).append(")");
  auto c = pg::connect(dsn, where);
  if (!c) return std::unexpected(c.error());
  if (auto m = pg::migrate(c->get()); !m) return std::unexpected(where + ": " + m.error());
  return std::unique_ptr<PgIndex>(new PgIndex(dsn, pool_size, wait));
}

std::optional<std::string> PgIndex::probe(const std::string& dsn) {
  const std::string where = std::string("database.dsn (").append(pg::redact_dsn(dsn)).append(")");
  auto c = pg::connect(dsn, where);
  if (!c) return c.error();
  auto version = pg::schema_version(c->get());
  if (!version) return where + ": " + version.error();
  if (auto plan = pg::plan_migrations(*version, pg::migrations()); !plan) return where + ": " + plan.error();
  return std::nullopt;
}

std::unique_ptr<PgIndex::Session> PgIndex::begin(std::string_view begin_sql) const {
  for (int attempt = 0;; ++attempt) {
    auto lease = pool_->acquire();
    try {
      pg::exec_script(lease.get(), begin_sql);
      return std::unique_ptr<Session>(new Session{std::move(lease)});
    } catch (const pg::PgError&) {
      // A connection the server dropped since its last use fails here first: one retry on a fresh one.
      if (attempt == 0 && PQstatus(lease.get()) != CONNECTION_OK) continue;
      throw;
    }
  }
}

std::expected<void, std::string> PgIndex::ping(std::chrono::milliseconds timeout) const {
  try {
    auto lease = pool_->acquire(timeout);
    pg::exec_script(lease.get(), "BEGIN; SET LOCAL statement_timeout = " + std::to_string(timeout.count()) +
                                     "; SELECT 1; COMMIT");
    return {};
  } catch (const pg::PgError& e) {
    return std::unexpected(e.what());
  }
}

std::expected<bool, std::string> PgIndex::claim(std::string_view key, std::string_view owner,
                                                std::chrono::milliseconds window) {
  try {
    auto lease = pool_->acquire();
    auto r = pg::exec(lease.get(),
                      "INSERT INTO claims (key, owner, at) VALUES ($1::text, $2::text, clock_timestamp()) "
                      "ON CONFLICT (key) DO UPDATE SET at = EXCLUDED.at, owner = EXCLUDED.owner "
                      "WHERE claims.owner = EXCLUDED.owner OR "
                      "claims.at <= EXCLUDED.at - $3::bigint * interval '1 millisecond' RETURNING 1",
                      {key, owner, std::to_string(window.count())});
    return r.rows() == 1;
  } catch (const pg::PgError& e) {
    return std::unexpected(std::string("index claim: ").append(e.what()));
  }
}

std::expected<std::optional<std::string>, std::string> PgIndex::claim_holder(std::string_view key) const {
  try {
    auto lease = pool_->acquire();
    auto r = pg::exec(lease.get(), "SELECT owner FROM claims WHERE key = $1::text", {key});
    if (r.rows() == 0) return std::nullopt;
    return std::optional<std::string>(std::string(r.text(0, 0)));
  } catch (const pg::PgError& e) {
    return std::unexpected(std::string("index claim holder: ").append(e.what()));
  }
}

Index::ReadTxn PgIndex::read() const {
  // The snapshot is taken by the first statement, so one runs now: later commits stay invisible.
  return ReadTxn(this, begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1").release());
}

void PgIndex::end_read(void* handle) const noexcept { delete static_cast<Session*>(handle); }

// ---- reads ----

bool PgIndex::repo_exists(const ReadTxn& t, std::string_view repo) const {
  return exec(conn(t), "SELECT 1 FROM repos WHERE name = $1::text", {repo}).rows() > 0;
}

std::optional<BlobRecord> PgIndex::blob(const ReadTxn& t, std::string_view digest) const {
  auto r = exec(conn(t), std::string("SELECT ").append(kBlobColumns).append(" FROM blobs WHERE digest = $1::text"),
                {digest});
  if (r.rows() == 0) return std::nullopt;
  return blob_row(r, 0, 0);
}

bool PgIndex::blob_linked(const ReadTxn& t, std::string_view repo, std::string_view digest) const {
  return exec(conn(t), "SELECT 1 FROM links WHERE repo = $1::text AND digest = $2::text", {repo, digest}).rows() > 0;
}

std::optional<std::string> PgIndex::tag(const ReadTxn& t, std::string_view repo, std::string_view tag) const {
  auto r = exec(conn(t), "SELECT digest FROM tags WHERE repo = $1::text AND tag = $2::text", {repo, tag});
  if (r.rows() == 0) return std::nullopt;
  return std::string(r.text(0, 0));
}

std::optional<ManifestRecord> PgIndex::manifest(const ReadTxn& t, std::string_view digest) const {
  auto r = exec(conn(t),
                std::string("SELECT ").append(kManifestColumns).append(" FROM manifests WHERE digest = $1::text"),
                {digest});
  if (r.rows() == 0) return std::nullopt;
  return manifest_row(r, 0, 0);
}

bool PgIndex::manifest_in_repo(const ReadTxn& t, std::string_view repo, std::string_view digest) const {
  return exec(conn(t), "SELECT 1 FROM repo_manifests WHERE repo = $1::text AND digest = $2::text", {repo, digest})
             .rows() > 0;
}

namespace {

// The first column of each row, at most n of them (the query asked for n+1 to learn about `more`).
std::vector<std::string> paged(const pg::Result& r, size_t n, bool* more) {
  std::vector<std::string> out;
  const size_t rows = size_t(r.rows());
  const size_t take = n == 0 ? rows : std::min(rows, n);
  for (size_t i = 0; i < take; ++i) out.emplace_back(r.text(int(i), 0));
  if (more) *more = rows > take;
  return out;
}

// "LIMIT n+1" for a page of n (0: no limit).
std::string limit(size_t n) { return n == 0 ? std::string() : std::string(" LIMIT ").append(std::to_string(n + 1)); }

}  // namespace

std::vector<std::string> PgIndex::tags(const ReadTxn& t, std::string_view repo, std::string_view last, size_t n,
                                       bool* more) const {
  auto r = exec(conn(t),
                std::string("SELECT tag FROM tags WHERE repo = $1::text AND tag > $2::text ORDER BY tag").append(limit(n)),
                {repo, last});
  return paged(r, n, more);
}

std::vector<std::string> PgIndex::repos(const ReadTxn& t, std::string_view last, size_t n, bool* more) const {
  auto r = exec(conn(t), std::string("SELECT name FROM repos WHERE name > $1::text ORDER BY name").append(limit(n)),
                {last});
  return paged(r, n, more);
}

std::vector<Referrer> PgIndex::referrers(const ReadTxn& t, std::string_view repo, std::string_view subject) const {
  auto r = exec(conn(t),
                "SELECT digest, media_type, size, artifact_type, annotations FROM referrers "
                "WHERE repo = $1::text AND subject = $2::text ORDER BY digest",
                {repo, subject});
  std::vector<Referrer> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back(Referrer{std::string(r.text(i, 0)), std::string(r.text(i, 1)), uint64_t(r.int64(i, 2)),
                           std::string(r.text(i, 3)), std::string(r.text(i, 4))});
  return out;
}

std::optional<UploadRecord> PgIndex::upload(const ReadTxn& t, std::string_view uuid) const {
  auto r = exec(conn(t), "SELECT repo, started FROM uploads WHERE uuid = $1::text", {uuid});
  if (r.rows() == 0) return std::nullopt;
  return UploadRecord{std::string(r.text(0, 0)), r.int64(0, 1)};
}

std::optional<int64_t> PgIndex::last_access(const ReadTxn& t, std::string_view digest) const {
  auto r = exec(conn(t), "SELECT at FROM access WHERE digest = $1::text", {digest});
  if (r.rows() == 0) return std::nullopt;
  return r.int64(0, 0);
}

std::vector<std::pair<std::string, UploadRecord>> PgIndex::uploads(const ReadTxn& t) const {
  auto r = exec(conn(t), "SELECT uuid, repo, started FROM uploads ORDER BY uuid");
  std::vector<std::pair<std::string, UploadRecord>> out;
  for (int i = 0; i < r.rows(); ++i)
    out.emplace_back(std::string(r.text(i, 0)), UploadRecord{std::string(r.text(i, 1)), r.int64(i, 2)});
  return out;
}

// ---- enumeration ----

std::vector<TagEntry> PgIndex::all_tags(const ReadTxn& t) const {
  auto r = exec(conn(t), "SELECT repo, tag, digest FROM tags ORDER BY repo, tag");
  std::vector<TagEntry> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({std::string(r.text(i, 0)), std::string(r.text(i, 1)), std::string(r.text(i, 2))});
  return out;
}

std::vector<RepoManifest> PgIndex::all_repo_manifests(const ReadTxn& t) const {
  auto r = exec(conn(t), "SELECT repo, digest, added FROM repo_manifests ORDER BY repo, digest");
  std::vector<RepoManifest> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({std::string(r.text(i, 0)), std::string(r.text(i, 1)), r.int64(i, 2)});
  return out;
}

std::vector<std::pair<std::string, ManifestRecord>> PgIndex::all_manifests(const ReadTxn& t) const {
  auto r = exec(conn(t),
                std::string("SELECT digest, ").append(kManifestColumns).append(" FROM manifests ORDER BY digest"));
  std::vector<std::pair<std::string, ManifestRecord>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(std::string(r.text(i, 0)), manifest_row(r, i, 1));
  return out;
}

std::vector<std::pair<std::string, BlobRecord>> PgIndex::all_blobs(const ReadTxn& t) const {
  auto r = exec(conn(t), std::string("SELECT digest, ").append(kBlobColumns).append(" FROM blobs ORDER BY digest"));
  std::vector<std::pair<std::string, BlobRecord>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(std::string(r.text(i, 0)), blob_row(r, i, 1));
  return out;
}

std::vector<BlobLink> PgIndex::all_links(const ReadTxn& t) const {
  auto r = exec(conn(t), "SELECT repo, digest FROM links ORDER BY repo, digest");
  std::vector<BlobLink> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({std::string(r.text(i, 0)), std::string(r.text(i, 1))});
  return out;
}

std::vector<std::pair<std::string, int64_t>> PgIndex::all_access(const ReadTxn& t) const {
  auto r = exec(conn(t), "SELECT digest, at FROM access ORDER BY digest");
  std::vector<std::pair<std::string, int64_t>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(std::string(r.text(i, 0)), r.int64(i, 1));
  return out;
}

// ---- offline tools that need the LMDB file ----

std::expected<void, std::string> PgIndex::copy_to(const std::filesystem::path&) const {
  return std::unexpected(
      "the index is in PostgreSQL (database.dsn): back it up with pg_dump (e.g. `pg_dump -Fc wharf > index.dump`), "
      "not with wharf's index copy");
}

std::expected<bool, std::string> PgIndex::drop_raw(std::string_view, std::string_view) {
  return std::unexpected(
      "the index is in PostgreSQL (database.dsn): its rows are typed and cannot be undecodable; repair them with "
      "psql, or restore a pg_dump backup");
}

std::vector<std::string> PgIndex::undecodable(std::string_view) const { return {}; }

}  // namespace wharf::cache
