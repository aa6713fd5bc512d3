// WWW-Authenticate grammar: challenges separated by commas; a challenge is a scheme token followed by
// a token68 or by comma-separated auth-params (token BWS "=" BWS (token / quoted-string)).
#include "proxy/www_authenticate.hpp"

#include <cctype>
#include <optional>

namespace wharf::proxy {

namespace {

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token68_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-._~+/").find(c) != std::string_view::npos;
}

bool is_bare_value_char(char c) { return c != ',' && c != ' ' && c != '\t' && c != '"'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  size_t pos() const { return i_; }
  void seek(size_t p) { i_ = p; }
  void skip_ws() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void skip_ws_and_commas() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ',')) ++i_;
  }
  std::string_view take_while(bool (*pred)(char)) {
    const size_t start = i_;
    while (!done() && pred(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }
  // A quoted-string with backslash escapes (the cursor is on the opening quote); nullopt if unterminated.
  std::optional<std::string> quoted() {
    std::string out;
    ++i_;
    while (!done()) {
      const char c = s_[i_++];
      if (c == '"') return out;
      if (c == '\\' && !done()) {
        out += s_[i_++];
        continue;
      }
      out += c;
    }
    return std::nullopt;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// True if the cursor is at "token BWS =" (an auth-param, not the next challenge's scheme).
bool at_param(Cursor& c) {
  const size_t start = c.pos();
  const bool has_name = !c.take_while(is_tchar).empty();
  c.skip_ws();
  const bool result = has_name && c.peek() == '=';
  c.seek(start);
  return result;
}

// Reads a token68 followed by the end or a comma; restores the cursor and returns false otherwise.
bool read_token68(Cursor& c, std::string& out) {
  const size_t start = c.pos();
  std::string value(c.take_while(is_token68_char));
  if (value.empty()) return false;
  while (c.peek() == '=') {
    value += '=';
    c.seek(c.pos() + 1);
  }
  const size_t after = c.pos();
  c.skip_ws();
  if (c.done() || c.peek() == ',') {
    out = std::move(value);
    c.seek(after);
    return true;
  }
  c.seek(start);
  return false;
}

// Reads auth-params until the next challenge or the end; false if a value is malformed.
bool read_params(Cursor& c, Challenge& ch) {
  while (true) {
    c.skip_ws_and_commas();
    if (c.done() || !at_param(c)) return true;
    std::string name = lower(c.take_while(is_tchar));
    c.skip_ws();
    c.seek(c.pos() + 1);  // '='
    c.skip_ws();
    std::string value;
    if (c.peek() == '"') {
      auto q = c.quoted();
      if (!q) return false;
      value = std::move(*q);
    } else {
      value = std::string(c.take_while(is_bare_value_char));  // a token, leniently: unquoted URLs happen
    }
    ch.params.emplace_back(std::move(name), std::move(value));
    c.skip_ws();
    if (!c.done() && c.peek() != ',') return false;
  }
}

}  // namespace

std::string_view Challenge::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

std::vector<Challenge> parse_www_authenticate(std::string_view header) {
  std::vector<Challenge> out;
  Cursor c(header);
  while (true) {
    c.skip_ws_and_commas();
    if (c.done()) return out;
    Challenge ch;
    ch.scheme_name = std::string(c.take_while(is_tchar));
    if (ch.scheme_name.empty()) return out;
    const std::string scheme = lower(ch.scheme_name);
    ch.scheme = scheme == "bearer" ? AuthScheme::Bearer : scheme == "basic" ? AuthScheme::Basic : AuthScheme::Other;
    if (!c.done() && c.peek() != ' ' && c.peek() != '\t' && c.peek() != ',') return out;
    c.skip_ws();
    if (read_token68(c, ch.token68)) {
      out.push_back(std::move(ch));
      continue;
    }
    const bool ok = read_params(c, ch);
    out.push_back(std::move(ch));
    if (!ok) return out;
  }
}

}  // namespace wharf::proxy
