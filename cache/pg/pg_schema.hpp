#pragma once
// The PostgreSQL index's schema: numbered migrations, applied in order at open under a session
// advisory lock (concurrent starts of several fronts wait for each other), and recorded in the
// wharf_schema table. A database whose schema is newer than this wharf's is refused.
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

typedef struct pg_conn PGconn;  // libpq's connection (libpq-fe.h), opaque here

namespace wharf::cache::pg {

// pg_advisory_xact_lock key every index writer takes: serializes writers across fronts like LMDB's writer lock.
constexpr int64_t kWriterLock = 0x7768617266'01;  // "wharf" 01
// pg_advisory_lock key held while the schema is checked and migrated.
constexpr int64_t kMigrationLock = 0x7768617266'02;
// pg_try_advisory_lock key (session level) held by the one front running garbage collection or eviction,
// and by the offline `wharf garbage-collect` verb.
constexpr int64_t kMaintenanceLock = 0x7768617266'03;

// One schema step: the statements that take the schema from version-1 to `version`.
struct Migration {
  int version = 0;
  std::string_view sql;
};

// Every migration this wharf knows, in order.
std::span<const Migration> migrations();

// The migrations to apply to a database at `current`, in order; fails if `current` is newer than the
// last of `all` (naming both versions), or if `all` is not strictly increasing from 1.
std::expected<std::vector<Migration>, std::string> plan_migrations(int current, std::span<const Migration> all);

// The version recorded in wharf_schema (0 when the table is absent or empty); fails with the reason.
std::expected<int, std::string> schema_version(PGconn* c);

// Brings the schema to the latest version under kMigrationLock, each migration in its own transaction;
// fails (writing nothing of the failed step) with a message naming the step.
std::expected<void, std::string> migrate(PGconn* c);

}  // namespace wharf::cache::pg
