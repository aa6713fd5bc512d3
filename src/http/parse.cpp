#include "src/http/parse.hpp"

#include <charconv>

namespace wharf::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::expected<void, ParseError> parse_request_head(std::string_view head, Request& req) {
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return std::unexpected(ParseError{400, "malformed request line"});
  std::string_view line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return std::unexpected(ParseError{400, "malformed request line"});
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || target.empty()) return std::unexpected(ParseError{400, "malformed request line"});
  for (char c : method)
    if (!is_token_char(c)) return std::unexpected(ParseError{400, "malformed method"});
  for (char c : target)
    if (c <= ' ' || c == 0x7f) return std::unexpected(ParseError{400, "malformed request target"});
  if (version == "HTTP/1.1") req.keep_alive = true;
  else if (version == "HTTP/1.0") req.keep_alive = false, req.http10 = true;
  else return std::unexpected(ParseError{505, "HTTP version not supported"});
  req.method = std::string(method);
  req.target = std::string(target);
  size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  req.query = q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1));
  if (req.path.empty() || req.path[0] != '/') return std::unexpected(ParseError{400, "request target must be a path"});

  bool have_length = false;
  while (!head.empty()) {
    eol = head.find("\r\n");
    if (eol == std::string_view::npos) break;
    std::string_view h = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    if (h.empty()) break;
    if (h[0] == ' ' || h[0] == '\t') return std::unexpected(ParseError{400, "obsolete header folding"});
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::unexpected(ParseError{400, "malformed header"});
    std::string_view name = h.substr(0, colon);
    for (char c : name)
      if (!is_token_char(c)) return std::unexpected(ParseError{400, "malformed header name"});
    std::string_view value = trim(h.substr(colon + 1));
    if (iequals(name, "content-length")) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || value.empty())
        return std::unexpected(ParseError{400, "invalid Content-Length"});
      if (have_length && req.content_length != n) return std::unexpected(ParseError{400, "conflicting Content-Length"});
      have_length = true;
      req.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      if (!iequals(value, "chunked")) return std::unexpected(ParseError{501, "unsupported Transfer-Encoding"});
      req.chunked = true;
    } else if (iequals(name, "connection")) {
      if (iequals(value, "close")) req.keep_alive = false;
      else if (iequals(value, "keep-alive")) req.keep_alive = true;
    }
    req.headers.emplace_back(std::string(name), std::string(value));
  }
  if (req.chunked && have_length) return std::unexpected(ParseError{400, "both Content-Length and chunked"});
  return {};
}

BodyDecoder::Step BodyDecoder::feed(std::string_view in) {
  Step st;
  if (done_ || in.empty()) return st;
  if (!chunked_) {
    size_t n = size_t(std::min<uint64_t>(remaining_, in.size()));
    st.consumed = n;
    st.data = in.substr(0, n);
    remaining_ -= n;
    if (remaining_ == 0) done_ = true;
    return st;
  }
  switch (phase_) {
    case Phase::Data: {
      size_t n = size_t(std::min<uint64_t>(remaining_, in.size()));
      st.consumed = n;
      st.data = in.substr(0, n);
      remaining_ -= n;
      if (remaining_ == 0) phase_ = Phase::DataCrlf;
      return st;
    }
    case Phase::Size:
    case Phase::DataCrlf:
    case Phase::Trailers: {
      size_t nl = in.find('\n');
      size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
      line_.append(in.substr(0, take));
      st.consumed = take;
      if (line_.size() > 4096) {
        st.error = true;
        st.error_message = "chunk framing line too long";
        return st;
      }
      if (nl == std::string_view::npos) return st;
      std::string_view l = line_;
      if (!l.empty() && l.back() == '\n') l.remove_suffix(1);
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      if (phase_ == Phase::DataCrlf) {
        if (!l.empty()) {
          st.error = true;
          st.error_message = "missing CRLF after chunk data";
          return st;
        }
        phase_ = Phase::Size;
      } else if (phase_ == Phase::Size) {
        std::string_view hex = l.substr(0, l.find(';'));
        hex = trim(hex);
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
        if (hex.empty() || ec != std::errc() || p != hex.data() + hex.size()) {
          st.error = true;
          st.error_message = "invalid chunk size";
          return st;
        }
        remaining_ = n;
        phase_ = n == 0 ? Phase::Trailers : Phase::Data;
      } else {  // trailers: an empty line ends the body
        if (l.empty()) done_ = true;
      }
      line_.clear();
      return st;
    }
  }
  return st;
}

}  // namespace wharf::http
