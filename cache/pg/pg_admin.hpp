#pragma once
// One-off statements on a fresh connection, for tests and tools that must not depend on libpq's headers.
#include <expected>
#include <string>
#include <string_view>

namespace wharf::cache::pg {

// Runs `sql` (one or more statements, no parameters) on a new connection to `dsn`; fails with the reason.
std::expected<void, std::string> run_script(const std::string& dsn, std::string_view sql);

// The first row of `sql`'s result on a new connection to `dsn`, columns joined with '|' ("" when no
// row); fails with the reason.
std::expected<std::string, std::string> query_row(const std::string& dsn, std::string_view sql);

}  // namespace wharf::cache::pg
