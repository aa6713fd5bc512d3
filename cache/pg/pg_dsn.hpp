#pragma once
// PostgreSQL connection strings (URIs and key=value lists) as wharf shows them: without the password.
#include <string>
#include <string_view>

namespace wharf::cache::pg {

// `dsn` with every password replaced by "***": the user info of a postgres(ql):// URI, its `password=`
// query parameter, and the `password` keyword of a key=value string (quoted or not). Never fails.
std::string redact_dsn(std::string_view dsn);

}  // namespace wharf::cache::pg
