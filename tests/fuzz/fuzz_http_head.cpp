// libFuzzer harness for the HTTP request head: HeadScanner (fed whole and in pieces) and
// parse_request_head. Traps when the two scans disagree or a parsed request breaks the grammar.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/http/parse.hpp"

using wharf::http::HeadScanner;

namespace {

bool is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  HeadScanner whole;
  const auto r1 = whole.feed(in);
  HeadScanner parts;
  auto r2 = HeadScanner::Result::More;
  const size_t step = size ? 1 + data[size - 1] % 13 : 1;
  for (size_t i = 0; i < size && r2 == HeadScanner::Result::More; i += step)
    r2 = parts.feed(in.substr(i, step));
  if (r1 != r2) __builtin_trap();
  if (r1 == HeadScanner::Result::Done) {
    if (whole.head_length() != parts.head_length() || whole.head_length() > size) __builtin_trap();
  } else if (r1 == HeadScanner::Result::Error) {
    const int st = whole.error().status;
    if (st != parts.error().status || (st != 400 && st != 505)) __builtin_trap();
  } else if (whole.scanned() != size) {
    __builtin_trap();
  }

  std::string_view head = r1 == HeadScanner::Result::Done ? in.substr(0, whole.head_length()) : in;
  wharf::http::Request req;
  auto parsed = wharf::http::parse_request_head(head, req);
  if (!parsed) {
    const int st = parsed.error().status;
    if (st != 400 && st != 501 && st != 505) __builtin_trap();
    return 0;
  }
  // Whatever parses as a request, the scanner must have found complete (never refused it).
  if (r1 != HeadScanner::Result::Done) __builtin_trap();
  if (!is_token(req.method) || req.path.empty() || req.path[0] != '/') __builtin_trap();
  for (unsigned char c : req.target)
    if (c <= ' ' || c == 0x7f) __builtin_trap();
  for (const auto& [k, v] : req.headers) {
    if (!is_token(k)) __builtin_trap();
    for (unsigned char c : v)
      if (is_ctl(c)) __builtin_trap();
    if (!v.empty() && (v.front() == ' ' || v.back() == ' ' || v.front() == '\t' || v.back() == '\t'))
      __builtin_trap();
  }
  if (req.chunked && req.content_length) __builtin_trap();
  return 0;
}
