#pragma once
// Parsing of HTTP Range (blob GET) and Content-Range (upload PATCH) headers.
#include <cstdint>
#include <optional>
#include <string_view>

namespace wharf::oci {

struct ByteRange {
  uint64_t first = 0;  // inclusive
  uint64_t last = 0;   // inclusive
  uint64_t length() const { return last - first + 1; }
};

enum class RangeKind {
  None,           // header absent or not a single "bytes=" range we honour: serve the whole body (200)
  Satisfiable,    // serve `range` with 206
  Unsatisfiable,  // 416 with Content-Range: bytes */size
};

struct RangeRequest {
  RangeKind kind = RangeKind::None;
  ByteRange range;
};

// Resolves a Range header ("bytes=a-b", "bytes=a-", "bytes=-n") against a body of `size` bytes.
// Multiple ranges ("bytes=0-1,5-6") and malformed values give None (RFC 9110 lets a server ignore them).
RangeRequest parse_range(std::string_view header, uint64_t size);

// Parses an upload Content-Range "a-b" (also accepts a leading "bytes " or "bytes="); nullopt if malformed,
// b<a, or b past INT64_MAX - 1 (so length() never wraps). The caller checks length() against the body.
std::optional<ByteRange> parse_content_range(std::string_view header);

}  // namespace wharf::oci
