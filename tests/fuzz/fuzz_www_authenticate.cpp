// libFuzzer: the WWW-Authenticate parser. Invariants: never crashes; every challenge has a scheme
// name; param names are lowercase; the parse is deterministic.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/www_authenticate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wharf::proxy;
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const auto challenges = parse_www_authenticate(header);
  if (challenges.size() > size) __builtin_trap();
  for (const auto& c : challenges) {
    if (c.scheme_name.empty()) __builtin_trap();
    for (const auto& [name, value] : c.params) {
      if (name.empty()) __builtin_trap();
      for (char ch : name)
        if (ch >= 'A' && ch <= 'Z') __builtin_trap();
      (void)value;
    }
    (void)c.param("realm");
  }
  if (parse_www_authenticate(header).size() != challenges.size()) __builtin_trap();
  return 0;
}
