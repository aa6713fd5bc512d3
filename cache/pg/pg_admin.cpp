// One-off statements on a fresh connection.
#include "cache/pg/pg_admin.hpp"

#include "cache/pg/pg_conn.hpp"

namespace wharf::cache::pg {

std::expected<void, std::string> run_script(const std::string& dsn, std::string_view sql) {
  auto c = connect(dsn, "database");
  if (!c) return std::unexpected(c.error());
  try {
    exec_script(c->get(), sql);
    return {};
  } catch (const PgError& e) {
    return std::unexpected(e.what());
  }
}

std::expected<std::string, std::string> query_row(const std::string& dsn, std::string_view sql) {
  auto c = connect(dsn, "database");
  if (!c) return std::unexpected(c.error());
  try {
    auto r = exec(c->get(), sql);
    std::string out;
    if (r.rows() == 0) return out;
    for (int col = 0; col < PQnfields(r.raw()); ++col) {
      if (col > 0) out += '|';
      out += r.text(0, col);
    }
    return out;
  } catch (const PgError& e) {
    return std::unexpected(e.what());
  }
}

}  // namespace wharf::cache::pg
