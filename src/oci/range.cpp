// Range and Content-Range parsing for blob downloads and chunked uploads.
#include "src/oci/range.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>

#include "src/util/number.hpp"

namespace wharf::oci {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True (and strips it) if `s` begins with `prefix`, compared ASCII case-insensitively.
bool consume_prefix_icase(std::string_view& s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  s.remove_prefix(prefix.size());
  return true;
}

// Byte positions are file offsets: at most INT64_MAX - 1, so last + 1 and last - first + 1 never wrap.
constexpr uint64_t kMaxPosition = uint64_t(std::numeric_limits<int64_t>::max()) - 1;

// A byte position: digits only, at most kMaxPosition; nullopt otherwise.
std::optional<uint64_t> parse_position(std::string_view s) { return util::parse_u64(s, kMaxPosition); }

RangeRequest unsatisfiable() { return RangeRequest{RangeKind::Unsatisfiable, {}}; }

}  // namespace

RangeRequest parse_range(std::string_view header, uint64_t size) {
  std::string_view spec = trim(header);
  if (!consume_prefix_icase(spec, "bytes=")) return {};
  spec = trim(spec);
  if (spec.find(',') != std::string_view::npos) return {};
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const std::string_view first_s = spec.substr(0, dash);
  const std::string_view last_s = spec.substr(dash + 1);

  if (first_s.empty()) {  // suffix range "-n": the last n bytes
    const auto n = util::parse_u64(last_s);  // a suffix length may be any size: it is clamped to the body
    if (!n) return {};
    if (*n == 0 || size == 0) return unsatisfiable();
    return RangeRequest{RangeKind::Satisfiable, {size - std::min(*n, size), size - 1}};
  }

  const auto first = util::parse_u64(first_s);
  if (!first) return {};
  uint64_t last = UINT64_MAX;
  if (!last_s.empty()) {
    const auto parsed = util::parse_u64(last_s);
    if (!parsed || *parsed < *first) return {};
    last = *parsed;
  }
  if (*first >= size) return unsatisfiable();
  return RangeRequest{RangeKind::Satisfiable, {*first, std::min(last, size - 1)}};
}

std::optional<ByteRange> parse_content_range(std::string_view header) {
  std::string_view spec = trim(header);
  if (!consume_prefix_icase(spec, "bytes=")) consume_prefix_icase(spec, "bytes ");
  spec = trim(spec);
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto first = parse_position(spec.substr(0, dash));
  const auto last = parse_position(spec.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return ByteRange{*first, *last};
}

}  // namespace wharf::oci
