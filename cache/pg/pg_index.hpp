#pragma once
// The PostgreSQL index: the tables of cache/pg/pg_schema.cpp in one database shared by several fronts.
// Every call checks a connection out of a bounded pool and blocks on the network (blocks() is true:
// callers on the event loop run it on the work pool). Reads run in a REPEATABLE READ READ ONLY
// transaction (one snapshot); every write is one transaction that first takes the writer advisory lock
// (kWriterLock), so writers are serialized across fronts as LMDB's writer lock serializes processes.
#include <chrono>
#include <cstddef>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <string>

#include "cache/index.hpp"

typedef struct pg_conn PGconn;  // libpq's connection (libpq-fe.h), opaque here

namespace wharf::cache {

namespace pg {
class Pool;
}

class PgIndex final : public Index {
 public:
  // Connects to `dsn`, creates or migrates the schema (safe when several fronts start at once) and
  // keeps at most `pool_size` connections. Fails with a message naming database.dsn (without the
  // password) when the server cannot be reached, or the schema is newer than this wharf's.
  static std::expected<std::unique_ptr<PgIndex>, std::string> open(const std::string& dsn, size_t pool_size = 8,
                                                                   std::chrono::milliseconds wait =
                                                                       std::chrono::seconds(10));
  ~PgIndex() override;
  // For `wharf check-config`: connects to `dsn` and reads the schema version, changing nothing; the
  // problem (naming database.dsn, without the password) or nullopt when a start would succeed.
  static std::optional<std::string> probe(const std::string& dsn);

  // Runs `SELECT 1` on a pooled connection, waiting at most `timeout` for one; the error says why.
  std::expected<void, std::string> ping(std::chrono::milliseconds timeout) const;

  ReadTxn read() const override;
  std::string_view kind() const override { return "postgresql"; }
  bool blocks() const override { return true; }
  // One upsert on the claims table, timed by the database's clock (the same for every front).
  std::expected<bool, std::string> claim(std::string_view key, std::string_view owner,
                                         std::chrono::milliseconds window) override;
  // One SELECT on the claims table.
  std::expected<std::optional<std::string>, std::string> claim_holder(std::string_view key) const override;

  // pg_try_advisory_lock(kMaintenanceLock) on a connection of its own (not a pooled one, which would
  // keep the lock when handed back): closing it releases the lock, also when this process dies.
  std::expected<std::unique_ptr<MaintenanceLock>, std::string> try_maintenance_lock() override;
  // DELETE of the claims rows older than `age` by the database's clock.
  std::expected<size_t, std::string> expire_claims(std::chrono::seconds age) override;

  bool repo_exists(const ReadTxn&, std::string_view repo) const override;
  std::optional<BlobRecord> blob(const ReadTxn&, std::string_view digest) const override;
  bool blob_linked(const ReadTxn&, std::string_view repo, std::string_view digest) const override;
  std::optional<std::string> tag(const ReadTxn&, std::string_view repo, std::string_view tag) const override;
  std::optional<ManifestRecord> manifest(const ReadTxn&, std::string_view digest) const override;
  bool manifest_in_repo(const ReadTxn&, std::string_view repo, std::string_view digest) const override;
  std::vector<std::string> tags(const ReadTxn&, std::string_view repo, std::string_view last, size_t n,
                                bool* more) const override;
  std::vector<std::string> repos(const ReadTxn&, std::string_view last, size_t n, bool* more) const override;
  std::vector<Referrer> referrers(const ReadTxn&, std::string_view repo, std::string_view subject) const override;
  std::optional<UploadRecord> upload(const ReadTxn&, std::string_view uuid) const override;
  std::optional<int64_t> last_access(const ReadTxn&, std::string_view digest) const override;

  std::expected<void, std::string> link_blobs(const std::vector<NewLink>& links) override;
  std::expected<bool, std::string> unlink_blob(std::string_view repo, std::string_view digest) override;
  std::expected<void, std::string> put_manifest(std::string_view repo, std::string_view digest,
                                                const ManifestRecord& rec,
                                                std::optional<std::string_view> tag) override;
  std::expected<std::optional<std::string>, std::string> put_manifest_checked(
      std::string_view repo, std::string_view digest, const ManifestRecord& rec, std::optional<std::string_view> tag,
      const std::vector<std::string>& required) override;
  std::expected<bool, std::string> delete_tag(std::string_view repo, std::string_view tag) override;
  std::expected<bool, std::string> delete_manifest(std::string_view repo, std::string_view digest) override;
  std::expected<void, std::string> put_upload(std::string_view uuid, const UploadRecord& rec) override;
  std::expected<void, std::string> delete_upload(std::string_view uuid) override;
  std::vector<std::pair<std::string, UploadRecord>> uploads(const ReadTxn&) const override;
  std::expected<void, std::string> touch(const std::vector<std::pair<std::string, int64_t>>& accesses) override;
  std::vector<TagEntry> all_tags(const ReadTxn&) const override;
  std::vector<RepoManifest> all_repo_manifests(const ReadTxn&) const override;
  std::vector<std::pair<std::string, ManifestRecord>> all_manifests(const ReadTxn&) const override;
  std::vector<std::pair<std::string, BlobRecord>> all_blobs(const ReadTxn&) const override;
  std::vector<BlobLink> all_links(const ReadTxn&) const override;
  std::vector<std::pair<std::string, int64_t>> all_access(const ReadTxn&) const override;
  std::expected<void, std::string> update(std::string_view op, const std::function<void(Update&)>& f) override;
  // Refused: a PostgreSQL index is backed up with pg_dump (the message says so).
  std::expected<void, std::string> copy_to(const std::filesystem::path& dir) const override;
  std::expected<void, std::string> put_tags(const std::vector<TagEntry>& entries) override;
  // Refused: rows are typed, nothing is undecodable; repairs are SQL (the message says so).
  std::expected<bool, std::string> drop_raw(std::string_view table, std::string_view key) override;
  // Always empty: PostgreSQL keeps typed rows.
  std::vector<std::string> undecodable(std::string_view table) const override;

  // One checked-out connection inside a transaction (a read snapshot or a write); cache/pg/pg_rows.hpp.
  struct Session;

 protected:
  void end_read(void* handle) const noexcept override;

 private:
  explicit PgIndex(std::string dsn, size_t pool_size, std::chrono::milliseconds wait);
  // Runs `f(conn)` in one write transaction under the writer lock and commits; PgError becomes
  // "index <op>: <reason>" and rolls back.
  template <class F>
  auto write(std::string_view op, F&& f) -> std::expected<std::invoke_result_t<F, PGconn*>, std::string>;
  // A pooled connection with `begin_sql` run on it (retried once on a fresh connection if the server had
  // gone); throws PgError.
  std::unique_ptr<Session> begin(std::string_view begin_sql) const;
  std::unique_ptr<pg::Pool> pool_;
};

}  // namespace wharf::cache
