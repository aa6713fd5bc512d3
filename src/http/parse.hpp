#pragma once
// Pure parsing pieces of the HTTP/1.1 server: the request head and the body framing (length or chunked).
// Nothing here touches a socket, so each piece is unit-tested and fuzzed on its own.
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "src/http/message.hpp"

namespace wharf::http {

struct ParseError {
  int status;
  std::string message;
};

// Finds where a request head ends while its bytes arrive, one byte looked at once. Lines may end in
// CRLF or a bare LF (as nginx accepts); empty lines before the request line are skipped. Fails at once
// (400/505) on a request line that cannot be HTTP/1.x (HTTP/0.9 "GET /", binary junk), a bare CR,
// or a control character in a header line, so such clients get an answer before any timeout.
class HeadScanner {
 public:
  enum class Result { More, Done, Error };
  // Scans the next bytes of the stream; after Done or Error further calls return the same result.
  Result feed(std::string_view in);
  // Bytes of the head including its blank line (valid after Done).
  size_t head_length() const { return pos_; }
  // Bytes looked at so far (feed the bytes after these next time).
  size_t scanned() const { return pos_; }
  // Why the scan failed (valid after Error).
  const ParseError& error() const { return error_; }

 private:
  enum class Part { Method, Target, Version, Headers };
  Result fail(int status, std::string msg);
  Result end_line();
  Result result_ = Result::More;
  Part part_ = Part::Method;
  size_t pos_ = 0;       // bytes consumed
  size_t line_ = 0;      // lines ended so far, not counting leading blank lines
  size_t line_len_ = 0;  // bytes of the current line (without CR)
  size_t part_len_ = 0;  // bytes of the current request-line part
  bool cr_ = false;      // the previous byte was a CR
  char version_[9] = {};
  ParseError error_{0, {}};
};

// Parses a whole head (request line, header lines, blank line; CRLF or LF endings, leading blank lines
// skipped) into `req`. Fails with 400 on malformed lines, control characters, obs-fold, bad or
// conflicting Content-Length, Transfer-Encoding with Content-Length, duplicate Host; 501 on a
// Transfer-Encoding other than chunked; 505 on an HTTP version other than 1.0 and 1.1. An HTTP/1.0
// request with Transfer-Encoding is read, then the connection closes (RFC 9112 6.1).
std::expected<void, ParseError> parse_request_head(std::string_view head, Request& req);

// Incremental request body framing: Content-Length countdown or chunked decoding (trailers skipped).
class BodyDecoder {
 public:
  BodyDecoder() = default;
  BodyDecoder(bool chunked, uint64_t length) : chunked_(chunked), remaining_(length), done_(!chunked && length == 0) {}

  struct Step {
    size_t consumed = 0;        // bytes of input used
    std::string_view data;      // body bytes found (a view into the input)
    bool error = false;
    std::string error_message;
  };
  // Consumes a prefix of `in`; call repeatedly until input is used up or done(). Once it reported an
  // error, it keeps failing.
  Step feed(std::string_view in);
  bool done() const { return done_; }

  static constexpr size_t kMaxLine = 4096;          // longest chunk-size or trailer line
  static constexpr size_t kMaxTrailers = 64 * 1024;  // all trailer lines together

 private:
  enum class Phase { Size, Data, DataCrlf, Trailers };
  bool chunked_ = false;
  uint64_t remaining_ = 0;
  bool done_ = true;
  bool failed_ = false;
  Phase phase_ = Phase::Size;
  size_t trailer_bytes_ = 0;
  std::string line_;  // partial size or trailer line
};

}  // namespace wharf::http
