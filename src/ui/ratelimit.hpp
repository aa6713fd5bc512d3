#pragma once
// Docker Hub's rate-limit headers: "ratelimit-limit: 100;w=21600" and "ratelimit-remaining: 76;w=21600".
#include <cstdint>
#include <optional>
#include <string_view>

namespace wharf::ui {

// The count before the first ';' ("100;w=21600" → 100); nullopt when empty or not a number.
std::optional<uint64_t> ratelimit_count(std::string_view header);

}  // namespace wharf::ui
