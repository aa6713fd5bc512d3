#pragma once
// RFC 3339 timestamps in UTC with second precision ("2026-12-01T09:51:23Z").
#include <cstdint>
#include <string>

namespace wharf::util {

// Seconds since the Unix epoch as "YYYY-MM-DDTHH:MM:SSZ".
std::string rfc3339_utc(int64_t seconds);

}  // namespace wharf::util
