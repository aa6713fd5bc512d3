// libFuzzer: repository names, tags, digests and image references. Invariants: accepted values obey
// the grammar's length and character limits; a parsed digest prints back to an equal digest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/commands/source.hpp"
#include "src/oci/digest.hpp"
#include "src/oci/names.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wharf;
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  if (oci::valid_repo_name(s)) {
    if (s.empty() || s.size() > 255) __builtin_trap();
    for (char c : s)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/'))
        __builtin_trap();
  }
  if (oci::valid_tag(s)) {
    if (s.empty() || s.size() > 128) __builtin_trap();
    for (char c : s)
      if (c == '"' || c == '/' || c == ':' || c == '\\' || static_cast<unsigned char>(c) < 0x21) __builtin_trap();
  }
  if (auto d = oci::parse_digest(s)) {
    auto again = oci::parse_digest(d->str());
    if (!again || !(*again == *d)) __builtin_trap();
  }
  if (auto ref = commands::parse_image_ref(std::string(s))) {
    if (ref->name.empty() || (ref->tag.empty() == ref->digest.empty())) __builtin_trap();
    if (!ref->tag.empty() && !oci::valid_tag(ref->tag)) __builtin_trap();
    if (!ref->digest.empty() && !oci::parse_digest(ref->digest)) __builtin_trap();
  }
  return 0;
}
