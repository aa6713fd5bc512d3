// Password redaction for PostgreSQL connection strings.
#include "cache/pg/pg_dsn.hpp"

#include <cctype>

namespace wharf::cache::pg {

namespace {

constexpr std::string_view kMask = "***";

// Masks the value of every `password=` query parameter in [from, end) of a URI.
void redact_query(std::string& s, size_t from) {
  for (size_t at = from; at < s.size();) {
    size_t end = s.find('&', at);
    if (end == std::string::npos) end = s.size();
    std::string_view param = std::string_view(s).substr(at, end - at);
    if (param.starts_with("password=")) {
      const size_t value = at + 9;
      s.replace(value, end - value, kMask);
      end = value + kMask.size();
    }
    at = end + 1;
  }
}

std::string redact_uri(std::string_view dsn, size_t scheme_end) {
  std::string s(dsn);
  size_t auth_end = s.find_first_of("/?", scheme_end);
  if (auth_end == std::string::npos) auth_end = s.size();
  const size_t at = s.rfind('@', auth_end == 0 ? 0 : auth_end - 1);
  if (at != std::string::npos && at >= scheme_end) {
    const size_t colon = s.find(':', scheme_end);
    if (colon != std::string::npos && colon < at) {
      s.replace(colon + 1, at - colon - 1, kMask);
      auth_end = s.find_first_of("/?", scheme_end);
      if (auth_end == std::string::npos) auth_end = s.size();
    }
  }
  const size_t q = s.find('?', auth_end);
  if (q != std::string::npos) redact_query(s, q + 1);
  return s;
}

std::string redact_keywords(std::string_view dsn) {
  std::string out;
  size_t i = 0;
  const auto space = [&](size_t k) { return k < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[k])); };
  while (i < dsn.size()) {
    if (space(i)) {
      out += dsn[i++];
      continue;
    }
    size_t key_end = i;
    while (key_end < dsn.size() && dsn[key_end] != '=' && !space(key_end)) ++key_end;
    const std::string_view key = dsn.substr(i, key_end - i);
    size_t eq = key_end;
    while (space(eq)) ++eq;
    out.append(dsn.substr(i, eq - i));
    if (eq >= dsn.size() || dsn[eq] != '=') {
      i = eq;
      continue;
    }
    size_t v = eq + 1;
    while (space(v)) ++v;
    out.append(dsn.substr(eq, v - eq));
    size_t v_end = v;
    if (v < dsn.size() && dsn[v] == '\'') {
      for (v_end = v + 1; v_end < dsn.size() && dsn[v_end] != '\''; ++v_end)
        if (dsn[v_end] == '\\') ++v_end;
      if (v_end < dsn.size()) ++v_end;  // the closing quote
      v_end = std::min(v_end, dsn.size());
    } else {
      while (v_end < dsn.size() && !space(v_end)) ++v_end;
    }
    if (key == "password")
      out.append(kMask);
    else
      out.append(dsn.substr(v, v_end - v));
    i = v_end;
  }
  return out;
}

}  // namespace

std::string redact_dsn(std::string_view dsn) {
  for (std::string_view scheme : {"postgresql://", "postgres://"})
    if (dsn.starts_with(scheme)) return redact_uri(dsn, scheme.size());
  return redact_keywords(dsn);
}

}  // namespace wharf::cache::pg
