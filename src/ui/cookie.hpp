#pragma once
// Reading the Cookie request header (RFC 6265 section 4.2: "name=value; name2=value2").
#include <optional>
#include <string_view>

namespace wharf::ui {

// The value of cookie `name` in a Cookie header (the first one of that name; surrounding quotes of a
// quoted value removed), or nullopt when absent or when the header is malformed around it.
std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name);

}  // namespace wharf::ui
