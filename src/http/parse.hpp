#pragma once
// Pure parsing pieces of the HTTP/1.1 server: the request head and the body framing (length or chunked).
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

// Parses "METHOD target HTTP/1.x\r\n" + header lines + "\r\n" into `req`.
// Fails (400/501/505) on malformed lines, conflicting Content-Length, or unsupported Transfer-Encoding.
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
  // Consumes a prefix of `in`; call repeatedly until input is used up or done().
  Step feed(std::string_view in);
  bool done() const { return done_; }

 private:
  enum class Phase { Size, Data, DataCrlf, Trailers };
  bool chunked_ = false;
  uint64_t remaining_ = 0;
  bool done_ = true;
  Phase phase_ = Phase::Size;
  std::string line_;  // partial size or trailer line
};

}  // namespace wharf::http
