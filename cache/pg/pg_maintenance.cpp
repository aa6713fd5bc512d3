// PgIndex's fleet-wide maintenance lock and the expiry of old claims.
//
// The lock is a session-level pg_try_advisory_lock rather than a lease row in the claims table: a run
// of garbage collection has no natural renewal point (one sweep transaction can take long), and a
// session lock needs none. It is held on a connection of its own, never a pooled one, so it cannot
// stay behind on an idle connection, and it goes away with the connection: when the run ends, when the
// holding front dies (the server sees the socket close) and when the database restarts. After a
// restart two runs may overlap briefly; that costs work, not safety, since every sweep re-marks and
// deletes under the writer lock (cache/gc.hpp).
#include <string>

#include "cache/pg/pg_conn.hpp"
#include "cache/pg/pg_index.hpp"
#include "cache/pg/pg_schema.hpp"

namespace wharf::cache {

namespace {

// The held lock: the connection that took it (closing it releases the lock).
class PgMaintenanceLock final : public Index::MaintenanceLock {
 public:
  explicit PgMaintenanceLock(pg::Conn c) : conn_(std::move(c)) {}

 private:
  pg::Conn conn_;
};

}  // namespace

std::expected<std::unique_ptr<Index::MaintenanceLock>, std::string> PgIndex::try_maintenance_lock() {
  auto c = pg::connect(pool_->dsn(), "database.dsn");
  if (!c) return std::unexpected(std::string("maintenance lock: ").append(c.error()));
  try {
    auto r = pg::exec(c->get(), "SELECT pg_try_advisory_lock($1::bigint)", {std::to_string(pg::kMaintenanceLock)});
    if (r.rows() != 1 || r.text(0, 0) != "t") return std::unique_ptr<MaintenanceLock>();
    return std::unique_ptr<MaintenanceLock>(new PgMaintenanceLock(std::move(*c)));
  } catch (const pg::PgError& e) {
    return std::unexpected(std::string("maintenance lock: ").append(e.what()));
  }
}

std::expected<size_t, std::string> PgIndex::expire_claims(std::chrono::seconds age) {
  try {
    auto lease = pool_->acquire();
    auto r = pg::exec(lease.get(), "DELETE FROM claims WHERE at < clock_timestamp() - $1::bigint * interval '1 second'",
                      {std::to_string(age.count())});
    return size_t(r.affected());
  } catch (const pg::PgError& e) {
    return std::unexpected(std::string("index expire claims: ").append(e.what()));
  }
}

}  // namespace wharf::cache
