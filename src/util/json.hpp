#pragma once
// The one parser for JSON that comes from outside (clients, upstreams, bundles, the index): a single
// non-recursive SAX pass that stops at a nesting limit and at a DOM-size budget before nlohmann's DOM
// can grow past it, so no input can overflow the stack or hold memory far beyond its own size.
#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace wharf::util {

// Bounds for one parse. The DOM budget is dom_fixed + dom_per_byte * text size, in estimated heap bytes.
struct JsonLimits {
  size_t max_depth = 64;                  // arrays/objects nested deeper than this are refused
  size_t max_bytes = 4 * 1024 * 1024;     // longer text is refused before parsing
  uint64_t dom_fixed = 256 * 1024;        // DOM budget independent of the text size
  uint64_t dom_per_byte = 8;              // DOM budget per byte of text (real manifests need about 5)
};

// Why a parse failed: which bound was hit, or a syntax error.
enum class JsonFailure { TooLarge, TooDeep, TooBig, Syntax };

// A failed parse: the kind, and a short message for logs and error bodies (at most ~200 bytes).
struct JsonError {
  JsonFailure kind;
  std::string message;
};

// Parses `text` (one JSON value, nothing after it) within `limits`. Fails with TooLarge, TooDeep
// (nesting past max_depth), TooBig (the DOM would exceed its budget) or Syntax; never throws.
std::expected<nlohmann::json, JsonError> parse_json(std::string_view text, const JsonLimits& limits = {});

// Estimated heap bytes the DOM of `text` would take, counted as parse_json counts them, without
// building it; fails exactly as parse_json would.
std::expected<uint64_t, JsonError> json_dom_cost(std::string_view text, const JsonLimits& limits = {});

}  // namespace wharf::util
