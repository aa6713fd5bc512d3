#pragma once
// libpq owners for the PostgreSQL index: one owner per PGconn and PGresult, a statement runner that
// throws PgError, and a bounded pool of connections that callers (work-pool threads and offline verbs,
// never the event loop) check out and wait for.
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <expected>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::cache::pg {

// A failed statement or connection; the message names the statement's purpose, never the password.
class PgError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Closes a connection (PQfinish).
struct ConnFree {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
// The one owner of a connection.
using Conn = std::unique_ptr<PGconn, ConnFree>;

// Frees a result (PQclear).
struct ResultFree {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};

// The one owner of a query result; rows and columns are read as text.
class Result {
 public:
  // Takes ownership of `r` (may be null: libpq out of memory).
  explicit Result(PGresult* r) : r_(r) {}
  // Number of rows returned.
  int rows() const { return PQntuples(r_.get()); }
  // The text of row `row`, column `col` ("" for NULL).
  std::string_view text(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), size_t(PQgetlength(r_.get(), row, col))};
  }
  // The column as a signed integer; throws PgError if it does not parse.
  int64_t int64(int row, int col) const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t affected() const;
  // The libpq result (owned by this; may be null when libpq ran out of memory).
  PGresult* raw() const { return r_.get(); }

 private:
  std::unique_ptr<PGresult, ResultFree> r_;
};

// Opens a connection to `dsn` (a URI or key=value string) with a connect timeout; the error names
// `what` and libpq's reason, never the password.
std::expected<Conn, std::string> connect(const std::string& dsn, std::string_view what);

// Runs `sql` with text parameters (binary-safe lengths) and returns its result; throws PgError naming
// `sql`'s first words when the statement fails or the connection is gone.
Result exec(PGconn* c, std::string_view sql, std::initializer_list<std::string_view> params = {});
// Runs several statements without parameters (the simple protocol); throws PgError if one fails.
void exec_script(PGconn* c, std::string_view sql);
// exec() with a parameter vector.
Result exec(PGconn* c, std::string_view sql, const std::vector<std::string>& params);

// A bounded set of connections to one database. Thread-safe.
class Pool {
 public:
  // `size` connections at most; a caller waits at most `wait` for a free one.
  Pool(std::string dsn, size_t size, std::chrono::milliseconds wait);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A checked-out connection, returned to the pool when destroyed (dropped if it is broken or left
  // inside a transaction that cannot be rolled back).
  class Lease {
   public:
    // A connection of `pool`, handed back when this is destroyed.
    Lease(Pool* pool, Conn c) : pool_(pool), conn_(std::move(c)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    // The connection, valid while this lease lives.
    PGconn* get() const { return conn_.get(); }

   private:
    Pool* pool_;
    Conn conn_;
  };
  // Checks a connection out: an idle one (reset first if the server dropped it), a new one while under
  // the limit, or the next one returned within `wait` (the pool's by default); throws PgError if none
  // can be had.
  Lease acquire(std::optional<std::chrono::milliseconds> wait = std::nullopt);
  // The connection string the pool connects with (for a connection kept apart from the pool).
  const std::string& dsn() const { return dsn_; }

 private:
  void give_back(Conn c) noexcept;
  // An idle connection and the epoch it was last known good in.
  struct Idle {
    Conn conn;
    uint64_t epoch = 0;
  };
  const std::string dsn_;
  const size_t size_;
  const std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Idle> idle_;
  size_t out_ = 0;     // connections checked out
  uint64_t epoch_ = 0;  // bumped when a connection comes back broken: older idle ones are reset before use
};

}  // namespace wharf::cache::pg
