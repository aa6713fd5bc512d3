// libFuzzer: the Cookie header reader of the web page (src/ui/cookie.hpp). Invariants: a value found
// lies inside the header and holds only cookie-octets; a header that is exactly "NAME=VALUE" for a
// plain VALUE gives VALUE back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/ui/cookie.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string header(reinterpret_cast<const char*>(data), size);
  for (std::string_view name : {std::string_view("wharf_session"), std::string_view("a")}) {
    auto v = wharf::ui::cookie_value(header, name);
    if (!v) continue;
    if (v->data() < header.data() || v->data() + v->size() > header.data() + header.size()) __builtin_trap();
    for (char c : *v)
      if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == ',' || c == ';' || c == '\\' || c == 0x7f)
        __builtin_trap();
  }
  bool plain = true;
  for (char c : header)
    if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == ',' || c == ';' || c == '\\' || c == 0x7f) plain = false;
  if (plain) {
    const std::string whole = "wharf_session=" + header;
    auto v = wharf::ui::cookie_value(whole, "wharf_session");
    if (!v || *v != header) __builtin_trap();
  }
  return 0;
}
