// RFC 3339 formatting of Unix times (UTC).
#include "src/util/rfc3339.hpp"

#include <ctime>

namespace wharf::util {

std::string rfc3339_utc(int64_t seconds) {
  const std::time_t tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

}  // namespace wharf::util
