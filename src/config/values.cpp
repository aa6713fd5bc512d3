// Parsers for the value syntaxes used in the configuration: Go durations, sizes, listen addresses, URLs.
#include <cctype>
#include <cmath>
#include <limits>

#include "src/config/config.hpp"
#include "src/config/schema.hpp"
#include "src/util/number.hpp"

namespace wharf::config {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads "digits[.digits]" at s[i]; false unless at least one digit was read.
bool read_decimal(std::string_view s, size_t& i, long double& out) {
  long double value = 0;
  bool any = false;
  while (i < s.size() && is_digit(s[i])) {
    value = value * 10 + (s[i++] - '0');
    any = true;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    long double scale = 0.1L;
    while (i < s.size() && is_digit(s[i])) {
      value += (s[i++] - '0') * scale;
      scale /= 10;
      any = true;
    }
  }
  out = value;
  return any;
}

}  // namespace

namespace detail {
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace detail

std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
  std::string_view s = text;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s == "0") return std::chrono::seconds(0);
  if (s.empty()) return std::nullopt;
  long double total_ns = 0;
  size_t i = 0;
  while (i < s.size()) {
    long double number = 0;
    if (!read_decimal(s, i, number)) return std::nullopt;
    const size_t unit_start = i;
    while (i < s.size() && !is_digit(s[i]) && s[i] != '.') ++i;
    const std::string_view unit = s.substr(unit_start, i - unit_start);
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") scale = 1e3L;
    else if (unit == "ms") scale = 1e6L;
    else if (unit == "s") scale = 1e9L;
    else if (unit == "m") scale = 60e9L;
    else if (unit == "h") scale = 3600e9L;
    else return std::nullopt;  // missing or unknown unit
    total_ns += number * scale;
    if (total_ns > static_cast<long double>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  }
  // Sub-second remainders round up, so "500ms" stays a non-zero interval.
  return std::chrono::seconds(static_cast<int64_t>(std::ceil(total_ns / 1e9L)));
}

std::optional<uint64_t> parse_size(const std::string& text) {
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  size_t i = 0;
  long double number = 0;
  if (!read_decimal(s, i, number)) return std::nullopt;
  while (i < s.size() && s[i] == ' ') ++i;
  const std::string unit = detail::lower(s.substr(i));
  long double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "k" || unit == "kb") scale = 1e3L;
  else if (unit == "m" || unit == "mb") scale = 1e6L;
  else if (unit == "g" || unit == "gb") scale = 1e9L;
  else if (unit == "t" || unit == "tb") scale = 1e12L;
  else if (unit == "ki" || unit == "kib") scale = 1024.0L;
  else if (unit == "mi" || unit == "mib") scale = 1024.0L * 1024;
  else if (unit == "gi" || unit == "gib") scale = 1024.0L * 1024 * 1024;
  else if (unit == "ti" || unit == "tib") scale = 1024.0L * 1024 * 1024 * 1024;
  else return std::nullopt;
  const long double bytes = std::round(number * scale);
  if (bytes >= 18446744073709551615.0L) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

namespace detail {

std::optional<std::string> check_listen_addr(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return "must be host:port, e.g. \":5000\" or \"127.0.0.1:5000\"";
  const std::string_view host = std::string_view(addr).substr(0, colon);
  const std::string_view port = std::string_view(addr).substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return "IPv6 host must be written as [address]:port";
    for (char c : host.substr(1, host.size() - 2)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.' && c != '%') {
        return "invalid IPv6 address";
      }
    }
  } else {
    for (char c : host) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return host.find(':') != std::string_view::npos ? "IPv6 host must be written as [address]:port"
                                                        : "invalid host name";
      }
    }
  }
  if (port.empty() || port.size() > 5) return "port must be a number from 1 to 65535";
  int value = 0;
  for (char c : port) {
    if (!is_digit(c)) return "port must be a number from 1 to 65535";
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) return "port must be a number from 1 to 65535";
  return std::nullopt;
}

std::optional<std::string> url_host(std::string_view url) {
  size_t start;
  if (lower(url.substr(0, 7)) == "http://") start = 7;
  else if (lower(url.substr(0, 8)) == "https://") start = 8;
  else return std::nullopt;
  std::string_view rest = url.substr(start);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (rest.empty()) return std::nullopt;
  for (char c : rest) {
    if (std::isspace(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return lower(rest);
}

namespace {

std::string describe(const YAML::Node& n) {
  if (n.IsScalar()) return "\"" + n.Scalar() + "\"";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

std::expected<std::vector<std::string>, std::string> string_list(const YAML::Node& n) {
  if (n.IsScalar()) return std::vector<std::string>{n.Scalar()};
  if (!n.IsSequence()) return std::unexpected("must be a list of strings, got " + describe(n));
  std::vector<std::string> out;
  for (const YAML::Node& item : n) {
    if (!item.IsScalar()) return std::unexpected("must be a list of strings, got an entry that is " + describe(item));
    out.push_back(item.Scalar());
  }
  return out;
}

bool is_header_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::expected<Value, ConfigError> headers(const YAML::Node& n, std::string_view key) {
  if (!n.IsMap()) return std::unexpected(ConfigError{std::string(key), "must map header names to lists of values"});
  Headers out;
  for (const auto& kv : n) {
    const std::string name = kv.first.as<std::string>();
    const std::string path = std::string(key) + "." + name;
    if (!is_header_name(name)) return std::unexpected(ConfigError{path, "invalid header name"});
    auto values = string_list(kv.second);
    if (!values) return std::unexpected(ConfigError{path, values.error()});
    for (std::string& v : *values) {
      if (v.find_first_of("\r\n") != std::string::npos) return std::unexpected(ConfigError{path, "values must be one line"});
      out.emplace_back(name, std::move(v));
    }
  }
  return out;
}

std::expected<Value, ConfigError> upstreams(const YAML::Node& n, const Notes& notes) {
  if (!n.IsSequence()) return std::unexpected(ConfigError{std::string(notes.key), "must be a list of upstreams"});
  std::vector<Upstream> out;
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string at = std::string(notes.key) + "[" + std::to_string(i) + "]";
    const YAML::Node entry = n[i];
    if (!entry.IsMap()) return std::unexpected(ConfigError{at, "must be a mapping with name and url"});
    Upstream u;
    for (const auto& kv : entry) {
      const std::string k = kv.first.as<std::string>();
      std::string* target = k == "name" ? &u.name : k == "url" ? &u.url : k == "username" ? &u.username
                          : k == "password" ? &u.password : k == "ca" ? &u.ca : nullptr;
      if (target == nullptr) {
        notes.warnings.push_back(at + "." + k + ": unknown key, ignored");
        continue;
      }
      if (kv.second.IsNull()) continue;
      if (!kv.second.IsScalar()) return std::unexpected(ConfigError{at + "." + k, "must be a string"});
      *target = kv.second.Scalar();
    }
    if (u.name.empty()) return std::unexpected(ConfigError{at + ".name", "missing; every upstream needs a name"});
    if (u.name.find_first_of("/ \t") != std::string::npos) {
      return std::unexpected(ConfigError{at + ".name", "must be a registry host such as ghcr.io, got \"" + u.name + "\""});
    }
    if (u.url.empty()) return std::unexpected(ConfigError{at + ".url", "missing; every upstream needs a url"});
    if (!url_host(u.url)) return std::unexpected(ConfigError{at + ".url", "must be an http:// or https:// URL"});
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace

std::expected<Value, ConfigError> convert(const YAML::Node& node, KeyType type, const Notes& notes) {
  const std::string key(notes.key);
  auto fail = [&](std::string message) { return std::unexpected(ConfigError{key, std::move(message)}); };
  const bool scalar_type = type != KeyType::Section && type != KeyType::Any && type != KeyType::StringList &&
                           type != KeyType::HeaderMap && type != KeyType::UpstreamList &&
                           type != KeyType::AccessRules && type != KeyType::FetchRules &&
                           type != KeyType::GroupMap && type != KeyType::RetentionRules;
  if (scalar_type && !node.IsScalar()) return fail("must be a single value, got " + describe(node));
  switch (type) {
    case KeyType::Section:
    case KeyType::Any:
      return Value{};
    case KeyType::Version:
      if (node.Scalar() != "0.1") return fail("unsupported configuration version " + describe(node) + "; expected 0.1");
      return Value{node.Scalar()};
    case KeyType::String:
      return Value{node.Scalar()};
    case KeyType::Bool: {
      bool b = false;
      if (!YAML::convert<bool>::decode(node, b)) return fail("must be true or false, got " + describe(node));
      return Value{b};
    }
    case KeyType::Int: {
      const std::string& s = node.Scalar();
      const auto i = util::parse_i64(s);
      if (!i) return fail("must be an integer, got " + describe(node));
      return Value{*i};
    }
    case KeyType::Duration: {
      const std::string& s = node.Scalar();
      if (s != "0") {
        if (const auto ns = util::parse_u64(s, uint64_t(std::numeric_limits<int64_t>::max()))) {
          // registry:2 reads a bare integer as nanoseconds (an int64, as Go's time.Duration).
          notes.warn("a bare number is nanoseconds (as in registry:2); write a unit, e.g. 10s");
          return Value{std::chrono::seconds(int64_t(*ns / 1000000000 + (*ns % 1000000000 != 0)))};
        }
      }
      auto d = parse_duration(s);
      if (!d) return fail("must be a duration such as 90s, 10m or 168h, got " + describe(node));
      return Value{*d};
    }
    case KeyType::Size: {
      auto size = parse_size(node.Scalar());
      if (!size) return fail("must be a size such as 1048576, 10GB or 50GiB, got " + describe(node));
      return Value{*size};
    }
    case KeyType::StringList: {
      auto list = string_list(node);
      if (!list) return fail(list.error());
      return Value{std::move(*list)};
    }
    case KeyType::HeaderMap:
      return headers(node, key);
    case KeyType::UpstreamList:
      return upstreams(node, notes);
    case KeyType::AccessRules:
      return access_rules(node, notes);
    case KeyType::FetchRules:
      return fetch_rules(node, notes);
    case KeyType::GroupMap:
      return group_map(node, notes);
    case KeyType::RetentionRules:
      return retention_rules(node, notes);
  }
  return fail("unhandled key type");
}

}  // namespace detail
}  // namespace wharf::config
