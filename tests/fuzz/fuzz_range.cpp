// libFuzzer: Range and Content-Range parsing. Invariants: a satisfiable range lies inside the body;
// a Content-Range never has a length that wraps; nothing crashes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include "src/oci/range.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wharf::oci;
  uint64_t body = 0;
  if (size >= 8) {  // the first 8 bytes choose the body size (some small, some huge)
    std::memcpy(&body, data, 8);
    if (data[0] & 1) body %= 4096;
    data += 8;
    size -= 8;
  }
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const RangeRequest r = parse_range(header, body);
  if (r.kind == RangeKind::Satisfiable) {
    if (r.range.first > r.range.last || r.range.last >= body || r.range.length() == 0 || r.range.length() > body)
      __builtin_trap();
  }
  if (r.kind == RangeKind::Unsatisfiable && !header.empty() && body > 0 && header.find('-') == std::string_view::npos)
    __builtin_trap();  // every unsatisfiable range has a dash
  if (const auto cr = parse_content_range(header)) {
    if (cr->last < cr->first || cr->length() == 0 ||
        cr->last >= uint64_t(std::numeric_limits<int64_t>::max()) || cr->length() != cr->last - cr->first + 1)
      __builtin_trap();
  }
  return 0;
}
