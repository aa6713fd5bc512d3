#include "src/util/number.hpp"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace wharf::util {

namespace {

bool all_of(std::string_view s, bool (*pred)(char)) {
  for (char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}
bool is_dec(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

std::optional<uint64_t> parse_unsigned(std::string_view s, uint64_t max, int base, bool (*pred)(char)) {
  if (s.empty() || !all_of(s, pred)) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

}  // namespace

std::optional<uint64_t> parse_u64(std::string_view s, uint64_t max) { return parse_unsigned(s, max, 10, is_dec); }

std::optional<uint64_t> parse_hex_u64(std::string_view s, uint64_t max) { return parse_unsigned(s, max, 16, is_hex); }

std::optional<int64_t> parse_i64(std::string_view s, int64_t min, int64_t max) {
  std::string_view digits = s.starts_with('-') ? s.substr(1) : s;
  if (digits.empty() || !all_of(digits, is_dec)) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_u64_trimmed(std::string_view s, uint64_t max) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return parse_u64(s, max);
}

std::optional<int64_t> json_int(const nlohmann::json& v, int64_t min, int64_t max) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (max < 0 || u > static_cast<uint64_t>(max)) return std::nullopt;
    if (static_cast<int64_t>(u) < min) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < min || i > max) return std::nullopt;
    return i;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!std::isfinite(d)) return std::nullopt;
    const double t = std::trunc(d);
    // Compare in double before converting: converting an out-of-range double to an integer is UB.
    if (t < static_cast<double>(min) || t > static_cast<double>(max)) return std::nullopt;
    if (t >= 9.2e18 || t <= -9.2e18) return std::nullopt;
    return static_cast<int64_t>(t);
  }
  return std::nullopt;
}

std::chrono::seconds clamp_seconds(int64_t s, int64_t max_seconds) {
  if (s < 0) return std::chrono::seconds(0);
  if (s > max_seconds) return std::chrono::seconds(max_seconds);
  return std::chrono::seconds(s);
}

}  // namespace wharf::util
