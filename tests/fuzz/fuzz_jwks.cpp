// libFuzzer harness for the JWKS parser (src/auth/jwks.*): any input is a key set from an external
// token server's file; nothing may crash or leak, a failure always says why, and every key returned is a
// usable RS256 or ES256 key.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "src/auth/jwks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto keys = wharf::auth::parse_jwks(input);
  if (!keys) {
    if (keys.error().empty()) __builtin_trap();
    return 0;
  }
  if (keys->empty()) __builtin_trap();
  for (const auto& k : *keys)
    if (!k.pkey) __builtin_trap();
  return 0;
}
