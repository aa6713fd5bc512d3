#include "src/ui/cookie.hpp"

namespace wharf::ui {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  if (name.empty()) return std::nullopt;
  while (!header.empty()) {
    const size_t semi = header.find(';');
    const std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim(pair.substr(0, eq)) != name) continue;
    std::string_view value = trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    for (char c : value)  // cookie-octet: no controls, whitespace, DQUOTE, comma, semicolon or backslash
      if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == ',' || c == ';' || c == '\\' || c == 0x7f)
        return std::nullopt;
    return value;
  }
  return std::nullopt;
}

}  // namespace wharf::ui
