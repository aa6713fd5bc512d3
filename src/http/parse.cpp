#include "src/http/parse.hpp"

#include <algorithm>

#include "src/util/number.hpp"

namespace wharf::http {

namespace {

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
}

// Control characters other than HTAB (NUL, CR, LF, DEL, ...): never allowed inside a header line.
bool is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

std::unexpected<ParseError> bad(int status, std::string msg) { return std::unexpected(ParseError{status, std::move(msg)}); }

// Splits off the next line (LF or CRLF ended); nullopt if no line end is left. A CR anywhere else fails.
std::expected<std::optional<std::string_view>, ParseError> next_line(std::string_view& rest) {
  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) return std::optional<std::string_view>();
  std::string_view line = rest.substr(0, nl);
  rest.remove_prefix(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find('\r') != std::string_view::npos) return bad(400, "bare CR in request head");
  return std::optional<std::string_view>(line);
}

}  // namespace

HeadScanner::Result HeadScanner::fail(int status, std::string msg) {
  error_ = ParseError{status, std::move(msg)};
  result_ = Result::Error;
  return result_;
}

HeadScanner::Result HeadScanner::end_line() {
  if (part_ == Part::Headers) {
    if (line_len_ == 0) return result_ = Result::Done;
    ++line_;
    line_len_ = 0;
    return Result::More;
  }
  if (part_ == Part::Method && line_len_ == 0) return Result::More;  // blank line before the request
  if (part_ != Part::Version || part_len_ == 0) return fail(400, "malformed request line");  // HTTP/0.9, junk
  std::string_view v(version_, part_len_);
  if (v != "HTTP/1.1" && v != "HTTP/1.0") return fail(505, "HTTP version not supported");
  part_ = Part::Headers;
  ++line_;
  line_len_ = 0;
  return Result::More;
}

HeadScanner::Result HeadScanner::feed(std::string_view in) {
  if (result_ != Result::More) return result_;
  static constexpr std::string_view kHttp = "HTTP/";
  for (char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    ++pos_;
    if (cr_) {
      cr_ = false;
      if (c != '\n') return fail(400, "bare CR in request head");
    }
    if (c == '\r') {
      cr_ = true;
      continue;
    }
    if (c == '\n') {
      if (end_line() != Result::More) return result_;
      continue;
    }
    ++line_len_;
    switch (part_) {
      case Part::Method:
        if (c == ' ' && part_len_ > 0) {
          part_ = Part::Target;
          part_len_ = 0;
        } else if (!is_token_char(c)) {
          return fail(400, "malformed request line");
        } else {
          ++part_len_;
        }
        break;
      case Part::Target:
        if (c == ' ' && part_len_ > 0) {
          part_ = Part::Version;
          part_len_ = 0;
        } else if (c <= ' ' || c == 0x7f) {
          return fail(400, "malformed request target");
        } else {
          ++part_len_;
        }
        break;
      case Part::Version:
        if (part_len_ < kHttp.size() && c != static_cast<unsigned char>(kHttp[part_len_]))
          return fail(400, "malformed request line");
        if (part_len_ >= sizeof version_ - 1) return fail(505, "HTTP version not supported");
        if (c <= ' ' || c == 0x7f) return fail(400, "malformed request line");
        version_[part_len_++] = ch;
        break;
      case Part::Headers:
        if (is_ctl(c)) return fail(400, "control character in request header");
        break;
    }
  }
  return Result::More;
}

std::expected<void, ParseError> parse_request_head(std::string_view head, Request& req) {
  std::optional<std::string_view> line;
  do {
    auto l = next_line(head);
    if (!l) return std::unexpected(l.error());
    if (!*l) return bad(400, "malformed request line");
    line = **l;
  } while (line->empty());
  size_t sp1 = line->find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line->find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return bad(400, "malformed request line");
  std::string_view method = line->substr(0, sp1);
  std::string_view target = line->substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line->substr(sp2 + 1);
  if (method.empty() || target.empty() || version.empty()) return bad(400, "malformed request line");
  for (char c : method)
    if (!is_token_char(static_cast<unsigned char>(c))) return bad(400, "malformed method");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return bad(400, "malformed request target");
  if (version == "HTTP/1.1") req.keep_alive = true;
  else if (version == "HTTP/1.0") req.keep_alive = false, req.http10 = true;
  else if (version.starts_with("HTTP/") && version.find(' ') == std::string_view::npos)
    return bad(505, "HTTP version not supported");
  else return bad(400, "malformed request line");
  req.method = std::string(method);
  req.target = std::string(target);
  size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  req.query = q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1));
  if (req.path.empty() || req.path[0] != '/') return bad(400, "request target must be a path");

  bool have_host = false;
  bool ended = false;
  while (!ended) {
    auto l = next_line(head);
    if (!l) return std::unexpected(l.error());
    if (!*l) return bad(400, "request head does not end with a blank line");
    std::string_view h = **l;
    if (h.empty()) {
      ended = true;
      break;
    }
    if (h[0] == ' ' || h[0] == '\t') return bad(400, "obsolete header folding");
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad(400, "malformed header");
    std::string_view name = h.substr(0, colon);
    for (char c : name)
      if (!is_token_char(static_cast<unsigned char>(c))) return bad(400, "malformed header name");
    std::string_view value = trim_ows(h.substr(colon + 1));
    for (char c : value)
      if (is_ctl(static_cast<unsigned char>(c))) return bad(400, "control character in header value");
    if (iequals(name, "content-length")) {
      auto n = util::parse_u64(value);
      if (!n) return bad(400, "invalid Content-Length");
      if (req.content_length && *req.content_length != *n) return bad(400, "conflicting Content-Length");
      req.content_length = *n;
    } else if (iequals(name, "transfer-encoding")) {
      if (req.chunked) return bad(400, "repeated Transfer-Encoding");
      if (!iequals(value, "chunked")) return bad(501, "unsupported Transfer-Encoding");
      req.chunked = true;
    } else if (iequals(name, "host")) {
      if (have_host) return bad(400, "repeated Host header");
      have_host = true;
    } else if (iequals(name, "connection")) {
      if (iequals(value, "close")) req.keep_alive = false;
      else if (iequals(value, "keep-alive")) req.keep_alive = true;
    }
    req.headers.emplace_back(std::string(name), std::string(value));
  }
  if (req.chunked && req.content_length) return bad(400, "both Content-Length and chunked");
  if (req.chunked && req.http10) req.keep_alive = false;  // RFC 9112 6.1: faulty framing, close after it
  return {};
}

BodyDecoder::Step BodyDecoder::feed(std::string_view in) {
  Step st;
  auto fail = [&](std::string msg) {
    failed_ = true;
    st.error = true;
    st.error_message = std::move(msg);
    return st;
  };
  if (failed_) return fail("malformed chunked body");
  if (done_ || in.empty()) return st;
  if (!chunked_) {
    size_t n = size_t(std::min<uint64_t>(remaining_, in.size()));
    st.consumed = n;
    st.data = in.substr(0, n);
    remaining_ -= n;
    if (remaining_ == 0) done_ = true;
    return st;
  }
  if (phase_ == Phase::Data) {
    size_t n = size_t(std::min<uint64_t>(remaining_, in.size()));
    st.consumed = n;
    st.data = in.substr(0, n);
    remaining_ -= n;
    if (remaining_ == 0) phase_ = Phase::DataCrlf;
    return st;
  }
  size_t nl = in.find('\n');
  size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
  line_.append(in.substr(0, take));
  st.consumed = take;
  if (line_.size() > kMaxLine) return fail("chunk framing line too long");
  if (phase_ == Phase::Trailers && (trailer_bytes_ += take) > kMaxTrailers) return fail("chunked trailers too long");
  if (nl == std::string_view::npos) return st;
  std::string_view l = line_;
  l.remove_suffix(1);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  if (std::any_of(l.begin(), l.end(), [](char c) { return is_ctl(static_cast<unsigned char>(c)); }))
    return fail("control character in chunk framing");
  if (phase_ == Phase::DataCrlf) {
    if (!l.empty()) return fail("missing CRLF after chunk data");
    phase_ = Phase::Size;
  } else if (phase_ == Phase::Size) {
    auto n = util::parse_hex_u64(trim_ows(l.substr(0, l.find(';'))));
    if (!n) return fail("invalid chunk size");
    remaining_ = *n;
    phase_ = *n == 0 ? Phase::Trailers : Phase::Data;
  } else if (l.empty()) {  // trailers: an empty line ends the body
    done_ = true;
  }
  line_.clear();
  return st;
}

}  // namespace wharf::http
