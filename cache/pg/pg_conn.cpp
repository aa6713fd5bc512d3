// libpq owners, the statement runner and the connection pool of the PostgreSQL index.
#include "cache/pg/pg_conn.hpp"

#include <utility>

#include "src/util/number.hpp"
#include "src/util/work_pool.hpp"

namespace wharf::cache::pg {

namespace {

// libpq's message without its trailing newline, on one line.
std::string one_line(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s.empty() ? std::string("unknown error") : s;
}

// The first words of a statement, to name it in errors.
std::string_view head(std::string_view sql) { return sql.substr(0, std::min<size_t>(sql.size(), 48)); }

// A PgError naming the statement.
PgError statement_error(std::string_view sql, std::string_view why) {
  std::string msg("database: \"");
  msg.append(head(sql)).append("...\": ").append(why);
  return PgError(msg);
}

Result run(PGconn* c, std::string_view sql, const std::vector<std::string_view>& params) {
  // Text format: libpq reads each value up to its NUL, so every value is copied into a std::string and
  // one holding a NUL (which PostgreSQL text cannot store) is refused rather than cut short.
  std::vector<std::string> owned;
  owned.reserve(params.size());
  for (auto p : params) {
    if (p.find('\0') != std::string_view::npos)
      throw statement_error(sql, "a value holds a NUL byte");
    owned.emplace_back(p);
  }
  std::vector<const char*> values;
  for (const auto& o : owned) values.push_back(o.c_str());
  const std::string stmt(sql);
  PGresult* r = PQexecParams(c, stmt.c_str(), int(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
  Result res(r);
  const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    throw statement_error(sql, one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c)));
  return res;
}

}  // namespace

int64_t Result::int64(int row, int col) const {
  auto v = util::parse_i64(text(row, col));
  if (!v) throw PgError("database: column " + std::to_string(col) + " is not an integer");
  return *v;
}

int64_t Result::affected() const {
  return util::parse_i64(PQcmdTuples(r_.get())).value_or(0);
}

std::expected<Conn, std::string> connect(const std::string& dsn, std::string_view what) {
  // Later entries override earlier ones: the DSN's own connect_timeout wins over this default.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"5", "wharf", dsn.c_str(), nullptr};
  Conn c(PQconnectdbParams(keys, values, 1));
  if (!c) return std::unexpected(std::string(what) + ": cannot connect: out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK)
    return std::unexpected(std::string(what) + ": cannot connect: " + one_line(PQerrorMessage(c.get())));
  // NOTICEs ("relation ... already exists, skipping") are expected chatter, not for stderr.
  PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);
  return c;
}

Result exec(PGconn* c, std::string_view sql, std::initializer_list<std::string_view> params) {
  return run(c, sql, std::vector<std::string_view>(params));
}

Result exec(PGconn* c, std::string_view sql, const std::vector<std::string>& params) {
  return run(c, sql, std::vector<std::string_view>(params.begin(), params.end()));
}

void exec_script(PGconn* c, std::string_view sql) {
  Result r(PQexec(c, std::string(sql).c_str()));
  const auto status = PQresultStatus(r.raw());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    throw statement_error(sql, one_line(PQerrorMessage(c)));
}

// ---- Pool ----

Pool::Pool(std::string dsn, size_t size, std::chrono::milliseconds wait)
    : dsn_(std::move(dsn)), size_(size == 0 ? 1 : size), wait_(wait) {}

Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (!conn_) return;
  if (PQstatus(conn_.get()) == CONNECTION_OK && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
    Result r(PQexec(conn_.get(), "ROLLBACK"));
  }
  pool_->give_back(std::move(conn_));
}

void Pool::give_back(Conn c) noexcept {
  std::lock_guard lk(mu_);
  --out_;
  const bool broken = PQstatus(c.get()) != CONNECTION_OK || PQtransactionStatus(c.get()) != PQTRANS_IDLE;
  if (broken) {
    ++epoch_;  // the server went away: every idle connection is suspect
  } else {
    idle_.push_back({std::move(c), epoch_});
  }
  cv_.notify_one();
}

Pool::Lease Pool::acquire(std::optional<std::chrono::milliseconds> wait) {
  // Every statement waits on the network: on the event loop it would stall every client (and an outage's
  // error would surface where nothing answers it). Handlers reach the index through index_call.
  (void)util::blocking_on_event_loop("PostgreSQL call");
  const auto patience = wait.value_or(wait_);
  std::unique_lock lk(mu_);
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    if (!idle_.empty()) {
      Idle got = std::move(idle_.back());
      idle_.pop_back();
      ++out_;
      const bool suspect = got.epoch != epoch_;
      lk.unlock();
      if (suspect || PQstatus(got.conn.get()) != CONNECTION_OK) PQreset(got.conn.get());
      if (PQstatus(got.conn.get()) != CONNECTION_OK) {
        std::string why = one_line(PQerrorMessage(got.conn.get()));
        give_back(std::move(got.conn));  // dropped (broken)
        throw PgError("database.dsn: cannot reconnect: " + why);
      }
      return Lease(this, std::move(got.conn));
    }
    if (out_ < size_) {
      ++out_;
      lk.unlock();
      auto c = connect(dsn_, "database.dsn");
      if (!c) {
        {
          std::lock_guard relock(mu_);
          --out_;
        }
        cv_.notify_one();
        throw PgError(c.error());
      }
      return Lease(this, std::move(*c));
    }
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && idle_.empty() && out_ >= size_)
      throw PgError("database: no free connection within " + std::to_string(patience.count()) +
                    " ms (all " + std::to_string(size_) + " of database.poolsize in use)");
  }
}

}  // namespace wharf::cache::pg
