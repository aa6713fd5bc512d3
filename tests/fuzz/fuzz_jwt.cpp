// libFuzzer harness for JWT verification (src/auth/jwt.*): any input is a token checked against a fixed
// key; nothing may crash, and nothing unsigned by that key may verify. Also base64url round trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/auth/jwt.hpp"

namespace {

// A fixed P-256 key, so the fuzzer cannot forge anything and every success would be a bug.
constexpr const char* kPublicKey = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6sbHYFQ5I4+PRqAXJ6Gh0QiyG7D0
3+5NcSUO0zNF9vS1NY04WU0PZde0flaSvUv6UO340Wdoz2F2L8T8Dol4IA==
-----END PUBLIC KEY-----
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto keys = wharf::auth::parse_public_keys(kPublicKey);
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (keys) {
    const wharf::auth::VerifyOptions options{"issuer", "service", 1'800'000'000, 60};
    auto claims = wharf::auth::verify_jwt(input, *keys, options);
    if (claims) __builtin_trap();  // nobody holds the private key
    if (claims.error().empty()) __builtin_trap();
  }
  auto decoded = wharf::auth::base64url_decode(input);
  if (decoded && wharf::auth::base64url_encode(*decoded) != input) __builtin_trap();
  return 0;
}
