#include "src/ui/ratelimit.hpp"

#include "src/util/number.hpp"

namespace wharf::ui {

std::optional<uint64_t> ratelimit_count(std::string_view header) {
  return util::parse_u64_trimmed(header.substr(0, header.find(';')), uint64_t(1) << 53);
}

}  // namespace wharf::ui
