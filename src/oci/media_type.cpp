#include "src/oci/media_type.hpp"

#include <utility>

namespace wharf::oci {

namespace {

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool restricted_char(char c) {
  switch (c) {
    case '!': case '#': case '$': case '&': case '-': case '^': case '_': case '.': case '+':
      return true;
    default:
      return alnum(c);
  }
}

// RFC 6838: restricted-name = restricted-name-first *126restricted-name-chars
bool restricted_name(std::string_view s) {
  if (s.empty() || s.size() > 127 || !alnum(s.front())) return false;
  for (char c : s)
    if (!restricted_char(c)) return false;
  return true;
}

// RFC 9110 tchar.
bool tchar(char c) {
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return alnum(c);
  }
}

bool token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!tchar(c)) return false;
  return true;
}

// RFC 9110 quoted-string: qdtext is HTAB, SP and visible characters (and obs-text) except '"' and '\'.
bool quoted_string(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (++i + 1 >= s.size()) return false;
      const auto q = static_cast<unsigned char>(s[i]);
      if (q != '\t' && (q < 0x20 || q == 0x7f)) return false;
      continue;
    }
    if (c == '"' || (c != '\t' && (c < 0x20 || c == 0x7f))) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits off the next ';'-separated part, minding quoted strings; `last` is set when no ';' followed it.
std::string_view next_part(std::string_view& rest, bool& last) {
  bool quoted = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (quoted && rest[i] == '\\') {
      ++i;
    } else if (rest[i] == '"') {
      quoted = !quoted;
    } else if (rest[i] == ';' && !quoted) {
      const std::string_view part = rest.substr(0, i);
      rest.remove_prefix(i + 1);
      return part;
    }
  }
  last = true;
  return std::exchange(rest, {});
}

}  // namespace

bool valid_media_type(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  return restricted_name(s.substr(0, slash)) && restricted_name(s.substr(slash + 1));
}

std::optional<std::string> media_type_of(std::string_view content_type) {
  std::string_view rest = content_type;
  bool last = false;
  const std::string_view type = trim(next_part(rest, last));
  if (!valid_media_type(type)) return std::nullopt;
  while (!last) {
    const std::string_view param = trim(next_part(rest, last));
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view value = param.substr(eq + 1);
    if (!token(param.substr(0, eq)) || !(token(value) || quoted_string(value))) return std::nullopt;
  }
  return std::string(type);
}

}  // namespace wharf::oci
